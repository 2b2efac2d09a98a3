"""The Python 3.9 compatibility check rejects what would break on an agent's stock Python."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor.compat_check import check_source

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("snippet", "line", "reason"),
    [
        ("match x:\n    case 1:\n        pass\n", 3, "not valid Python 3.9 syntax"),
        ("try:\n    pass\nexcept* ValueError:\n    pass\n", 4, "not valid Python 3.9 syntax"),
        ("import requests\n", 1, "import of 'requests': the executor may only import"),
        ("from pydantic import BaseModel\n", 1, "import of 'pydantic'"),
        ("import tomllib\n", 1, "'tomllib' is not in Python 3.9's standard library"),
        ("x = 1\ny = list(zip([1], [2], strict=True))\n", 2, "zip(strict=...) is Python 3.10+"),
        ("n = 5\nbits = n.bit_count()\n", 2, ".bit_count() is Python 3.10+"),
        ("from itertools import pairwise\n", 1, "itertools.pairwise is Python 3.10+"),
        ("import typing\nT = typing.TypeAlias\n", 2, "typing.TypeAlias is Python 3.10+"),
        ("from typing import Self\n", 1, "typing.Self is Python 3.11+"),
        ("import contextlib as c\nc.chdir('/')\n", 2, "contextlib.chdir is Python 3.11+"),
        ("from dataclasses import dataclass\n@dataclass(slots=True)\nclass A:\n    x = 1\n", 2, "slots=...)"),
        ("ok = isinstance(1, int | str)\n", 1, "isinstance(x, A | B) is Python 3.10+"),
        ("def f(x: int | None) -> None:\n    pass\n", 1, "from __future__ import annotations"),
        ("async def f(it):\n    return await anext(it)\n", 2, "builtin anext is Python 3.10+"),
        (
            "import subprocess\nsubprocess.Popen(['x'], process_group=0)\n",
            2,
            "process_group=...) is Python 3.11+",
        ),
    ],
)
def test_bad_snippets_are_reported_with_their_line(snippet: str, line: int, reason: str) -> None:
    problems = check_source("bad.py", snippet)
    assert problems, f"expected a problem for {snippet!r}"
    assert any(p.line == line and reason in p.reason for p in problems), [str(p) for p in problems]
    assert str(problems[0]).startswith(f"bad.py:{problems[0].line}: ")


@pytest.mark.parametrize(
    "snippet",
    [
        "from __future__ import annotations\nimport os\n"
        "def f(x: int | None) -> list[str]:\n    return [os.sep]\n",
        "import pymesos\nimport http_parser.http\nimport six\nfrom addict import Dict\n",
        "from executor.task_plan import TaskPlan\nname = 'x'.removeprefix('y')\n",
        "import zoneinfo, graphlib\nd = {1: 2} | {3: 4}\n",
        "ok = isinstance(1, (int, str))\n",
    ],
)
def test_python39_code_passes(snippet: str) -> None:
    assert check_source("good.py", snippet) == []


def test_cli_fails_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("import os\n")
    (tmp_path / "bad.py").write_text(
        textwrap.dedent("""\
        import json

        pairs = list(zip("ab", "cd", strict=True))
        """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "executor.compat_check", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    assert f"{tmp_path / 'bad.py'}:3: zip(strict=...) is Python 3.10+" in result.stdout
    assert "1 problem(s) in 2 file(s)" in result.stdout


def test_the_executor_package_itself_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "executor.compat_check"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stdout
    assert "Python 3.9 compatible" in result.stdout
