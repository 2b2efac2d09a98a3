"""The task plan: round trips through TaskInfo.data and refuses bad input with a named key."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.task_plan import Artifact, Distribution, TaskPlan, TaskPlanError

SHA = "a" * 64


def worker_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "version": 2,
        "role": "worker",
        "alluxio_properties": {"alluxio.master.hostname": "m1"},
        "artifacts": [{"filename": "alluxio-2.9.6-bin.tar.gz", "sha256": SHA, "url": "http://h/a.tgz"}],
        "alluxio_home_mode": "fetched",
        "alluxio_home": "alluxio-2.9.6",
        "java_home_mode": "local",
        "java_home": "",
        "heap_size_mb": 512,
        "ports": {"rpc": 29998, "data": 29999, "web": 30000},
        "ramdisk_size_bytes": 64 << 20,
    }
    fields.update(overrides)
    return fields


def staged_fields(**overrides: Any) -> dict[str, Any]:
    """A worker whose Alluxio the executor stages once per host under cache_dir."""
    fields = worker_fields(
        artifacts=[],
        alluxio_home_mode="staged",
        alluxio_dist={"url": "http://h/alluxio-2.9.6-bin.tar.gz", "sha256": SHA},
        cache_dir="/var/lib/alluxio-mesos/cache",
    )
    fields.update(overrides)
    return fields


def master_fields(**overrides: Any) -> dict[str, Any]:
    fields = worker_fields(
        role="master",
        ports={"rpc": 19998, "web": 19999},
        ramdisk_size_bytes=0,
        journal_dir="/var/lib/alluxio/journal",
    )
    fields.update(overrides)
    return fields


def decode(fields: dict[str, Any]) -> TaskPlan:
    return TaskPlan.from_json(json.dumps(fields))


def test_worker_plan_round_trips_through_task_data() -> None:
    plan = decode(worker_fields())
    data = plan.to_task_data()
    # TaskInfo.data is base64 of UTF-8 JSON on the v1 wire.
    assert json.loads(base64.b64decode(data))["role"] == "worker"
    again = TaskPlan.from_task_data(data)
    assert again == plan
    assert again.artifacts == [Artifact("alluxio-2.9.6-bin.tar.gz", SHA, "http://h/a.tgz")]
    assert again.effective_instance_name == "alluxio-worker"


def test_staged_plan_round_trips() -> None:
    plan = decode(
        staged_fields(
            java_home_mode="staged",
            java_home="jdk-17",
            jdk_dist={"url": "file:///srv/jdk-17.tar.gz", "sha256": "b" * 64},
        )
    )
    assert plan.alluxio_dist == Distribution("http://h/alluxio-2.9.6-bin.tar.gz", SHA)
    assert plan.jdk_dist == Distribution("file:///srv/jdk-17.tar.gz", "b" * 64)
    assert plan.cache_dir == "/var/lib/alluxio-mesos/cache"
    again = TaskPlan.from_task_data(plan.to_task_data())
    assert again == plan
    assert json.loads(plan.to_json())["jdk_dist"] == {"url": "file:///srv/jdk-17.tar.gz", "sha256": "b" * 64}


def test_to_json_is_canonical() -> None:
    a = decode(worker_fields(alluxio_properties={"b": "2", "a": "1"}))
    b = decode(worker_fields(alluxio_properties={"a": "1", "b": "2"}))
    assert a.to_json() == b.to_json()
    assert " " not in a.to_json()


def test_master_plan_defaults() -> None:
    plan = decode(master_fields())
    assert plan.journal_dir == "/var/lib/alluxio/journal"
    assert plan.grace_period_secs is None
    assert plan.readiness_timeout_secs == 180.0
    assert plan.jvm_options == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (worker_fields(version=1), "key 'version': this executor understands version 2, got 1"),
        (
            worker_fields(alluxio_home_mode="staged"),
            "key 'alluxio_dist': required when alluxio_home_mode is 'staged'",
        ),
        (
            worker_fields(alluxio_dist={"url": "http://h/a.tgz", "sha256": SHA}),
            "key 'alluxio_dist': only used when alluxio_home_mode is 'staged'",
        ),
        (
            staged_fields(alluxio_dist={"url": "hdfs://nn/a.tgz", "sha256": SHA}),
            "key 'alluxio_dist.url': must be an http, https or file URL or an absolute path",
        ),
        (
            staged_fields(alluxio_dist={"url": "http://h/a b.tgz", "sha256": SHA}),
            "key 'alluxio_dist.url': must be a non-empty URL without whitespace",
        ),
        (
            staged_fields(alluxio_dist={"url": "http://h/a.tgz", "sha256": "A" * 64}),
            "key 'alluxio_dist.sha256': must be 64 lowercase hex digits",
        ),
        (staged_fields(alluxio_dist={"url": "http://h/a.tgz"}), "key 'alluxio_dist.sha256': missing"),
        (
            staged_fields(alluxio_dist={"url": "/a.tgz", "sha256": SHA, "size": 1}),
            "key 'alluxio_dist': unknown key(s) ['size']",
        ),
        (staged_fields(alluxio_dist="http://h/a.tgz"), "key 'alluxio_dist': must be null or an object"),
        (staged_fields(cache_dir=""), "key 'cache_dir': must be an absolute path"),
        (staged_fields(cache_dir="var/cache"), "key 'cache_dir': must be an absolute path"),
        (worker_fields(cache_dir="/var/cache"), "key 'cache_dir': only used with a staged home mode"),
        (staged_fields(alluxio_home="../x"), "key 'alluxio_home': must stay inside"),
        (
            staged_fields(java_home_mode="staged", java_home="jdk"),
            "key 'jdk_dist': required when java_home_mode is 'staged'",
        ),
        (worker_fields(role="proxy"), "key 'role': must be one of master|worker, got 'proxy'"),
        (worker_fields(colour="blue"), "unknown key(s) 'colour'"),
        (
            worker_fields(alluxio_properties={"alluxio.integration.mesos.secret": "x"}),
            "key 'alluxio_properties.alluxio.integration.mesos.secret': framework secrets must never",
        ),
        (
            worker_fields(alluxio_properties={"alluxio.worker.port": "1234"}),
            "key 'alluxio_properties.alluxio.worker.port': is '1234' but the plan field 'ports.rpc' sets it",
        ),
        (
            worker_fields(alluxio_properties={"alluxio.worker.rpc.port": "1"}),
            "key 'alluxio_properties.alluxio.worker.rpc.port': is '1' but the plan field 'ports.rpc'",
        ),
        (
            worker_fields(alluxio_properties={"alluxio.worker.tieredstore.level0.dirs.path": "/mnt/r"}),
            "use the plan field 'ramdisk_dir' instead",
        ),
        (
            worker_fields(alluxio_properties={"k": 5}),
            "key 'alluxio_properties.k': value must be a string, got int",
        ),
        (worker_fields(ramdisk_size_bytes=0), "key 'ramdisk_size_bytes': a worker needs a ramdisk size > 0"),
        (worker_fields(ports={"rpc": 29998, "data": 29999}), "key 'ports.web': missing"),
        (
            worker_fields(ports={"rpc": 1, "data": 1, "web": 2}),
            "key 'ports.data': port 1 is also used by ports.rpc",
        ),
        (
            worker_fields(ports={"rpc": 70000, "data": 2, "web": 3}),
            "key 'ports.rpc': must be an integer 1..65535",
        ),
        (
            worker_fields(ports={"rpc": True, "data": 2, "web": 3}),
            "key 'ports.rpc': must be an integer 1..65535",
        ),
        (worker_fields(alluxio_home="../../etc"), "key 'alluxio_home': must stay inside the sandbox"),
        (
            worker_fields(alluxio_home_mode="local", alluxio_home="opt/a"),
            "key 'alluxio_home': must be an absolute",
        ),
        (worker_fields(heap_size_mb=10), "key 'heap_size_mb': must be an integer >= 64, got 10"),
        (worker_fields(run_as_user="root"), "key 'run_as_user': must be an unprivileged user, not 'root'"),
        (worker_fields(run_as_user="bad name"), "key 'run_as_user': must be a user name"),
        (worker_fields(grace_period_secs=-1), "key 'grace_period_secs': must be null or a number >= 0"),
        (worker_fields(readiness_timeout_secs=0), "key 'readiness_timeout_secs': must be a number > 0"),
        (worker_fields(instance_name="a/b"), "key 'instance_name': must match"),
        (worker_fields(journal_dir="/j"), "key 'journal_dir': only a master has a journal"),
        (
            worker_fields(artifacts=[{"filename": "a", "sha256": "ABC"}]),
            "key 'artifacts[0].sha256': must be 64",
        ),
        (
            worker_fields(artifacts=[{"filename": "/etc/passwd", "sha256": SHA}]),
            "key 'artifacts[0].filename'",
        ),
        (worker_fields(artifacts=[{"sha256": SHA}]), "key 'artifacts[0].filename': missing"),
        (master_fields(journal_dir=""), "key 'journal_dir': a master needs an absolute journal directory"),
        (master_fields(ramdisk_size_bytes=4096), "key 'ramdisk_size_bytes': only a worker has a ramdisk"),
        (master_fields(ports={"rpc": 1, "web": 2, "data": 3}), "key 'ports.data': unknown for a master"),
        (
            master_fields(alluxio_properties={"alluxio.master.journal.folder": "/elsewhere"}),
            "the plan field 'journal_dir' sets it",
        ),
    ],
)
def test_bad_plans_name_the_key_and_the_problem(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TaskPlanError) as caught:
        decode(fields)
    assert fragment in str(caught.value)


def test_missing_keys_are_listed() -> None:
    fields = worker_fields()
    del fields["ports"]
    del fields["heap_size_mb"]
    with pytest.raises(TaskPlanError, match=r"missing key\(s\) 'heap_size_mb', 'ports'"):
        decode(fields)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "TaskInfo.data is empty"),
        ("%%%not-base64", "TaskInfo.data is not base64"),
        (base64.b64encode(b"{not json").decode(), "not valid JSON"),
        (base64.b64encode(b"\xff\xfe").decode(), "not UTF-8"),
        (base64.b64encode(b"[1]").decode(), "expected a JSON object, got list"),
    ],
)
def test_undecodable_task_data(data: str, fragment: str) -> None:
    with pytest.raises(TaskPlanError, match="task plan") as caught:
        TaskPlan.from_task_data(data)
    assert fragment in str(caught.value)


def test_managed_keys_with_the_same_value_are_accepted() -> None:
    plan = decode(worker_fields(alluxio_properties={"alluxio.worker.port": "29998"}))
    assert plan.alluxio_properties["alluxio.worker.port"] == "29998"


def test_ufs_credentials_are_not_mistaken_for_framework_secrets() -> None:
    # Alluxio's own under-storage keys legitimately carry secrets the servers need.
    plan = decode(worker_fields(alluxio_properties={"s3a.secretKey": "k", "aws.secretKey": "k"}))
    assert "s3a.secretKey" in plan.alluxio_properties


_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    props=st.dictionaries(st.from_regex(r"[a-z][a-z0-9.]{0,15}", fullmatch=True), _texts, max_size=5),
    heap=st.integers(min_value=64, max_value=1 << 20),
    grace=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
    options=st.lists(_texts.filter(bool), max_size=3),
)
def test_any_valid_plan_round_trips(
    props: dict[str, str], heap: int, grace: float | None, options: list[str]
) -> None:
    props = {k: v for k, v in props.items() if not k.startswith("alluxio.")}
    plan = decode(
        worker_fields(
            alluxio_properties=props, heap_size_mb=heap, grace_period_secs=grace, jvm_options=options
        )
    )
    assert TaskPlan.from_task_data(plan.to_task_data()) == plan
