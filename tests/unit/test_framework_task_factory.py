"""From the spec to the TaskInfo: the plan the executor reads, the launch command, the fingerprint."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess

import pytest

from executor.task_plan import Distribution, TaskPlan
from framework.mesos_resources import Resources
from framework.spec import Artifact, Key, Role
from framework.task_factory import (
    CLUSTER_LABEL,
    CONFIG_LABEL,
    ROLE_LABEL,
    TaskFactory,
    slug,
    unpacked_directory,
)
from tests.unit.test_framework_events import ALLUXIO_SHA, make_spec

SALT = b"\x01" * 32
MASTERS = ["host-1"]


def fetched_spec(**extra: str) -> TaskFactory:
    spec = make_spec(
        **{
            Key.ALLUXIO_URL: "http://artifacts.example/dist/alluxio-2.9.6-bin.tar.gz",
            Key.ALLUXIO_SHA256: ALLUXIO_SHA,
            Key.JDK_URL: "file:///srv/jdk-17.tar.gz",
            Key.JDK_SHA256: "c" * 64,
            Key.JDK_PATH: "jdk-17.0.9",
            Key.RUN_AS_USER: "alluxio",
            **extra,
        }
    )
    return TaskFactory(spec, SALT)


def worker_info(factory: TaskFactory) -> dict:  # type: ignore[type-arg]
    return factory.task_info(
        Role.WORKER,
        task_id="t-1",
        agent_id="S1",
        hostname="host-2",
        master_hosts=MASTERS,
        resources=Resources.of(cpus=1, mem=2048, ports=[(29998, 29998), (30000, 30000)]),
        config_hash=factory.config_hash(Role.WORKER, MASTERS),
    )


def test_worker_task_info_carries_executor_kill_policy_labels_and_plan() -> None:
    factory = fetched_spec()
    info = worker_info(factory)
    assert info["task_id"] == {"value": "t-1"}
    assert info["agent_id"] == {"value": "S1"}
    assert info["name"] == "AlluxioWorker"
    assert info["executor"]["executor_id"] == {"value": "t-1"}
    assert "command" not in info, "exactly one of executor or command"
    # The tarballs are staged by the executor once per host; the fetcher only gets the bundle.
    uris = info["executor"]["command"]["uris"]
    assert uris == [
        {
            "value": "http://artifacts.example/alluxio-mesos-executor.pyz",
            "executable": True,
            "extract": False,
        },
    ]
    assert info["kill_policy"] == {"grace_period": {"nanoseconds": 30_000_000_000}}
    assert info["executor"]["shutdown_grace_period"] == {"nanoseconds": 45_000_000_000}
    labels = {label["key"]: label["value"] for label in info["labels"]["labels"]}
    assert labels[ROLE_LABEL] == "worker"
    assert labels[CLUSTER_LABEL] == "alluxio"
    assert labels[CONFIG_LABEL] == factory.config_hash(Role.WORKER, MASTERS)

    plan = TaskPlan.from_task_data(info["data"])  # validated by the executor's own parser
    assert plan.alluxio_home_mode == "staged"
    assert plan.alluxio_home == "alluxio-2.9.6"
    assert plan.alluxio_dist == Distribution(
        url="http://artifacts.example/dist/alluxio-2.9.6-bin.tar.gz", sha256=ALLUXIO_SHA
    )
    assert plan.java_home_mode == "staged"
    assert plan.java_home == "jdk-17.0.9"
    assert plan.jdk_dist == Distribution(url="file:///srv/jdk-17.tar.gz", sha256="c" * 64)
    assert plan.cache_dir == "/var/lib/alluxio-mesos/cache"
    assert [a.filename for a in plan.artifacts] == ["alluxio-mesos-executor.pyz"]
    assert plan.run_as_user == "alluxio"
    assert plan.heap_size_mb == 768
    assert plan.ports == {"rpc": 29998, "data": 29999, "web": 30000}
    assert plan.alluxio_properties[Key.MASTER_PORT_LEGACY] == "19998"


def test_the_cache_dir_is_the_spec_s() -> None:
    factory = fetched_spec(**{Key.CACHE_DIR: "/srv/alluxio-cache"})
    assert factory.plan(Role.MASTER, "host-1", MASTERS).cache_dir == "/srv/alluxio-cache"


def test_tarballs_the_executor_cannot_stage_are_left_to_the_fetcher() -> None:
    factory = fetched_spec(
        **{
            Key.ALLUXIO_URL: "hdfs://namenode:8020/dist/alluxio-2.9.6-bin.tar.gz",
            Key.JDK_URL: "http://artifacts.example/jdk-17.zip",
        }
    )
    uris = worker_info(factory)["executor"]["command"]["uris"]
    assert uris[1:] == [
        {"value": "hdfs://namenode:8020/dist/alluxio-2.9.6-bin.tar.gz", "extract": True},
        {"value": "http://artifacts.example/jdk-17.zip", "extract": True},
    ]
    plan = factory.plan(Role.WORKER, "host-2", MASTERS)
    assert (plan.alluxio_home_mode, plan.java_home_mode) == ("fetched", "fetched")
    assert (plan.alluxio_dist, plan.jdk_dist, plan.cache_dir) == (None, None, "")
    assert [a.filename for a in plan.artifacts] == [
        "alluxio-mesos-executor.pyz",
        "alluxio-2.9.6-bin.tar.gz",
        "jdk-17.zip",
    ]


def test_only_the_jdk_can_be_staged_next_to_a_local_alluxio() -> None:
    factory = TaskFactory(
        make_spec(
            **{
                Key.ALLUXIO_HOME: "/srv/alluxio",
                Key.JDK_URL: "/srv/dist/jdk-17.tar.gz",
                Key.JDK_SHA256: "c" * 64,
                Key.JDK_PATH: "jdk-17.0.9",
            }
        ),
        SALT,
    )
    plan = factory.plan(Role.WORKER, "host-2", MASTERS)
    assert (plan.alluxio_home_mode, plan.alluxio_home, plan.alluxio_dist) == ("local", "/srv/alluxio", None)
    assert plan.java_home_mode == "staged"
    assert plan.jdk_dist == Distribution(url="/srv/dist/jdk-17.tar.gz", sha256="c" * 64)
    assert len(worker_info(factory)["executor"]["command"]["uris"]) == 1


def test_the_alluxio_directory_can_be_named() -> None:
    factory = fetched_spec(**{Key.ALLUXIO_PATH: "alluxio-2.9.6-mesos"})
    assert factory.plan(Role.WORKER, "h", MASTERS).alluxio_home == "alluxio-2.9.6-mesos"


def test_master_plan_in_local_mode() -> None:
    factory = TaskFactory(make_spec(**{Key.ALLUXIO_HOME: "/srv/alluxio", Key.JOURNAL_TYPE: "UFS"}), SALT)
    plan = factory.plan(Role.MASTER, "host-1", MASTERS)
    assert (plan.alluxio_home_mode, plan.alluxio_home) == ("local", "/srv/alluxio")
    assert (plan.java_home_mode, plan.java_home) == ("local", "")
    assert plan.ports == {"rpc": 19998, "web": 19999}
    assert plan.alluxio_properties[Key.JOURNAL_TYPE] == "UFS"
    assert plan.journal_dir == "/var/lib/alluxio-mesos/journal"
    assert [a.filename for a in plan.artifacts] == ["alluxio-mesos-executor.pyz"]


def test_the_framework_secret_never_reaches_a_task() -> None:
    factory = fetched_spec(**{Key.SECRET: "mesos-secret-value"})
    info = worker_info(factory)
    plan = TaskPlan.from_task_data(info["data"])
    assert "mesos-secret-value" not in repr(info)
    assert "mesos-secret-value" not in plan.to_json()


@pytest.fixture
def bundle(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "alluxio-mesos-executor.pyz"
    path.write_bytes(b"print('executor')\n")
    return path


def run_launch_command(factory: TaskFactory, sandbox: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", factory.launch_command()],
        check=False,
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_launch_command_runs_a_verified_bundle(bundle: pathlib.Path) -> None:
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    spec = make_spec(**{Key.EXECUTOR_SHA256: digest, Key.EXECUTOR_PYTHON: "cat"})
    result = run_launch_command(TaskFactory(spec, SALT), bundle.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "print('executor')\n"


def test_launch_command_refuses_a_tampered_bundle(bundle: pathlib.Path) -> None:
    spec = make_spec(**{Key.EXECUTOR_SHA256: "0" * 64, Key.EXECUTOR_PYTHON: "cat"})
    result = run_launch_command(TaskFactory(spec, SALT), bundle.parent)
    assert result.returncode == 86
    assert result.stdout == ""
    assert "alluxio-mesos-executor.pyz does not match sha256 " + "0" * 64 in result.stderr


def test_fingerprint_depends_on_what_shapes_the_task_only() -> None:
    base = fetched_spec()
    again = fetched_spec()
    assert base.config_hash(Role.WORKER, MASTERS) == again.config_hash(Role.WORKER, MASTERS)
    unrelated = fetched_spec(**{Key.FAILOVER_TIMEOUT: "3weeks", Key.STATUS_PORT: "2000"})
    assert unrelated.config_hash(Role.WORKER, MASTERS) == base.config_hash(Role.WORKER, MASTERS)
    more_memory = fetched_spec(**{Key.WORKER_MEM: "4GB"})
    assert more_memory.config_hash(Role.WORKER, MASTERS) != base.config_hash(Role.WORKER, MASTERS)
    assert more_memory.config_hash(Role.MASTER, MASTERS) == base.config_hash(Role.MASTER, MASTERS)
    moved_master = base.config_hash(Role.WORKER, ["host-9"])
    assert moved_master != base.config_hash(Role.WORKER, MASTERS)
    other_salt = TaskFactory(base.spec, b"\x02" * 32)
    assert other_salt.config_hash(Role.WORKER, MASTERS) != base.config_hash(Role.WORKER, MASTERS)


def test_task_ids_are_valid_mesos_ids() -> None:
    spec = make_spec(**{Key.FRAMEWORK_NAME: "prod/alluxio cluster"})
    task_id = TaskFactory(spec, SALT).new_task_id(Role.WORKER, "node 7.example/com")
    assert "/" not in task_id
    assert "\\" not in task_id
    assert " " not in task_id
    assert task_id.startswith("prod-alluxio-cluster-worker-node-7.example-com-")


@pytest.mark.parametrize(
    ("url", "directory"),
    [
        ("http://h/alluxio-2.9.6-bin.tar.gz", "alluxio-2.9.6"),
        ("http://h/alluxio-2.9.6.tgz", "alluxio-2.9.6"),
        ("file:///srv/alluxio-custom.tar.xz", "alluxio-custom"),
    ],
)
def test_unpacked_directory(url: str, directory: str) -> None:
    assert unpacked_directory(Artifact(url=url, sha256="a" * 64)) == directory


@pytest.mark.parametrize("role", [Role.MASTER, Role.WORKER])
def test_rendered_task_data_is_the_canonical_plan_of_that_host(role: Role) -> None:
    factory = fetched_spec(**{"alluxio.user.file.writetype.default": 'CACHE_THROUGH "q"'})
    for host in ["host-1", "host-2", 'odd"host\\name']:
        data = factory.task_info(
            role,
            task_id="t-1",
            agent_id="S1",
            hostname=host,
            master_hosts=MASTERS,
            resources=Resources.of(cpus=1),
            config_hash=factory.config_hash(role, MASTERS),
        )["data"]
        plan = TaskPlan.from_task_data(data)  # the executor's own validating parser
        assert data == plan.to_task_data()  # byte-identical to the canonical encoding
        own_key = Key.MASTER_HOSTNAME if role is Role.MASTER else Key.WORKER_HOSTNAME
        assert plan.alluxio_properties[own_key] == host
        assert plan.alluxio_properties["alluxio.user.file.writetype.default"] == 'CACHE_THROUGH "q"'
        assert plan.instance_name == f"alluxio-{role.value}-{slug(host)}"
        assert plan == factory.plan(role, host, MASTERS)
    if role is Role.WORKER:
        assert TaskPlan.from_task_data(data).alluxio_properties[Key.MASTER_HOSTNAME] == "host-1"


def test_fingerprint_does_not_depend_on_the_host_but_on_what_the_spec_says() -> None:
    factory = fetched_spec()
    first = factory.config_hash(Role.WORKER, MASTERS)
    again = fetched_spec().config_hash(Role.WORKER, MASTERS)
    assert first == again
    assert first != fetched_spec(**{"alluxio.worker.tieredstore.levels": "1"}).config_hash(
        Role.WORKER, MASTERS
    )


def test_a_property_that_looks_like_the_template_marks_is_rendered_exactly() -> None:
    # An escaped backslash followed by a NUL: the JSON text then holds the marks' very characters.
    tricky = "\\u0000host\x00 and \\u0000slug\x00"
    factory = fetched_spec(**{"alluxio.user.note": tricky})
    info = factory.task_info(
        Role.WORKER,
        task_id="t-1",
        agent_id="S1",
        hostname="host-7",
        master_hosts=MASTERS,
        resources=Resources.of(cpus=1),
        config_hash=factory.config_hash(Role.WORKER, MASTERS),
    )
    plan = TaskPlan.from_task_data(info["data"])
    assert plan.alluxio_properties["alluxio.user.note"] == tricky
    assert plan.alluxio_properties[Key.WORKER_HOSTNAME] == "host-7"
    assert info["data"] == plan.to_task_data()
