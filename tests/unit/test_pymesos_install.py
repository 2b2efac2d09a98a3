"""pymesos on Python 3.11: installed with http-parser's pure-Python parser, no C extension."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib

import http_parser
from http_parser.pyparser import HttpParser as PurePythonParser
from pymesos import MesosSchedulerDriver, Scheduler


def test_http_parser_has_no_compiled_extension() -> None:
    package_dir = pathlib.Path(http_parser.__file__).parent
    compiled = [p.name for p in package_dir.iterdir() if p.suffix in {".so", ".pyd"}]
    assert compiled == []
    assert importlib.util.find_spec("http_parser.parser") is None


def test_pymesos_uses_the_pure_python_parser() -> None:
    import http_parser.http

    # pymesos reads responses through http_parser.http, which falls back to the pure parser.
    assert http_parser.http.HttpParser is PurePythonParser


def test_pinned_versions_are_installed() -> None:
    assert importlib.metadata.version("pymesos") == "0.3.15"
    assert importlib.metadata.version("http-parser") == "0.9.0"


def test_scheduler_driver_can_be_constructed() -> None:
    framework = {"user": "root", "name": "construct-only", "checkpoint": True}
    driver = MesosSchedulerDriver(
        Scheduler(), framework, "127.0.0.1:5050", use_addict=True, principal="alluxio", secret="s3cr3t"
    )
    assert driver.master_uri == "127.0.0.1:5050"
    assert driver.framework["name"] == "construct-only"
    assert driver.framework_id is None
    assert not driver.connected


def test_pure_parser_parses_a_chunked_response() -> None:
    parser = PurePythonParser(kind=1)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert parser.execute(raw, len(raw)) == len(raw)
    assert parser.get_status_code() == 200
    assert parser.recv_body() == b"hello"
