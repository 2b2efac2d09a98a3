"""``POST /api/v1/scheduler``: request checks in Mesos' order, then dispatch to the Master.

Order (Master::Http::scheduler): authentication (401), method (405), Content-Type (400/415),
body -> JSON -> Call (400), call validation (400), then for SUBSCRIBE the Accept header (406)
and Mesos-Stream-Id (400), and for other calls the framework (400), its principal (400), its
connection (403) and the stream id (400). Accepted calls answer 202 with an empty body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from sandbox.mesos.http import (
    accepted,
    bad_request,
    check_call_headers,
    forbidden,
    negotiate_json,
    text_response,
)
from sandbox.mesos.master.auth import SCHEDULER_REALM, AuthenticationFailed, BasicAuthenticator, unauthorized
from sandbox.mesos.master.master import HEARTBEAT_EVENT, Master
from sandbox.mesos.master.streams import EventStream
from sandbox.mesos.protojson import ProtoJsonError, SchedulerCall, check
from sandbox.mesos.wire import JSON_CONTENT_TYPE, b64decode, new_uuid_string

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]


def _reject_constant(name: str) -> float:
    raise ValueError(f"invalid JSON literal {name}")


# json.loads with keyword arguments builds a new decoder per call; one shared decoder is the
# same parser without that cost on every request.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json_body(body: bytes) -> Any:
    """JSON as Mesos' parser accepts it (UTF-8, no NaN/Infinity); ValueError otherwise."""
    text = body.decode("utf-8")
    if text.startswith("\ufeff"):
        # What json.loads says about a byte order mark.
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


_ID_KEYS = {"value"}
_ACKNOWLEDGE_KEYS = {"type", "framework_id", "acknowledge"}
_ACKNOWLEDGE_BODY_KEYS = {"agent_id", "task_id", "uuid"}


def _is_id(value: Any) -> bool:
    return type(value) is dict and value.keys() == _ID_KEYS and type(value["value"]) is str


def is_plain_acknowledge(document: Any) -> bool:
    """An ACKNOWLEDGE call with exactly the fields a scheduler sends, all well typed.

    For such a document the generic protobuf check can neither fail nor change anything, so
    it is skipped: acknowledgements are the most frequent call by far. Anything else (extra
    or missing fields, nulls, bad base64) takes the generic path and gets Mesos' error.
    """
    if type(document) is not dict or document.keys() != _ACKNOWLEDGE_KEYS:
        return False
    ack = document["acknowledge"]
    if (
        document["type"] != "ACKNOWLEDGE"
        or not _is_id(document["framework_id"])
        or type(ack) is not dict
        or ack.keys() != _ACKNOWLEDGE_BODY_KEYS
        or not _is_id(ack["agent_id"])
        or not _is_id(ack["task_id"])
        or type(ack["uuid"]) is not str
    ):
        return False
    try:
        b64decode(ack["uuid"])
    except ValueError:
        return False
    return True


async def read_call(
    request: web.Request, schema: Any, what: str
) -> tuple[JsonObject | None, web.Response | None]:
    """Read the body and convert it to a Call, answering 400 with Mesos' wording on failure."""
    body = await request.read()
    try:
        document = parse_json_body(body)
    except (ValueError, UnicodeDecodeError) as error:
        return None, bad_request(f"Failed to parse body into JSON: {error}")
    if schema is SchedulerCall and is_plain_acknowledge(document):
        return document, None
    try:
        return check(schema, document), None
    except ProtoJsonError as error:
        return None, bad_request(f"Failed to convert JSON into {what} protobuf: {error}")


_REQUIRED_SUB_MESSAGE = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}


