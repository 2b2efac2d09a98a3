"""The framework's log handler: each record is formatted once and written to every output (the
log file, and stderr in the foreground).

Lines are flushed as they come, except in a storm: on a 10,000-agent cluster one wave of status
updates logs tens of thousands of lines within seconds, and a flush per line per output was a third
of the scheduler's CPU. Once more than `BURST_LINES` lines were flushed within `FLUSH_INTERVAL`,
the rest of that interval is flushed by a timer instead, so a line is never more than
`FLUSH_INTERVAL` late. Warnings and errors are always flushed at once."""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

FLUSH_INTERVAL = 0.1
BURST_LINES = 50


class LogOutput(logging.Handler):
    def __init__(self, outputs: list[TextIO], owned: list[TextIO]) -> None:
        """`outputs` get every line; `owned` (a subset) are closed with the handler."""
        super().__init__()
        self._outputs = outputs
        self._owned = owned
        self._window_started = 0.0
        self._flushed_in_window = 0
        self._pending = False
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_pending, name="log-flush", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            for output in self._outputs:
                output.write(line)
            now = time.monotonic()
            if now - self._window_started >= FLUSH_INTERVAL:
                self._window_started = now
                self._flushed_in_window = 0
            if record.levelno >= logging.WARNING or self._flushed_in_window < BURST_LINES:
                self._flushed_in_window += 1
                self._flush_outputs()
            else:
                self._pending = True
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock always sets it
            self._flush_outputs()

    def close(self) -> None:
        self._closed.set()
        self._flusher.join(timeout=1.0)
        with self.lock:  # type: ignore[union-attr]
            self._flush_outputs()
            for output in self._owned:
                output.close()
            self._outputs = [o for o in self._outputs if o not in self._owned]
        super().close()

    def _flush_outputs(self) -> None:
        self._pending = False
        for output in self._outputs:
            if not output.closed:
                output.flush()

    def _flush_pending(self) -> None:
        while not self._closed.wait(FLUSH_INTERVAL):
            if self._pending:
                self.flush()
