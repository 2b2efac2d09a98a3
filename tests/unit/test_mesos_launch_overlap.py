"""The stand-in master's check for resources a task and its executor claim twice."""

from __future__ import annotations

from framework.mesos_resources import Resource, Resources
from sandbox.mesos.master.launch_validation import _overlapping


def resources(*items: Resource) -> Resources:
    return Resources(items)


CPUS = Resource.scalar_of("cpus", 1.0)
MEM = Resource.scalar_of("mem", 128.0)


def test_ports_claimed_by_task_and_executor_overlap() -> None:
    task = resources(CPUS, Resource.ranges_of("ports", [(31000, 31001)]))
    executor = resources(MEM, Resource.ranges_of("ports", [(31001, 31002)]))
    assert _overlapping(task, executor)


def test_adjacent_ranges_and_scalars_do_not_overlap() -> None:
    task = resources(CPUS, MEM, Resource.ranges_of("ports", [(31000, 31001)]))
    executor = resources(CPUS, MEM, Resource.ranges_of("ports", [(31002, 31003)]))
    assert not _overlapping(task, executor)


def test_ports_on_one_side_only_never_overlap_even_when_they_overlap_each_other() -> None:
    # Two roles' ranges that overlap within the task are not a task/executor overlap.
    task = resources(
        CPUS,
        Resource.ranges_of("ports", [(31000, 31010)]),
        Resource.ranges_of("ports", [(31005, 31015)], role="analytics"),
    )
    assert not _overlapping(task, resources(CPUS, MEM))
    assert not _overlapping(resources(CPUS, MEM), task)


def test_set_items_claimed_twice_overlap() -> None:
    task = resources(Resource.set_of("gpus_ids", ["a", "b"]))
    assert _overlapping(task, resources(Resource.set_of("gpus_ids", ["b"])))
    assert not _overlapping(task, resources(Resource.set_of("gpus_ids", ["c"])))