def validate_call(call: JsonObject, principal: str | None) -> str | None:
    """validation::scheduler::call::validate."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        if "subscribe" not in call:
            return "Expecting 'subscribe' to be present"
        info = call["subscribe"]["framework_info"]
        if info.get("id") != call.get("framework_id"):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        if principal is not None and "principal" in info and info["principal"] != principal:
            return (
                f"Authenticated principal '{principal}' does not match principal '{info['principal']}' "
                "set in `FrameworkInfo`"
            )
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    sub = _REQUIRED_SUB_MESSAGE.get(kind)
    if sub is not None and sub not in call:
        return f"Expecting '{sub}' to be present"
    if kind == "ACKNOWLEDGE" and len(b64decode(call["acknowledge"]["uuid"])) != 16:
        return "Not a valid UUID"
    if kind == "ACKNOWLEDGE_OPERATION_STATUS":
        ack = call["acknowledge_operation_status"]
        uuid = ack.get("uuid") if isinstance(ack, dict) else None
        try:
            valid = isinstance(uuid, str) and len(b64decode(uuid)) == 16
        except ValueError:
            valid = False
        if not valid:
            return "Not a valid UUID"
        if "agent_id" not in ack:
            return "Expecting 'agent_id' to be present"
    if kind == "UPDATE_FRAMEWORK" and call["framework_id"] != call["update_framework"]["framework_info"].get(
        "id"
    ):
        return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


class SchedulerEndpoint:
    def __init__(self, master: Master, authenticator: BasicAuthenticator | None) -> None:
        self.master = master
        self.authenticator = authenticator

    async def handle(self, request: web.Request) -> web.StreamResponse:
        principal: str | None = None
        if self.authenticator is not None:
            try:
                principal = self.authenticator.principal(request)
            except AuthenticationFailed:
                return unauthorized(SCHEDULER_REALM)
        problem = check_call_headers(request)
        if problem is not None:
            return problem
        call, problem = await read_call(request, SchedulerCall, "Call")
        if problem is not None:
            return problem
        assert call is not None
        error = validate_call(call, principal)
        if error:
            return bad_request(f"Failed to validate scheduler::Call: {error}")
        if call["type"] == "SUBSCRIBE":
            return await self._subscribe(request, call, principal)
        return self._call(request, call, principal)

    async def _subscribe(
        self, request: web.Request, call: JsonObject, principal: str | None
    ) -> web.StreamResponse:
        problem = negotiate_json(request)
        if problem is not None:
            return problem
        if "Mesos-Stream-Id" in request.headers:
            return bad_request("Subscribe calls should not include the 'Mesos-Stream-Id' header")
        stream_id = new_uuid_string()
        response = web.StreamResponse(
            status=200, headers={"Content-Type": JSON_CONTENT_TYPE, "Mesos-Stream-Id": stream_id}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        stream = EventStream(
            response,
            self.master.config.heartbeat_interval,
            HEARTBEAT_EVENT,
            self.master.stream_closed,
            request.transport,
        )
        stream.stream_id = stream_id
        self.master.subscribe(stream, call["subscribe"], principal)
        await stream.run()
        return response

    def _call(self, request: web.Request, call: JsonObject, principal: str | None) -> web.StreamResponse:
        master = self.master
        framework = master.frameworks.get(call["framework_id"]["value"])
        if framework is None:
            return bad_request("Framework cannot be found")
        if principal is not None and principal != framework.info.get("principal"):
            return bad_request(
                f"Authenticated principal '{principal}' does not match principal "
                f"'{framework.info.get('principal', '')}' set in `FrameworkInfo`"
            )
        if framework.stream is None:
            return forbidden("Framework is not subscribed")
        stream_id = request.headers.get("Mesos-Stream-Id")
        if stream_id is None:
            return bad_request("All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        if stream_id != framework.stream.stream_id:
            return bad_request(
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
                f"associated with framework ID {framework.framework_id}"
            )
        kind = call["type"]
        if kind == "TEARDOWN":
            master.remove_framework(framework)
        elif kind == "ACCEPT":
            master.accept(framework, call["accept"])
        elif kind == "DECLINE":
            master.decline(framework, call["decline"])
        elif kind == "REVIVE":
            master.revive(framework, call.get("revive") or {})
        elif kind == "SUPPRESS":
            master.suppress(framework, call.get("suppress") or {})
        elif kind == "KILL":
            master.kill(framework, call["kill"])
        elif kind == "SHUTDOWN":
            master.shutdown_executor(framework, call["shutdown"])
        elif kind == "ACKNOWLEDGE":
            master.acknowledge(framework, call["acknowledge"])
        elif kind == "RECONCILE":
            master.reconcile(framework, call["reconcile"])
        elif kind == "MESSAGE":
            master.framework_message(framework, call["message"])
        elif kind == "UPDATE_FRAMEWORK":
            status, message = master.update_framework(framework, call["update_framework"])
            return text_response(status, message)
        elif kind == "UNKNOWN":
            log.warning("received 'UNKNOWN' call")
            return text_response(501)
        # REQUEST, inverse offers and operation calls have no effect in the stand-in.
        return accepted()
