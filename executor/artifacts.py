"""Check the files the agent's fetcher put in the sandbox against the sha256 the plan names."""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

from executor.task_plan import Artifact

_CHUNK = 1 << 20


class ArtifactError(RuntimeError):
    """An artifact is missing or its content is not what the framework published."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def verify_artifacts(sandbox: str, artifacts: Sequence[Artifact]) -> None:
    """Raise ArtifactError naming the first bad file; checks all before anything is started."""
    root = os.path.realpath(sandbox)
    for artifact in artifacts:
        path = os.path.realpath(os.path.join(root, artifact.filename))
        # A symlink in the sandbox must not make us vouch for a file elsewhere on the agent.
        if os.path.commonpath([root, path]) != root:
            raise ArtifactError(
                "artifact %s resolves to %s, outside the sandbox %s" % (artifact.filename, path, root)
            )
        if not os.path.isfile(path):
            origin = " (fetched from %s)" % artifact.url if artifact.url else ""
            raise ArtifactError(
                "artifact %s%s is missing from the sandbox %s; the agent's fetcher did not produce it"
                % (artifact.filename, origin, root)
            )
        actual = sha256_of(path)
        if actual != artifact.sha256:
            raise ArtifactError(
                "artifact %s has sha256 %s but the plan expects %s; refusing to start anything"
                % (artifact.filename, actual, artifact.sha256)
            )
