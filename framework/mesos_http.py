"""Small HTTP client for what the CLI reads from Mesos and from the framework's status endpoint:
the master's /master/state, an agent's /state, and the operator API TEARDOWN call."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 10.0


class MesosHttpError(RuntimeError):
    pass


def _url(address: str, path: str) -> str:
    base = address if "://" in address else f"http://{address}"
    return base.rstrip("/") + path


def basic_authorization(principal: str | None, secret: str | None) -> str | None:
    """The HTTP Basic `Authorization` value for the framework's principal (None without secret)."""
    if principal is None or secret is None:
        return None
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode("ascii")


def get_json(address: str, path: str, timeout: float = TIMEOUT_SECONDS) -> Any:
    url = _url(address, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise MesosHttpError(f"GET {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise MesosHttpError(f"GET {url}: {reason}") from None
    except json.JSONDecodeError as error:
        raise MesosHttpError(f"GET {url}: not JSON ({error})") from None


def teardown_framework(
    master: str, framework_id: str, principal: str | None = None, secret: str | None = None
) -> None:
    """Operator API TEARDOWN: Mesos kills the framework's executors and removes it."""
    body = json.dumps({"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}}).encode()
    url = _url(master, "/api/v1")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    authorization = basic_authorization(principal, secret)
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace").strip()
        raise MesosHttpError(f"TEARDOWN of {framework_id} at {url}: HTTP {error.code} {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise MesosHttpError(f"TEARDOWN at {url}: {getattr(error, 'reason', error)}") from None


def framework_tasks(master_state: dict[str, Any], framework_id: str) -> tuple[bool, list[dict[str, Any]]]:
    """(whether the master still has the framework, its tasks that are not terminal)."""
    for framework in master_state.get("frameworks", []):
        if framework.get("id") == framework_id:
            live = [
                t
                for t in framework.get("tasks", [])
                if t.get("state")
                not in {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"}
            ]
            return True, live
    return False, []


def agent_address(agent: dict[str, Any]) -> str | None:
    """`host:port` of an agent from /master/state's slaves[] (`pid` is `slave(1)@ip:port`)."""
    pid = str(agent.get("pid", ""))
    if "@" in pid:
        return pid.split("@", 1)[1]
    if agent.get("hostname") and agent.get("port"):
        return f"{agent['hostname']}:{agent['port']}"
    return None


def agent_runs_framework(agent_state: dict[str, Any], framework_id: str) -> bool:
    """Whether an agent's /state still lists executors of the framework."""
    for framework in agent_state.get("frameworks", []):
        if framework.get("id") == framework_id and framework.get("executors"):
            return True
    return False
