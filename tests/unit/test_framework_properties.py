"""`conf/alluxio-site.properties` is read with java.util.Properties#load rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.java_properties import PropertiesSyntaxError, format_properties, parse_properties


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b", {"a": "b"}),
        ("a = b ", {"a": "b "}),
        ("a:b", {"a": "b"}),
        ("a b", {"a": "b"}),
        ("a\tb", {"a": "b"}),
        ("a", {"a": ""}),
        ("a=", {"a": ""}),
        ("# comment\n! also comment\n\n  a=1", {"a": "1"}),
        ("a=one\\\n    two", {"a": "onetwo"}),
        ("a=one\\\\\nb=two", {"a": "one\\", "b": "two"}),
        ("a\\=b=c", {"a=b": "c"}),
        ("a\\ b=c", {"a b": "c"}),
        ("a=\\u00e9t\\u00e9", {"a": "été"}),
        ("a=tab\\there", {"a": "tab\there"}),
        ("a=x=y", {"a": "x=y"}),
        ("a=1\r\nb=2\rc=3", {"a": "1", "b": "2", "c": "3"}),
        ("a=1\na=2", {"a": "2"}),
        ("a=#not a comment", {"a": "#not a comment"}),
        ("a=line\\\n", {"a": "line"}),
    ],
)
def test_java_properties_rules(text: str, expected: dict[str, str]) -> None:
    assert parse_properties(text) == expected


def test_malformed_unicode_escape_names_the_line() -> None:
    with pytest.raises(PropertiesSyntaxError, match="line 2"):
        parse_properties("a=1\nb=\\u12g4\n")


keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(st.dictionaries(keys, values, max_size=8))
def test_format_then_parse_gives_the_same_mapping(mapping: dict[str, str]) -> None:
    assert parse_properties(format_properties(mapping)) == mapping
