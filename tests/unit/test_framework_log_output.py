"""The framework's log handler: one format for all outputs, lines flushed at once unless a storm
of them arrives, and then within the flush interval; warnings and close always flush."""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Iterator

import pytest

from framework.log_output import BURST_LINES, FLUSH_INTERVAL, LogOutput


@pytest.fixture
def logged(tmp_path: pathlib.Path) -> Iterator[tuple[logging.Logger, pathlib.Path, pathlib.Path]]:
    first, second = tmp_path / "framework.out", tmp_path / "console.log"
    outputs = [open(first, "a", encoding="utf-8"), open(second, "a", encoding="utf-8")]  # noqa: SIM115
    handler = LogOutput(outputs, owned=outputs)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test.log_output.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield logger, first, second
    finally:
        logger.removeHandler(handler)
        handler.close()


def lines(path: pathlib.Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_quiet_log_is_written_through_to_every_output_at_once(
    logged: tuple[logging.Logger, pathlib.Path, pathlib.Path],
) -> None:
    logger, first, second = logged
    logger.info("registered with master %s", "m:5050")
    assert lines(first) == ["INFO registered with master m:5050"]
    assert lines(second) == ["INFO registered with master m:5050"]


def test_a_storm_is_flushed_within_the_interval_and_warnings_at_once(
    logged: tuple[logging.Logger, pathlib.Path, pathlib.Path],
) -> None:
    logger, first, _ = logged
    storm = 20 * BURST_LINES
    started = time.monotonic()
    for number in range(storm):
        logger.info("update %d", number)
    if time.monotonic() - started < FLUSH_INTERVAL / 2:
        # Still inside the first interval: the burst beyond BURST_LINES waits for the timer.
        assert BURST_LINES <= len(lines(first)) < storm
    deadline = time.monotonic() + 5
    while len(lines(first)) < storm and time.monotonic() < deadline:
        time.sleep(FLUSH_INTERVAL / 4)
    assert lines(first) == [f"INFO update {n}" for n in range(storm)]

    for number in range(2 * BURST_LINES):
        logger.info("more %d", number)
    logger.warning("the master is gone")
    assert lines(first)[-1] == "WARNING the master is gone"  # and everything before it


def test_closing_flushes_what_is_pending(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "framework.out"
    output = open(path, "a", encoding="utf-8")  # noqa: SIM115
    handler = LogOutput([output], owned=[output])
    handler.setFormatter(logging.Formatter("%(message)s"))
    for number in range(3 * BURST_LINES):
        handler.handle(logging.makeLogRecord({"msg": f"line {number}", "levelno": logging.INFO}))
    handler.close()
    assert output.closed
    assert lines(path) == [f"line {n}" for n in range(3 * BURST_LINES)]
