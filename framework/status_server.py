"""The read-only HTTP status endpoint (registered with Mesos as the framework's webui_url).

GET /            small HTML page
GET /status.json the status document (also /status)
GET /health      200 "ok"
Anything else is 404; methods other than GET/HEAD are 405: nothing can be changed over HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from framework.status import render_html

LOG = logging.getLogger("framework.status")


class StatusServer:
    def __init__(self, bind_host: str, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        handler = _handler_for(snapshot)
        self._server = ThreadingHTTPServer((bind_host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(snapshot: Callable[[], dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "alluxio-mesos"

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("status endpoint: " + format, *args)

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status is HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", "GET, HEAD")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
                return
            if path not in {"/", "/status", "/status.json"}:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
                return
            try:
                document = snapshot()
            except Exception:
                LOG.exception("building the status document failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"status unavailable\n", "text/plain")
                return
            if path == "/":
                self._send(HTTPStatus.OK, render_html(document).encode("utf-8"), "text/html; charset=utf-8")
            else:
                body = json.dumps(document, indent=1, sort_keys=True).encode("utf-8")
                self._send(HTTPStatus.OK, body, "application/json")

        def do_HEAD(self) -> None:
            self.do_GET()

        def _refuse(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only\n", "text/plain; charset=utf-8")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return Handler
