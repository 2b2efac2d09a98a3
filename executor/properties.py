"""Write ``alluxio-site.properties`` the way ``java.util.Properties.store`` would read it back.

The output is pure ASCII (non-ASCII as ``\\uXXXX``, as ``Properties.load(InputStream)`` expects
ISO-8859-1), sorted by key, with no timestamp, so equal inputs give equal bytes.
"""

from __future__ import annotations

import os
import tempfile
from typing import Mapping

from executor.task_plan import is_secret_key

_HEADER = "# Written by the alluxio-mesos executor for this task. Edits are lost on relaunch.\n"
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
# Characters that end a key or start a comment when unescaped.
_SEPARATORS = "=:#!"


class SecretPropertyError(ValueError):
    """A framework secret was about to be written for a task."""


def escape(text: str, is_key: bool) -> str:
    out = []
    for index, char in enumerate(text):
        if char == " ":
            # A key ends at its first unescaped space; a value only loses its leading spaces.
            out.append("\\ " if is_key or index == 0 else " ")
        elif char == "\\":
            out.append("\\\\")
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif char in _SEPARATORS:
            out.append("\\" + char)
        elif 0x20 <= ord(char) <= 0x7E:
            out.append(char)
        else:
            out.append(_unicode_escape(char))
    return "".join(out)


def _unicode_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return "\\u%04X" % code
    # Java strings are UTF-16: characters outside the BMP are written as a surrogate pair.
    code -= 0x10000
    return "\\u%04X\\u%04X" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def render(properties: Mapping[str, str]) -> str:
    lines = [_HEADER]
    for key in sorted(properties):
        if is_secret_key(key):
            raise SecretPropertyError(
                "refusing to write %r into alluxio-site.properties: framework secrets never reach tasks" % key
            )
        lines.append("%s=%s\n" % (escape(key, is_key=True), escape(properties[key], is_key=False)))
    return "".join(lines)


def write_properties_file(path: str, properties: Mapping[str, str], mode: int = 0o644) -> None:
    """Write atomically: a reader (or a crash) never sees a half-written file."""
    content = render(properties).encode("ascii")
    directory = os.path.dirname(path) or "."
    fd, tmp_path = tempfile.mkstemp(prefix=".alluxio-site.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
