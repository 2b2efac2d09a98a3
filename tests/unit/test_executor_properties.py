"""alluxio-site.properties: escaped so java.util.Properties reads back exactly what we meant."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from executor.properties import SecretPropertyError, escape, render, write_properties_file

# Reads a .properties file with java.util.Properties and prints it as JSON on stdout.
JAVA_READER = r"""
import java.io.FileInputStream;
import java.util.Properties;
import java.util.TreeSet;

public class ReadProps {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) { p.load(in); }
    StringBuilder out = new StringBuilder("{");
    boolean first = true;
    for (String k : new TreeSet<>(p.stringPropertyNames())) {
      if (!first) out.append(',');
      first = false;
      out.append(quote(k)).append(':').append(quote(p.getProperty(k)));
    }
    System.out.print(out.append('}'));
  }
  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
"""


def java_load(path: Path, work: Path) -> dict[str, str]:
    source = work / "ReadProps.java"
    source.write_text(JAVA_READER)
    result = subprocess.run(
        ["java", str(source), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("text", "as_key", "as_value"),
    [
        ("plain.key", "plain.key", "plain.key"),
        ("a b", "a\\ b", "a b"),
        (" lead", "\\ lead", "\\ lead"),
        ("x=y:z#!", "x\\=y\\:z\\#\\!", "x\\=y\\:z\\#\\!"),
        ("back\\slash", "back\\\\slash", "back\\\\slash"),
        ("tab\tnl\ncr\rff\f", "tab\\tnl\\ncr\\rff\\f", "tab\\tnl\\ncr\\rff\\f"),
        ("é", "\\u00E9", "\\u00E9"),
        ("\x01", "\\u0001", "\\u0001"),
        ("😀", "\\uD83D\\uDE00", "\\uD83D\\uDE00"),
    ],
)
def test_escape_matches_properties_store(text: str, as_key: str, as_value: str) -> None:
    assert escape(text, is_key=True) == as_key
    assert escape(text, is_key=False) == as_value


def test_render_is_sorted_ascii_and_has_no_timestamp() -> None:
    text = render({"b.key": "2", "a.key": "1"})
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["a.key=1", "b.key=2"]
    text.encode("ascii")
    assert render({"a.key": "1", "b.key": "2"}) == text


@pytest.mark.parametrize("key", ["alluxio.integration.mesos.secret", "alluxio.integration.mesos.Password"])
def test_framework_secrets_are_refused(key: str, tmp_path: Path) -> None:
    target = tmp_path / "alluxio-site.properties"
    with pytest.raises(SecretPropertyError, match=key.replace(".", r"\.")):
        write_properties_file(str(target), {"alluxio.master.hostname": "m", key: "hunter2"})
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # no temp file left behind either


def _tricky_strings(count: int) -> list[str]:
    rng = random.Random(20240611)
    alphabet = " \t\n\r\f=:#!\\\"'abcXYZ019.-_é€😀\x01\x7f\u2028"
    fixed = ["", " ", "  two leading", "trailing  ", "#comment", "!bang", "a=b", "k:v", "\\u0041", "\\"]
    fixed += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(count)]
    return fixed


def test_java_reads_back_exactly_what_was_written(tmp_path: Path) -> None:
    values = _tricky_strings(150)
    properties = {f"alluxio.test.{i:03d}": value for i, value in enumerate(values)}
    # Awkward keys too: they must survive as keys, not leak into values.
    for i, key in enumerate(_tricky_strings(40)):
        if key:
            properties[f"k{i:02d} {key}"] = f"v{i}"
    target = tmp_path / "alluxio-site.properties"
    write_properties_file(str(target), properties)
    assert (target.stat().st_mode & 0o777) == 0o644
    assert java_load(target, tmp_path) == properties
