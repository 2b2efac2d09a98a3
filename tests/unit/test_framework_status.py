"""The status endpoint over real HTTP: read-only, JSON and HTML, decline reasons, no secrets."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from framework.spec import Key
from framework.status import status_document
from framework.status_server import StatusServer
from tests.unit.test_framework_core import Cluster
from tests.unit.test_framework_events import make_spec, offer

SECRETS = ("mesos-secret-value", "aws-secret-value")


@pytest.fixture
def cluster() -> Cluster:
    spec = make_spec(**{Key.SECRET: SECRETS[0], "aws.secretKey": SECRETS[1]})
    running = Cluster(spec)
    running.start_everything(["host-1", "host-2"])
    running.raw_offers([offer("host-3", agent_id="a3", ports=((31000, 32000),))])
    return running


@pytest.fixture
def server(cluster: Cluster) -> Iterator[StatusServer]:
    def snapshot() -> dict[str, Any]:
        return status_document(cluster.core, mesos_master="m1:5050", started_at=1.0)

    status_server = StatusServer("127.0.0.1", 0, snapshot)
    status_server.start()
    try:
        yield status_server
    finally:
        status_server.stop()


def request(server: StatusServer, method: str, path: str) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode("utf-8")
    finally:
        connection.close()


def test_status_json_describes_the_cluster(server: StatusServer) -> None:
    status, content_type, body = request(server, "GET", "/status.json")
    assert status == 200
    assert content_type == "application/json"
    doc = json.loads(body)
    assert doc["phase"] == "running"
    assert doc["framework"]["connected"] is True
    assert doc["framework"]["mesos_master"] == "m1:5050"
    assert sorted((t["role"], t["host"], t["state"]) for t in doc["tasks"]) == [
        ("master", "host-1", "TASK_RUNNING"),
        ("worker", "host-1", "TASK_RUNNING"),
        ("worker", "host-2", "TASK_RUNNING"),
    ]
    assert [d["line"] for d in doc["declines"]] == [
        "agent a3 (host-3): AlluxioWorker: missing ports 29998,30000"
    ]
    assert doc["alluxio"]["master_web_urls"] == ["http://host-1:19999/"]
    assert len(doc["spec_hash"]) == 20


def test_html_page_and_health(server: StatusServer) -> None:
    status, content_type, body = request(server, "GET", "/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert "agent a3 (host-3): AlluxioWorker: missing ports 29998,30000" in body
    assert "http://host-1:19999/" in body
    assert request(server, "GET", "/health")[:1] == (200,)
    assert request(server, "GET", "/nope")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_nothing_can_be_changed_over_http(server: StatusServer, method: str) -> None:
    status, _, body = request(server, method, "/status.json")
    assert status == 405
    assert body == "read-only\n"


def test_no_secret_in_any_view(server: StatusServer) -> None:
    for path in ("/", "/status.json"):
        _, _, body = request(server, "GET", path)
        for secret in SECRETS:
            assert secret not in body
