"""Fixtures of the end-to-end suite: artifacts published on a local cluster's file server, and a
hook that appends the cluster's diagnostics to the report of a failed test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.localcluster import LocalCluster
from tests.e2e.artifacts import alluxio_tarball, executor_bundle, extract_distribution
from tests.e2e.deployment import Artifacts


def publish_artifacts(cluster: LocalCluster) -> Artifacts:
    """Serve the tarball and a freshly built executor bundle over HTTP from the cluster's bridge
    address, and unpack Alluxio locally for the shell the tests use as a client."""
    tarball, tarball_sha = alluxio_tarball()
    build = cluster.base_dir / "build"
    build.mkdir(exist_ok=True)
    bundle, bundle_sha = executor_bundle(build)
    return Artifacts(
        tarball_url=cluster.serve(tarball),
        tarball_sha256=tarball_sha,
        bundle_url=cluster.serve(bundle),
        bundle_sha256=bundle_sha,
        alluxio_home=extract_distribution(tarball, cluster.base_dir / "client"),
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed or report.when != "call":
        return
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if deployment is not None and "===== diagnostics" not in str(report.longrepr):
        report.sections.append(("cluster diagnostics", deployment.diagnostics()))
