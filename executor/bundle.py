"""Build the executor as ONE self-contained file for agents that have only a stock Python 3.

``python -m executor.bundle --output PATH`` writes a zipapp (``#!/usr/bin/env python3``) holding
executor/ plus pymesos and its pure-Python dependencies (http_parser, six, addict), copied from
the packages installed in the Python that runs this command. Nothing of them is committed.

The bytes are deterministic (sorted entries, fixed timestamps and permissions, fixed compression
level): the same sources give the same sha256, so a Pulumi preview shows no diff.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import os
import sys
import tempfile
import zipfile
from typing import Dict, List, Optional, Tuple

from executor import __version__

SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
COMPRESS_LEVEL = 9
MANIFEST = "BUNDLE-MANIFEST.json"
# (distribution name, importable top-level names): pymesos and everything it imports at runtime.
BUNDLED: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("pymesos", ("pymesos",)),
    ("http-parser", ("http_parser",)),
    ("six", ("six",)),
    ("addict", ("addict",)),
)
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
_LICENSE_WORDS = ("LICENSE", "LICENCE", "COPYING", "NOTICE")
_MAIN = b'''"""Entry point of the alluxio-mesos executor bundle."""
import sys

from executor.main import main

sys.exit(main())
'''


class BundleError(RuntimeError):
    """The bundle cannot be built self-contained (missing or compiled dependency)."""


def _executor_files() -> Dict[str, bytes]:
    package_dir = os.path.dirname(os.path.abspath(__file__))
    entries = {}
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                arcname = "executor/" + os.path.relpath(path, package_dir).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    entries[arcname] = handle.read()
    return entries


def _distribution_files(
    dist_name: str, top_levels: Tuple[str, ...]
) -> Tuple[Dict[str, bytes], Dict[str, str]]:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(
            "%s is not installed in %s; install the project's dependencies (setup/bootstrap.sh venv)"
            % (dist_name, sys.executable)
        ) from None
    entries = {}
    for file in dist.files or []:
        parts = file.parts
        top = parts[0][:-3] if len(parts) == 1 and parts[0].endswith(".py") else parts[0]
        name = parts[-1]
        if top in top_levels:
            if "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
                continue
            if name.endswith(_COMPILED_SUFFIXES):
                raise BundleError(
                    "%s has a compiled extension %s; the bundle must be pure Python (install the "
                    "pure-Python build of %s)" % (dist_name, "/".join(parts), dist_name)
                )
            if name.endswith(".py"):
                entries["/".join(parts)] = file.read_binary()
        elif any(word in name.upper() for word in _LICENSE_WORDS):
            entries["licenses/%s/%s" % (dist_name, name)] = file.read_binary()
    missing = [t for t in top_levels if not any(p.split("/")[0] in (t, t + ".py") for p in entries)]
    if missing:
        raise BundleError("%s %s installs no Python files for %s" % (dist_name, dist.version, missing))
    metadata = dist.metadata
    info = {"version": dist.version, "license": metadata.get("License") or ""}
    return entries, info


def bundle_entries() -> Dict[str, bytes]:
    entries = _executor_files()
    distributions = {}
    for dist_name, top_levels in BUNDLED:
        files, info = _distribution_files(dist_name, top_levels)
        entries.update(files)
        distributions[dist_name] = info
    entries["__main__.py"] = _MAIN
    manifest = {
        "executor": __version__,
        "requires_python": ">=3.9",
        "distributions": distributions,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(entries.items())},
    }
    entries[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
    return entries


def render(entries: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the permission bits
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, entries[name], compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def build(output: str) -> str:
    """Write the bundle atomically (mode 0755) and return its sha256."""
    data = render(bundle_entries())
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".executor-bundle.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="where to write the bundle (e.g. build/executor.pyz)")
    args = parser.parse_args(argv)
    try:
        digest = build(args.output)
    except BundleError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    print("%s %s" % (digest, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
