"""Crash-safe checkpoint files: atomic replace, fsync'd appends, atomic symlink switches.

Mesos stores protobufs; the stand-in stores the same messages as JSON (nothing outside the
agent reads these files), with the same names and the same all-or-nothing guarantees: a
file is either the old or the new content, never half written, even if the agent is killed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str, text: str) -> None:
    """Replace ``path`` atomically with ``text``."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def write_json(path: str, document: Any) -> None:
    write_text(path, json.dumps(document, sort_keys=True))


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8"):
        pass


def append_record(path: str, record: Any) -> None:
    """Append one JSON record (one line) and fsync, like Mesos' update stream checkpoints."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: str) -> Iterator[Any]:
    """The records of an append-only file; a torn last line (crash mid-append) is ignored."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except FileNotFoundError:
        return
    for line in lines:
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            return


def point_symlink(link: str, target: str) -> None:
    """Make ``link`` point at ``target``, replacing any previous link atomically."""
    directory = os.path.dirname(link)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-link-{os.getpid()}-{os.path.basename(link)}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync_dir(directory)
