"""``POST /api/v1/scheduler``: request checks in Mesos' order, then dispatch to the Master.

Order (Master::Http::scheduler): authentication (401), method (405), Content-Type (400/415),
body -> JSON -> Call (400), call validation (400), then for SUBSCRIBE the Accept header (406)
and Mesos-Stream-Id (400), and for other calls the framework (400), its principal (400), its
connection (403) and the stream id (400). Accepted calls answer 202 with an empty body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from multidict import CIMultiDictProxy

from sandbox.mesos.http import (
    accepted,
    bad_request,
    check_call_headers,
    check_content_type,
    forbidden,
    negotiate_json,
    text_response,
)
from sandbox.mesos.master.auth import SCHEDULER_REALM, AuthenticationFailed, BasicAuthenticator, unauthorized
from sandbox.mesos.master.master import HEARTBEAT_EVENT, Master
from sandbox.mesos.master.model import Framework
from sandbox.mesos.master.plain_calls import is_plain_accept, is_plain_acknowledge
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


async def read_call(
    request: web.Request, schema: Any, what: str
) -> tuple[JsonObject | None, web.Response | None]:
    """Read the body and convert it to a Call, answering 400 with Mesos' wording on failure."""
    return convert_call(await request.read(), schema, what)


def convert_call(body: bytes, schema: Any, what: str) -> tuple[JsonObject | None, web.Response | None]:
    """A request body converted to a Call, or the 400 answer with Mesos' wording."""
    try:
        document = parse_json_body(body)
    except (ValueError, UnicodeDecodeError) as error:
        return None, bad_request(f"Failed to parse body into JSON: {error}")
    if schema is SchedulerCall and (is_plain_acknowledge(document) or is_plain_accept(document)):
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


# Calls whose answer is not a bare 202 Accepted, or that stream (SUBSCRIBE).
_NOT_PIPELINED = frozenset({"SUBSCRIBE", "UPDATE_FRAMEWORK", "UNKNOWN"})
# Failed pipelined calls waiting for the normal path, beyond which the oldest are forgotten (a
# connection that closes before its failed call is answered leaves its entry behind).
_MAX_REMEMBERED_FAILURES = 1024


class SchedulerEndpoint:
    def __init__(self, master: Master, authenticator: BasicAuthenticator | None) -> None:
        self.master = master
        self.authenticator = authenticator
        # id(request body) -> (request body, error): see remember_failure.
        self._failures: dict[int, tuple[StreamReader, Exception]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        failure = self._failures.pop(id(request.content), None)
        if failure is not None and failure[0] is request.content:
            # Executed by the pipelining fast path, which failed: fail as this handler would have.
            raise failure[1]
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
        return self._call(request.headers, call, principal)

    # -- pipelining.PipelinedAnswerer ----------------------------------------------------------

    def answer_now(self, headers: CIMultiDictProxy[str], body: bytes) -> bool:
        """A POSTed call executed at once when handle() would answer it with a bare 202.

        Anything handle() answers otherwise (a refusal, a stream, a text) is declined before
        any change, and handle() then answers it.
        """
        principal: str | None = None
        if self.authenticator is not None:
            try:
                principal = self.authenticator.principal_of(headers)
            except AuthenticationFailed:
                return False
        if check_content_type(headers) is not None:
            return False
        call, problem = convert_call(body, SchedulerCall, "Call")
        if problem is not None:
            return False
        assert call is not None
        if validate_call(call, principal) or call["type"] in _NOT_PIPELINED:
            return False
        framework, problem = self._caller(headers, call, principal)
        if framework is None:
            return False
        self._execute(framework, call)
        return True

    def remember_failure(self, payload: StreamReader, error: Exception) -> None:
        if len(self._failures) >= _MAX_REMEMBERED_FAILURES:
            del self._failures[next(iter(self._failures))]
        self._failures[id(payload)] = (payload, error)

    # -- calls -----------------------------------------------------------------------------------

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

    def _caller(
        self, headers: Mapping[str, str], call: JsonObject, principal: str | None
    ) -> tuple[Framework | None, web.Response | None]:
        """The subscribed framework making a (non-SUBSCRIBE) call, or Mesos' refusal."""
        framework = self.master.frameworks.get(call["framework_id"]["value"])
        if framework is None:
            return None, bad_request("Framework cannot be found")
        if principal is not None and principal != framework.info.get("principal"):
            return None, bad_request(
                f"Authenticated principal '{principal}' does not match principal "
                f"'{framework.info.get('principal', '')}' set in `FrameworkInfo`"
            )
        if framework.stream is None:
            return None, forbidden("Framework is not subscribed")
        stream_id = headers.get("Mesos-Stream-Id")
        if stream_id is None:
            return None, bad_request("All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        if stream_id != framework.stream.stream_id:
            return None, bad_request(
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
                f"associated with framework ID {framework.framework_id}"
            )
        return framework, None

    def _call(
        self, headers: Mapping[str, str], call: JsonObject, principal: str | None
    ) -> web.StreamResponse:
        framework, problem = self._caller(headers, call, principal)
        if problem is not None:
            return problem
        assert framework is not None
        kind = call["type"]
        if kind == "UPDATE_FRAMEWORK":
            status, message = self.master.update_framework(framework, call["update_framework"])
            return text_response(status, message)
        if kind == "UNKNOWN":
            log.warning("received 'UNKNOWN' call")
            return text_response(501)
        self._execute(framework, call)
        return accepted()

    def _execute(self, framework: Framework, call: JsonObject) -> None:
        """A call answered 202 Accepted."""
        master = self.master
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
        # REQUEST, inverse offers and operation calls have no effect in the stand-in.
