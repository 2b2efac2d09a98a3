"""HTTP Basic authentication against the ``--credentials`` file, per Mesos realm."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from aiohttp import web

from sandbox.mesos.http import text_response

SCHEDULER_REALM = "mesos-master-scheduler"
READONLY_REALM = "mesos-master-readonly"
READWRITE_REALM = "mesos-master-readwrite"


class AuthenticationFailed(Exception):
    """Missing or wrong credentials; the HTTP answer is 401 with a Basic challenge."""


class BasicAuthenticator:
    def __init__(self, credentials: dict[str, str]) -> None:
        self._credentials = credentials

    def principal(self, request: web.Request) -> str:
        """The authenticated principal, or AuthenticationFailed."""
        return self.principal_of(request.headers)

    def principal_of(self, headers: Mapping[str, str]) -> str:
        """The principal authenticated by a request's headers, or AuthenticationFailed."""
        header = headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise AuthenticationFailed("missing Basic credentials")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise AuthenticationFailed("malformed Basic credentials") from error
        principal, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthenticationFailed("malformed Basic credentials")
        expected = self._credentials.get(principal)
        # Constant-time comparison; the secret is never logged.
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise AuthenticationFailed("invalid credentials")
        return principal


def unauthorized(realm: str) -> web.Response:
    return text_response(401, "", headers={"WWW-Authenticate": f'Basic realm="{realm}"'})
