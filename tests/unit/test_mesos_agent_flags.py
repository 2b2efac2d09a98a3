"""The stand-in agent's flags: stout's loading rules and Mesos duration text."""

from __future__ import annotations

import pytest

from sandbox.mesos.agent.flags import FlagError, load_flags, usage
from sandbox.mesos.wire import DurationError, format_duration, parse_duration

BASE = ["--master=m:5050", "--work_dir=/tmp/w"]


def test_command_line_wins_over_environment_and_unknown_environment_is_ignored() -> None:
    flags = load_flags(
        [*BASE, "--port=6000"],
        {"MESOS_PORT": "7000", "MESOS_ATTRIBUTES": "rack:r1", "MESOS_UNRELATED": "x", "OTHER": "y"},
    )
    assert flags.port == 6000
    assert flags.attributes == "rack:r1"


def test_environment_alone_can_configure_everything() -> None:
    flags = load_flags(
        [], {"MESOS_MASTER": "m:1", "MESOS_WORK_DIR": "/tmp/x", "mesos_port": "9", "MESOS_port": "8"}
    )
    assert (flags.master, flags.work_dir, flags.port) == ("m:1", "/tmp/x", 8)


def test_booleans_durations_and_space_separated_values() -> None:
    flags = load_flags(
        [*BASE, "--no-switch_user", "--hostname_lookup=false", "--executor_registration_timeout", "90secs"],
        {},
    )
    assert flags.switch_user is False
    assert flags.hostname_lookup is False
    assert flags.executor_registration_timeout == 90.0
    assert flags.as_strings()["executor_registration_timeout"] == "90secs"
    assert flags.runtime_dir == "/tmp/w/run"
    assert flags.fetcher_cache_dir == "/tmp/w/fetch"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus=1"], "Failed to load unknown flag 'bogus'"),
        (["--no-bogus"], "Failed to load unknown flag 'bogus' via 'no-bogus'"),
        (["--port=1", "--port=2"], "Duplicate flag 'port' on command line"),
        (["--port"], "Failed to load non-boolean flag 'port': Missing value"),
        (
            ["--port=x"],
            "Failed to load flag 'port': Failed to load value 'x': Failed to convert 'x' to number",
        ),
        (
            ["--switch_user=maybe"],
            "Failed to load flag 'switch_user': Failed to load value 'maybe': Expecting a boolean",
        ),
        (
            ["--no-switch_user=true"],
            "Failed to load boolean flag 'switch_user' via 'no-switch_user' with value 'true'",
        ),
        (["--executor_environment_variables=[1]"], "Expecting a JSON object"),
    ],
)
def test_errors_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as raised:
        load_flags([*BASE, *argv], {})
    assert message in str(raised.value)


def test_required_flags() -> None:
    with pytest.raises(FlagError, match="Flag 'work_dir' is required"):
        load_flags(["--master=m:1"], {})
    with pytest.raises(FlagError, match="Missing required option `--master`"):
        load_flags(["--work_dir=/tmp/x"], {})


def test_usage_lists_visible_flags_only() -> None:
    text = usage("boom")
    assert text.startswith("boom\n\nUsage: mesos-agent [options]")
    assert "--[no-]switch_user" in text
    assert "--resources=VALUE" in text
    assert "status_update_retry_interval_min" not in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5.0, "5secs"),
        (60.0, "1mins"),
        (90.0, "90secs"),
        (1.5, "1500ms"),
        (0.25, "250ms"),
        (900.0, "15mins"),
        (3600.0, "1hrs"),
        (604800.0, "1weeks"),
        (864000.0, "10days"),
        (0.0, "0ns"),
    ],
)
def test_durations_print_like_stout(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "secs", "5 secs", "5parsecs", "1.2.3secs"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)
