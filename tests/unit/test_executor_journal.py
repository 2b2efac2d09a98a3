"""The master journal is formatted once; an existing journal is never formatted again."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.journal import (
    ADOPTED_EXISTING,
    ALREADY_FORMATTED,
    FORMATTED,
    FORMATTED_MARKER,
    FORMATTING_MARKER,
    JournalError,
    ensure_formatted,
    prepare_journal_dir,
)


class FakeFormat:
    """Stands in for `alluxio format master`: writes journal content like the real one."""

    def __init__(self, journal: Path, fail: bool = False) -> None:
        self.journal = journal
        self.fail = fail
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        (self.journal / "raft").mkdir(exist_ok=True)
        if self.fail:
            raise RuntimeError("format exited with status 1")
        (self.journal / "raft" / "meta").write_text("term=0")


def test_fresh_journal_is_formatted_exactly_once(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    prepare_journal_dir(str(journal), owner=None)
    fmt = FakeFormat(journal)
    assert ensure_formatted(str(journal), fmt) == FORMATTED
    assert (journal / FORMATTED_MARKER).exists()
    assert not (journal / FORMATTING_MARKER).exists()
    (journal / "raft" / "meta").write_text("term=7 (metadata written by the running master)")
    assert ensure_formatted(str(journal), fmt) == ALREADY_FORMATTED
    assert fmt.calls == 1
    assert (journal / "raft" / "meta").read_text().startswith("term=7")


def test_existing_journal_without_marker_is_kept(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    (journal / "FileSystemMaster" / "v1").mkdir(parents=True)
    (journal / "FileSystemMaster" / "v1" / "log.1").write_text("precious")
    fmt = FakeFormat(journal)
    assert ensure_formatted(str(journal), fmt) == ADOPTED_EXISTING
    assert fmt.calls == 0
    assert (journal / "FileSystemMaster" / "v1" / "log.1").read_text() == "precious"
    assert ensure_formatted(str(journal), fmt) == ALREADY_FORMATTED


def test_failed_format_is_retried_on_the_next_launch(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    prepare_journal_dir(str(journal), owner=None)
    with pytest.raises(
        JournalError, match=r"formatting the journal in .* failed: format exited with status 1"
    ):
        ensure_formatted(str(journal), FakeFormat(journal, fail=True))
    assert not (journal / FORMATTED_MARKER).exists()
    # The half-written journal is ours (the in-progress marker says so): format again.
    retry = FakeFormat(journal)
    assert ensure_formatted(str(journal), retry) == FORMATTED
    assert retry.calls == 1


def test_unusable_journal_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot prepare journal directory"):
        prepare_journal_dir(str(blocker / "journal"), owner=None)
