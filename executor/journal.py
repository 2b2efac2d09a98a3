"""Format the master journal only if it was never formatted (Alluxio 1.x formatted on every launch
and so lost all metadata on every relaunch).

Markers live at the top of the journal directory, next to what Alluxio writes:
- ``FORMATTED_MARKER``: written only after a format succeeded (or an existing journal was adopted).
- ``FORMATTING_MARKER``: written before a format starts; if it is still there without the other
  marker, our own earlier format was interrupted, so formatting again destroys nothing of value.
A directory with journal content but no marker at all is someone's existing journal: it is kept.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Tuple

FORMATTED_MARKER = ".alluxio-mesos-journal-formatted"
FORMATTING_MARKER = ".alluxio-mesos-journal-formatting"

ALREADY_FORMATTED = "already formatted"
ADOPTED_EXISTING = "existing journal kept"
FORMATTED = "formatted"


class JournalError(RuntimeError):
    """The journal directory could not be prepared or formatting failed."""


def _content(journal_dir: str) -> list:
    return sorted(n for n in os.listdir(journal_dir) if n not in (FORMATTED_MARKER, FORMATTING_MARKER))


def _write_marker(journal_dir: str, name: str, text: str) -> None:
    path = os.path.join(journal_dir, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def prepare_journal_dir(journal_dir: str, owner: Optional[Tuple[int, int]]) -> None:
    """Create the directory (and hand it to the JVM's user) without touching its content."""
    try:
        os.makedirs(journal_dir, mode=0o750, exist_ok=True)
        if owner is not None:
            os.chown(journal_dir, owner[0], owner[1])
    except OSError as exc:
        raise JournalError("cannot prepare journal directory %s: %s" % (journal_dir, exc)) from exc


def ensure_formatted(journal_dir: str, format_journal: Callable[[], None]) -> str:
    """Return which of ALREADY_FORMATTED, ADOPTED_EXISTING or FORMATTED happened."""
    if os.path.exists(os.path.join(journal_dir, FORMATTED_MARKER)):
        return ALREADY_FORMATTED
    interrupted = os.path.exists(os.path.join(journal_dir, FORMATTING_MARKER))
    existing = _content(journal_dir)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if existing and not interrupted:
        _write_marker(
            journal_dir, FORMATTED_MARKER, "adopted existing journal (%s) at %s\n" % (existing[0], stamp)
        )
        return ADOPTED_EXISTING
    _write_marker(journal_dir, FORMATTING_MARKER, "format started at %s\n" % stamp)
    try:
        format_journal()
    except Exception as exc:
        raise JournalError("formatting the journal in %s failed: %s" % (journal_dir, exc)) from exc
    _write_marker(journal_dir, FORMATTED_MARKER, "formatted at %s\n" % stamp)
    marker = os.path.join(journal_dir, FORMATTING_MARKER)
    if os.path.exists(marker):
        os.unlink(marker)
    return FORMATTED
