"""The cluster spec: legacy keys and defaults, derived task resources and ports, and every kind of
bad input refused with the key and the reason."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from framework.spec import (
    DEFAULT_ALLUXIO_URL,
    MASKED,
    ClusterSpec,
    JournalType,
    Key,
    Role,
    SpecError,
    is_sensitive_key,
    load_spec,
    load_spec_file,
)
from framework.units import MB, format_size, parse_duration, parse_size
from tests.unit.test_framework_events import ALLUXIO_SHA, EXECUTOR_SHA, make_spec

REQUIRED = {
    Key.EXECUTOR_URL: "http://artifacts.example/alluxio-mesos-executor.pyz",
    Key.EXECUTOR_SHA256: EXECUTOR_SHA,
}


def issues_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_spec({**REQUIRED, **data})
    return dict(caught.value.issues)


def test_legacy_defaults_are_kept() -> None:
    spec = load_spec({**REQUIRED, Key.ALLUXIO_SHA256: ALLUXIO_SHA})
    assert spec.alluxio_url == DEFAULT_ALLUXIO_URL
    assert spec.jdk_url == "LOCAL"
    assert (spec.master_cpus, spec.master_mem_bytes) == (1.0, 1024 * MB)
    assert (spec.worker_cpus, spec.worker_jvm_mem_bytes) == (1.0, 1024 * MB)
    assert spec.ramdisk_bytes == 1024 * MB
    assert (spec.master_name, spec.worker_name) == ("AlluxioMaster", "AlluxioWorker")
    assert spec.master_count == 1
    assert (spec.principal, spec.secret, spec.role, spec.user) == ("alluxio", None, "*", "")
    assert spec.alluxio_home == "/opt/alluxio"
    assert spec.cache_dir == "/var/lib/alluxio-mesos/cache"
    assert (spec.master_rpc_port, spec.master_web_port) == (19998, 19999)
    assert (spec.worker_rpc_port, spec.worker_data_port, spec.worker_web_port) == (29998, 29999, 30000)
    assert spec.journal_type is JournalType.EMBEDDED
    assert spec.embedded_journal_port == 19200
    assert spec.failover_timeout_seconds == 7 * 86400
    assert spec.worker_count is None


def test_task_resources_follow_the_legacy_rules() -> None:
    spec = make_spec(
        **{
            Key.MASTER_CPU: "2",
            Key.MASTER_MEM: "2GB",
            Key.WORKER_CPU: "1.5",
            Key.WORKER_MEM: "1536MB",
            Key.RAMDISK_SIZE: "3GB",
        }
    )
    assert spec.cpus(Role.MASTER) == 2.0
    assert spec.task_mem_mb(Role.MASTER) == 2048
    assert spec.cpus(Role.WORKER) == 1.5
    # A worker's memory is its JVM plus its ramdisk.
    assert spec.task_mem_mb(Role.WORKER) == 1536 + 3072
    assert spec.heap_mb(Role.WORKER) == int(1536 * 0.75)


def test_ports_are_the_ones_alluxio_2_9_binds() -> None:
    spec = make_spec()
    assert spec.master_ports() == {
        Key.MASTER_RPC_PORT: 19998,
        Key.MASTER_WEB_PORT: 19999,
        Key.EMBEDDED_JOURNAL_PORT: 19200,
    }
    assert spec.worker_ports() == {Key.WORKER_RPC_PORT: 29998, Key.WORKER_WEB_PORT: 30000}
    assert spec.all_ports() == [19200, 19998, 19999, 29998, 30000]
    ufs = make_spec(**{Key.JOURNAL_TYPE: "UFS"})
    assert Key.EMBEDDED_JOURNAL_PORT not in ufs.master_ports()


def test_legacy_aliases_set_the_2_9_keys() -> None:
    spec = make_spec(
        **{Key.MASTER_PORT_LEGACY: "20998", Key.WORKER_PORT_LEGACY: "21998", Key.MEMORY_SIZE_LEGACY: "2GB"}
    )
    assert spec.master_rpc_port == 20998
    assert spec.worker_rpc_port == 21998
    assert spec.ramdisk_bytes == 2048 * MB
    same = make_spec(**{Key.MASTER_PORT_LEGACY: "20998", Key.MASTER_RPC_PORT: "20998"})
    assert same.master_rpc_port == 20998


def test_other_properties_pass_through_and_integration_keys_do_not() -> None:
    spec = make_spec(
        **{
            "alluxio.user.file.writetype.default": "CACHE_THROUGH",
            "alluxio.some.future.key": "x",
            "aws.accessKeyId": "AKIA",
        }
    )
    props = spec.common_alluxio_properties()
    assert props["alluxio.user.file.writetype.default"] == "CACHE_THROUGH"
    assert props["alluxio.some.future.key"] == "x"
    assert props["aws.accessKeyId"] == "AKIA"
    assert props[Key.JOURNAL_TYPE] == "EMBEDDED"
    assert not [k for k in props if k.startswith("alluxio.integration.")]


STARTUP_DEFAULTS = {
    "alluxio.master.update.check.enabled": "false",
    "alluxio.master.embedded.journal.catchup.retry.wait": "100ms",
}


def test_startup_defaults_are_set_unless_the_operator_sets_them() -> None:
    assert STARTUP_DEFAULTS.items() <= make_spec().common_alluxio_properties().items()
    chosen = {
        "alluxio.master.update.check.enabled": "true",
        "alluxio.master.embedded.journal.catchup.retry.wait": "2s",
    }
    props = make_spec(**chosen).common_alluxio_properties()
    assert {k: props[k] for k in chosen} == chosen


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({Key.MASTER_CPU: "abc"}, Key.MASTER_CPU, "valid number"),
        ({Key.MASTER_CPU: "0"}, Key.MASTER_CPU, "at least 0.01"),
        ({Key.WORKER_CPU: "nan"}, Key.WORKER_CPU, "at least 0.01"),
        ({Key.MASTER_MEM: "12MB"}, Key.MASTER_MEM, "below the 256MB"),
        ({Key.WORKER_MEM: "1 potato"}, Key.WORKER_MEM, "unknown size unit 'potato'"),
        ({Key.RAMDISK_SIZE: "0"}, Key.RAMDISK_SIZE, "at least 1MB"),
        ({Key.WORKER_WEB_PORT: "19999"}, Key.WORKER_WEB_PORT, "port 19999 is also alluxio.master.web.port"),
        ({Key.MASTER_RPC_PORT: "70000"}, Key.MASTER_RPC_PORT, "not a TCP port"),
        ({Key.MASTER_PORT_LEGACY: "1", Key.MASTER_RPC_PORT: "2"}, Key.MASTER_PORT_LEGACY, "conflicts with"),
        ({Key.RAMDISK_SIZE: "1GB", Key.MEMORY_SIZE_LEGACY: "2GB"}, Key.MEMORY_SIZE_LEGACY, "set only one"),
        ({Key.ALLUXIO_URL: "not a url"}, Key.ALLUXIO_URL, "whitespace"),
        ({Key.ALLUXIO_URL: "alluxio.tgz"}, Key.ALLUXIO_URL, "not a URL"),
        ({Key.ALLUXIO_URL: "http:///a.tgz", Key.ALLUXIO_SHA256: "a" * 64}, Key.ALLUXIO_URL, "has no host"),
        ({Key.ALLUXIO_URL: "http://host/"}, Key.ALLUXIO_URL, "does not name a file"),
        ({Key.ALLUXIO_URL: "http://host/a.tgz"}, Key.ALLUXIO_SHA256, "required"),
        ({Key.ALLUXIO_SHA256: "xyz"}, Key.ALLUXIO_SHA256, "64 hexadecimal"),
        ({Key.ALLUXIO_URL: "LOCAL", Key.ALLUXIO_HOME: "opt/alluxio"}, Key.ALLUXIO_HOME, "absolute path"),
        ({Key.ALLUXIO_URL: "LOCAL", Key.ALLUXIO_SHA256: "a" * 64}, Key.ALLUXIO_SHA256, "is LOCAL"),
        ({Key.JDK_URL: "http://h/jdk.tgz", Key.JDK_SHA256: "b" * 64}, Key.JDK_PATH, "required"),
        ({Key.JDK_URL: "http://h/jdk.tgz", Key.JDK_PATH: "jdk"}, Key.JDK_SHA256, "required"),
        (
            {Key.JDK_URL: "http://h/jdk.tgz", Key.JDK_SHA256: "b" * 64, Key.JDK_PATH: "/usr/jdk"},
            Key.JDK_PATH,
            "relative path",
        ),
        ({Key.JDK_PATH: "jdk"}, Key.JDK_PATH, "is LOCAL"),
        ({Key.ALLUXIO_URL: "LOCAL", Key.ALLUXIO_PATH: "alluxio"}, Key.ALLUXIO_PATH, "is LOCAL"),
        (
            {Key.ALLUXIO_URL: "http://h/a.tgz", Key.ALLUXIO_SHA256: "a" * 64, Key.ALLUXIO_PATH: "../x"},
            Key.ALLUXIO_PATH,
            "relative path inside the tarball",
        ),
        ({Key.MASTER_COUNT: "3", Key.JOURNAL_TYPE: "UFS"}, Key.MASTER_COUNT, "EMBEDDED"),
        ({Key.MASTER_COUNT: "0"}, Key.MASTER_COUNT, "greater than or equal to 1"),
        ({Key.MASTER_COUNT: "3", Key.MASTER_HOSTNAME: "h1"}, Key.MASTER_HOSTNAME, "single master"),
        ({Key.JOURNAL_TYPE: "ROCKS"}, Key.JOURNAL_TYPE, "EMBEDDED"),
        ({Key.JOURNAL_FOLDER: "journal"}, Key.JOURNAL_FOLDER, "absolute local path"),
        ({Key.CACHE_DIR: "cache"}, Key.CACHE_DIR, "absolute local path"),
        ({Key.CACHE_DIR: "/var/lib/../cache"}, Key.CACHE_DIR, "absolute local path"),
        ({Key.WORKER_COUNT: "0"}, Key.WORKER_COUNT, "at least 1"),
        ({Key.WORKER_COUNT: "many"}, Key.WORKER_COUNT, "'all' or a positive number"),
        ({Key.CONSTRAINTS: "rack"}, Key.CONSTRAINTS, "field:value"),
        ({Key.WORKER_CONSTRAINTS: "rack:LIKE:["}, Key.WORKER_CONSTRAINTS, "invalid regex"),
        ({Key.ROLE: "a b"}, Key.ROLE, "whitespace"),
        ({Key.ROLE: "-x"}, Key.ROLE, "cannot start with '-'"),
        ({Key.FAILOVER_TIMEOUT: "0"}, Key.FAILOVER_TIMEOUT, "kills all Alluxio tasks"),
        ({Key.FAILOVER_TIMEOUT: "1fortnight"}, Key.FAILOVER_TIMEOUT, "unknown duration unit"),
        ({Key.BACKOFF_INITIAL: "10secs", Key.BACKOFF_MAX: "5secs"}, Key.BACKOFF_MAX, "at least"),
        ({Key.TIER0_QUOTA: "1GB"}, Key.TIER0_QUOTA, "managed by the framework"),
        ({Key.WORKER_HOSTNAME: "h"}, Key.WORKER_HOSTNAME, "managed by the framework"),
        ({Key.SECRET: "s", Key.SECRET_FILE: "/etc/secret"}, Key.SECRET_FILE, "not both"),
        ({Key.SECRET_FILE: "secret.txt"}, Key.SECRET_FILE, "absolute path"),
        ({Key.STATUS_PORT: "-1"}, Key.STATUS_PORT, "greater than or equal to 0"),
        ({Key.MASTER_NAME: ""}, Key.MASTER_NAME, "at least 1 character"),
        (
            {"alluxio.integration.mesos.masterr.name": "x"},
            "alluxio.integration.mesos.masterr.name",
            "did you mean",
        ),
        ({Key.CONSTRAINTS: {"rack": "r1"}}, Key.CONSTRAINTS, "expected a string or number"),
    ],
)
def test_bad_input_is_refused_with_key_and_reason(data: dict[str, Any], key: str, reason: str) -> None:
    issues = issues_of(data)
    assert key in issues, issues
    assert reason in issues[key], issues[key]


def test_missing_executor_is_reported_as_required() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec({Key.ALLUXIO_URL: "LOCAL"})
    assert dict(caught.value.issues) == {Key.EXECUTOR_URL: "required", Key.EXECUTOR_SHA256: "required"}


def test_all_cross_field_problems_are_reported_at_once() -> None:
    issues = issues_of(
        {
            Key.ALLUXIO_URL: "http://h/alluxio.tgz",
            Key.WORKER_WEB_PORT: "19998",
            Key.MASTER_MEM: "100MB",
            Key.FAILOVER_TIMEOUT: "0",
        }
    )
    assert set(issues) == {Key.ALLUXIO_SHA256, Key.WORKER_WEB_PORT, Key.MASTER_MEM, Key.FAILOVER_TIMEOUT}
    text = str(SpecError(list(issues.items())))
    assert "4 problem(s)" in text
    assert f"  {Key.MASTER_MEM}: 100MB is below the 256MB a JVM needs" in text


def test_secrets_are_masked_everywhere_but_the_flat_form() -> None:
    spec = make_spec(
        **{Key.SECRET: "mesos-s3cret", "aws.secretKey": "aws-s3cret", "aws.accessKeyId": "AKIA1"}
    )
    assert "mesos-s3cret" not in repr(spec)
    assert "mesos-s3cret" not in str(spec.secret)
    assert spec.mesos_secret() == "mesos-s3cret"
    public = spec.public_view()
    assert public[Key.SECRET] == MASKED
    assert public["aws.secretKey"] == MASKED
    assert public["aws.accessKeyId"] == MASKED
    assert "s3cret" not in json.dumps(public)
    # The flat form is what the framework's own 0600 config file holds: complete.
    assert spec.to_properties()[Key.SECRET] == "mesos-s3cret"


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        (Key.SECRET, True),
        ("aws.secretKey", True),
        ("alluxio.underfs.s3.secretKey", True),
        ("fs.azure.account.key.acct.blob.core.windows.net", True),
        ("alluxio.security.login.password", True),
        ("fs.gcs.credential.path", True),
        ("alluxio.user.file.writetype.default", False),
        ("alluxio.master.mount.table.root.ufs", False),
    ],
)
def test_sensitive_key_detection(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_secret_file_is_read_when_asked(tmp_path: pathlib.Path) -> None:
    secret_file = tmp_path / "mesos.secret"
    secret_file.write_text("from-file\n", encoding="utf-8")
    spec = make_spec(**{Key.SECRET_FILE: str(secret_file)})
    assert spec.mesos_secret() == "from-file"


def test_flat_form_round_trips() -> None:
    spec = make_spec(
        **{
            Key.CONSTRAINTS: "rack:r1;hostname:UNLIKE:bad-.*",
            Key.WORKER_COUNT: "3",
            Key.RAMDISK_SIZE: "1536MB",
            Key.SECRET: "x",
            "alluxio.user.block.size.bytes.default": "64MB",
        }
    )
    again = load_spec(spec.to_properties())
    assert again == spec
    assert isinstance(again, ClusterSpec)


def test_loading_a_properties_file_like_the_old_script(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "alluxio-site.properties"
    conf.write_text(
        "# comment\n"
        f"{Key.EXECUTOR_URL}=http://h/alluxio-mesos-executor.pyz\n"
        f"{Key.EXECUTOR_SHA256} : {EXECUTOR_SHA}\n"
        f"{Key.ALLUXIO_URL} LOCAL\n"
        f"{Key.WORKER_CONSTRAINTS}=rack:LIKE:r[12];\\\n    hostname:UNLIKE:gpu-.*\n"
        "alluxio.master.mount.table.root.ufs=hdfs://nn:8020/alluxio\n",
        encoding="utf-8",
    )
    spec = load_spec_file(conf)
    assert [str(c) for c in spec.worker_constraints] == ["rack:LIKE:r[12]", "hostname:UNLIKE:gpu-.*"]
    assert spec.properties["alluxio.master.mount.table.root.ufs"] == "hdfs://nn:8020/alluxio"


def test_loading_a_json_spec(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(
        json.dumps(
            {
                **REQUIRED,
                Key.ALLUXIO_URL: "LOCAL",
                Key.MASTER_CPU: 2,
                Key.WORKER_COUNT: 4,
                Key.CONSTRAINTS: ["rack:r1", "hostname:UNLIKE:x"],
                "alluxio.user.short.circuit.enabled": False,
            }
        ),
        encoding="utf-8",
    )
    spec = load_spec_file(path)
    assert spec.master_cpus == 2.0
    assert spec.worker_count == 4
    assert len(spec.constraints) == 2
    assert spec.properties["alluxio.user.short.circuit.enabled"] == "false"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.properties", None, "configuration file not found"),
        ("broken.json", "{not json", "not valid JSON"),
        ("list.json", "[1, 2]", "one JSON object"),
        ("escape.properties", "alluxio.x=\\u12\n", "malformed \\uxxxx escape"),
    ],
)
def test_bad_files_are_refused_with_the_path(
    tmp_path: pathlib.Path, name: str, content: str | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    ((key, message),) = caught.value.issues
    assert key == str(path)
    assert reason in message


@pytest.mark.parametrize(
    ("text", "size"),
    [("1GB", 1024**3), ("512mb", 512 * MB), ("1.5g", int(1.5 * 1024**3)), ("1024", 1024)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["4 KB", "1GB ", "1 potato"])
def test_sizes_alluxio_rejects_are_rejected(text: str) -> None:
    # Alluxio 2.9.6 itself refuses these, so accepting them would hand the JVM a value it rejects.
    with pytest.raises(ValueError, match="cannot parse"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5secs", 5.0), ("2mins", 120.0), ("1weeks", 604800.0), ("7d", 604800.0), ("90", 90.0), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_sizes_print_back_exactly() -> None:
    for size in (1024**3, 1536 * MB, 1000, 3 * 1024**4):
        assert parse_size(format_size(size)) == size
