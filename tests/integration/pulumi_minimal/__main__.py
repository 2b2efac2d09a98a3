"""One file on disk, managed by a Python dynamic provider.

The Pulumi engine test drives the real CLI over this program. Every step has an effect the test can
see: the file itself, and the outputs, which record which Python ran the program and the provider.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

MANAGED_KEYS = ("path", "content")


def _write(path: str, content: str) -> None:
    # Write-then-rename: a reader (the test) never sees a half-written file.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(partial, path)


def _outputs(path: str, content: str) -> dict[str, Any]:
    # sys.prefix of the provider process, not of the program: the engine starts providers itself,
    # and the test checks that it used the project's virtualenv for them too.
    return {"path": path, "content": content, "provider_python_prefix": sys.prefix}


class ManagedFileProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        _write(props["path"], props["content"])
        return CreateResult(id_=props["path"], outs=_outputs(props["path"], props["content"]))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in MANAGED_KEYS if olds.get(key) != news.get(key)]
        # A new path is a different file: create it first would leave two, so delete first.
        return DiffResult(
            changes=bool(changed),
            replaces=["path"] if "path" in changed else [],
            delete_before_replace=True,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _write(news["path"], news["content"])
        return UpdateResult(outs=_outputs(news["path"], news["content"]))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Refresh reports what is really on disk; an empty id tells the engine the file is gone.
        if not os.path.exists(id_):
            return ReadResult(id_="", outs={})
        with open(id_, encoding="utf-8") as handle:
            return ReadResult(id_=id_, outs={**props, "content": handle.read()})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if os.path.exists(id_):
            os.remove(id_)


class ManagedFile(Resource):
    path: pulumi.Output[str]
    content: pulumi.Output[str]
    provider_python_prefix: pulumi.Output[str]

    def __init__(
        self, name: str, path: str, content: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"path": path, "content": content, "provider_python_prefix": None}
        super().__init__(ManagedFileProvider(), name, props, opts)


config = pulumi.Config()
managed = ManagedFile("greeting", path=config.require("path"), content=config.require("content"))

pulumi.export("path", managed.path)
pulumi.export("content", managed.content)
pulumi.export("provider_python_prefix", managed.provider_python_prefix)
pulumi.export("program_python_prefix", sys.prefix)
pulumi.export("token", config.require_secret("token"))
