"""aiohttp helpers that reproduce libprocess' HTTP behaviour (status codes, bodies, headers).

Mesos answers errors with a plain-text body (``text/plain; charset=utf-8``) and checks the
request's method, Content-Type and Accept in a fixed order; both the master and the agent
endpoints share that logic through this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sandbox.mesos.wire import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, dumps

__all__ = [
    "accepted",
    "accepts_media_type",
    "bad_request",
    "check_call_headers",
    "check_content_type",
    "forbidden",
    "json_response",
    "method_not_allowed",
    "negotiate_json",
    "not_acceptable",
    "ok",
    "text_response",
]


def text_response(status: int, body: str = "", headers: dict[str, str] | None = None) -> web.Response:
    if not body:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, text=body, content_type="text/plain", charset="utf-8", headers=headers)


def ok(body: str = "") -> web.Response:
    return text_response(200, body)


def accepted() -> web.Response:
    return web.Response(status=202)


def bad_request(message: str) -> web.Response:
    return text_response(400, message)


def forbidden(message: str) -> web.Response:
    return text_response(403, message)


def not_acceptable(message: str) -> web.Response:
    return text_response(406, message)


def method_not_allowed(request: web.Request, allowed: tuple[str, ...] = ("POST",)) -> web.Response:
    listed = ", ".join(f"'{m}'" for m in allowed)
    return text_response(
        405,
        f"Expecting one of {{ {listed} }}, but received '{request.method}'",
        headers={"Allow": ", ".join(allowed)},
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(body), content_type=JSON_CONTENT_TYPE, headers=headers)


def check_call_headers(request: web.Request) -> web.Response | None:
    """Method and Content-Type checks of every v1 call endpoint, in Mesos' order.

    The stand-in speaks JSON only. A protobuf body is answered 415 naming the one type this
    server can read, which is what a client must do with any unsupported media type.
    """
    if request.method != "POST":
        return method_not_allowed(request)
    return check_content_type(request.headers)


def check_content_type(headers: Mapping[str, str]) -> web.Response | None:
    """The Content-Type check of check_call_headers (for a POST)."""
    content_type = headers.get("Content-Type")
    if content_type is None:
        return bad_request("Expecting 'Content-Type' to be present")
    if content_type != JSON_CONTENT_TYPE:
        if content_type == PROTOBUF_CONTENT_TYPE:
            return text_response(
                415, f"Expecting 'Content-Type' of {JSON_CONTENT_TYPE} (this master does not speak protobuf)"
            )
        return text_response(
            415, f"Expecting 'Content-Type' of {JSON_CONTENT_TYPE} or {PROTOBUF_CONTENT_TYPE}"
        )
    return None


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        ranges.append((media, quality))
    return ranges


def accepts_media_type(request: web.Request, media_type: str) -> bool:
    """libprocess' Request::acceptsMediaType: no Accept header means anything goes."""
    header = request.headers.get("Accept")
    if header is None:
        return True
    main, _, _sub = media_type.partition("/")
    best: float | None = None
    specificity = -1
    for candidate, quality in _parse_accept(header):
        c_main, _, c_sub = candidate.partition("/")
        if candidate == media_type:
            level = 2
        elif c_main == main and c_sub == "*":
            level = 1
        elif candidate == "*/*":
            level = 0
        else:
            continue
        if level > specificity:
            specificity, best = level, quality
    return best is not None and best > 0


def negotiate_json(request: web.Request) -> web.Response | None:
    """406 unless the client accepts JSON (the only response type the stand-in produces)."""
    if accepts_media_type(request, JSON_CONTENT_TYPE):
        return None
    if accepts_media_type(request, PROTOBUF_CONTENT_TYPE):
        return not_acceptable(
            f"Expecting 'Accept' to allow '{JSON_CONTENT_TYPE}' (this master does not speak protobuf)"
        )
    return not_acceptable(f"Expecting 'Accept' to allow '{PROTOBUF_CONTENT_TYPE}' or '{JSON_CONTENT_TYPE}'")
