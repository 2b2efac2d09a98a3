"""Reading `conf/alluxio-site.properties` with java.util.Properties#load semantics.

The old start script handed this file to a JVM, so users' files may rely on any of its rules:
`=`, `:` or whitespace as separator, `#`/`!` comments, backslash line continuation (leading
whitespace of the next line dropped), and the escapes \\t \\n \\r \\f \\uXXXX.
"""

from __future__ import annotations

import pathlib

_SEPARATORS = "=:"
_WHITESPACE = " \t\f"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesSyntaxError(ValueError):
    """A properties file that java.util.Properties would reject (a malformed \\u escape)."""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continued natural lines; return (first line number, logical line) pairs."""
    natural = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[tuple[int, str]] = []
    index = 0
    while index < len(natural):
        start = index
        line = natural[index].lstrip(_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _ends_with_continuation(line) and index < len(natural):
            line = line[:-1] + natural[index].lstrip(_WHITESPACE)
            index += 1
        if _ends_with_continuation(line):
            line = line[:-1]
        logical.append((start + 1, line))
    return logical


def _ends_with_continuation(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _unescape(raw: str, line_number: int) -> str:
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char != "\\" or index + 1 >= len(raw):
            out.append(char)
            index += 1
            continue
        escaped = raw[index + 1]
        if escaped == "u":
            digits = raw[index + 2 : index + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise PropertiesSyntaxError(
                    f"line {line_number}: malformed \\uxxxx escape {raw[index : index + 6]!r}"
                )
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_SIMPLE_ESCAPES.get(escaped, escaped))
        index += 2
    return "".join(out)


def _split_key_value(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in _SEPARATORS or char in _WHITESPACE:
            break
        index += 1
    key = line[:index]
    rest = line[index:].lstrip(_WHITESPACE)
    if rest and rest[0] in _SEPARATORS:
        rest = rest[1:].lstrip(_WHITESPACE)
    return key, rest


def parse_properties(text: str) -> dict[str, str]:
    """Parse properties text; later duplicates win, as in Java."""
    result: dict[str, str] = {}
    for line_number, line in _logical_lines(text):
        raw_key, raw_value = _split_key_value(line)
        result[_unescape(raw_key, line_number)] = _unescape(raw_value, line_number)
    return result


def load_properties_file(path: pathlib.Path) -> dict[str, str]:
    """Read as UTF-8, like Java 9+ PropertyResourceBundle; Latin-1 would garble UTF-8 users' values."""
    return parse_properties(path.read_text(encoding="utf-8"))


def _escape(text: str, *, is_key: bool) -> str:
    out: list[str] = []
    for position, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[char])
        elif char in "=:#!" or (char == " " and (is_key or position == 0)):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def format_properties(properties: dict[str, str]) -> str:
    """Render properties so that parse_properties (and Java) read back exactly the same mapping."""
    lines = [
        f"{_escape(key, is_key=True)}={_escape(value, is_key=False)}"
        for key, value in sorted(properties.items())
    ]
    return "\n".join(lines) + ("\n" if lines else "")
