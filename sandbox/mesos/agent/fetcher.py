"""The fetcher program (Mesos' ``mesos-fetcher``): fetch a container's URIs into its sandbox.

The agent runs this file as a separate process with stdout/stderr redirected to the sandbox's
``stdout``/``stderr`` files (that is where Mesos' fetcher log lives) and its instructions in the
``MESOS_FETCHER_INFO`` environment variable, a JSON FetcherInfo::

    {"sandbox_directory": "...", "cache_directory": "...", "user": "...",
     "items": [{"uri": {"value": "...", "extract": true, "executable": false,
                        "cache": false, "output_file": "..."},
                "action": "BYPASS_CACHE" | "DOWNLOAD_AND_CACHE", "cache_filename": "..."}]}

Exit status 0 when every URI was fetched, 1 otherwise (after logging why), like
src/launcher/fetcher.cpp. Standard library only, so it runs with any Python 3.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from typing import Any

_ARCHIVE_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")
_NET_SCHEMES = ("http://", "https://", "ftp://", "ftps://")
_DEFAULT_STALL_TIMEOUT = 60.0


class FetchError(Exception):
    """Why one URI could not be fetched (the text Mesos would log)."""


_CREDENTIALS = re.compile(r"(://[^/@:\s\"]+):[^/@\s\"]*@")


def _log(level: str, message: str) -> None:
    # glog's line format, which operators grepping a Mesos sandbox expect. Passwords embedded
    # in URIs (http://user:secret@host/...) are masked: the sandbox is readable by the task.
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int((now % 1) * 1e6):06d}"
    message = _CREDENTIALS.sub(r"\1:***@", message)
    sys.stderr.write(f"{level}{stamp} {os.getpid():>5} fetcher.py] {message}\n")
    sys.stderr.flush()


def basename(uri: str) -> str:
    """Mesos' Fetcher::basename: URIs are treated like paths ('?' and '=' are not special)."""
    if any(ch in uri for ch in ("\\", "'", "\0")):
        raise FetchError("Illegal characters in URI")
    index = uri.find("://")
    if index > 1:
        path = uri[index + 3 :]
        slash = path.find("/")
        if slash < 0 or slash == len(path) - 1:
            raise FetchError(f"Malformed URI (missing path): {uri}")
        return path[path.rfind("/") + 1 :]
    return os.path.basename(uri.rstrip("/"))


def _local_path(uri: str) -> str | None:
    """The local file a URI names, or None when it is not local (Fetcher::uriToLocalPath)."""
    is_file_uri = uri.startswith("file://")
    if not is_file_uri and "://" in uri:
        return None
    path = uri[len("file://") :] if is_file_uri else uri
    if path.startswith("localhost"):
        path = path[len("localhost") :]
    if not os.path.isabs(path):
        if is_file_uri:
            raise FetchError("File URI only supports absolute paths")
        raise FetchError(
            "A relative path was passed for the resource but the Mesos framework home was not "
            "specified. Please either provide this config option or avoid using a relative path"
        )
    return path


def _download(uri: str, destination: str, stall_timeout: float) -> None:
    local = _local_path(uri)
    if local is not None:
        _log("I", f"Copying resource with command:cp '{local}' '{destination}'")
        try:
            shutil.copyfile(local, destination)
        except OSError as error:
            raise FetchError(f"Failed to copy '{local}' to '{destination}': {error.strerror}") from error
        return
    if uri.startswith(_NET_SCHEMES):
        _log("I", f"Downloading resource from '{uri}' to '{destination}'")
        try:
            with urllib.request.urlopen(uri, timeout=stall_timeout) as response:
                code = response.status
                if code != 200:
                    raise FetchError(f"Error downloading resource, received HTTP return code {code}")
                with open(destination, "wb") as out:
                    shutil.copyfileobj(response, out)
        except urllib.error.HTTPError as error:
            raise FetchError(f"Error downloading resource, received HTTP return code {error.code}") from error
        except urllib.error.URLError as error:
            raise FetchError(f"Error downloading resource: {error.reason}") from error
        except OSError as error:
            raise FetchError(f"Error downloading resource: {error}") from error
        return
    # Mesos hands every other scheme to the Hadoop client, which is not installed here.
    hadoop = shutil.which("hadoop")
    if hadoop is None:
        raise FetchError(
            "Failed to create HDFS client: Failed to execute 'hadoop version'; the command was "
            "either not found or exited with a non-zero exit status: 127"
        )
    raise FetchError(f"HDFS copyToLocal failed: scheme of '{uri}' is not supported by this agent")


def _chmod_executable(path: str) -> None:
    try:
        os.chmod(path, 0o755)
    except OSError as error:
        raise FetchError(f"Failed to chmod executable '{path}': {error.strerror}") from error


def _inside(directory: str, member: str) -> bool:
    target = os.path.realpath(os.path.join(directory, member))
    root = os.path.realpath(directory)
    return target == root or target.startswith(root + os.sep)


def _extract_zip(source: str, directory: str) -> None:
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            if not _inside(directory, info.filename):
                raise FetchError(
                    f"Failed to extract archive '{source}' to '{directory}': unsafe path {info.filename!r}"
                )
            extracted = archive.extract(info, directory)
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                os.chmod(extracted, mode)


def extract(source: str, directory: str) -> bool:
    """Unpack a known archive into ``directory``; False if it is not an archive we know."""
    try:
        if source.endswith(_ARCHIVE_SUFFIXES):
            if source.endswith(".zip"):
                _extract_zip(source, directory)
            else:
                with tarfile.open(source, "r:*") as archive:
                    # Refuse absolute paths and '..' like libarchive's secure flags, keep modes.
                    archive.extractall(directory, filter="tar")
        elif source.endswith(".gz"):
            target = os.path.join(directory, os.path.basename(source[: -len(".gz")]))
            with gzip.open(source, "rb") as compressed, open(target, "wb") as out:
                shutil.copyfileobj(compressed, out)
        else:
            return False
    except FetchError:
        raise
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        raise FetchError(f"Failed to extract archive '{source}' to '{directory}': {error}") from error
    _log("I", f"Extracted '{source}' into '{directory}'")
    return True


def _output_name(uri: dict[str, Any], sandbox: str) -> str:
    output_file = uri.get("output_file")
    if output_file:
        parent = os.path.dirname(output_file)
        if parent:
            try:
                os.makedirs(os.path.join(sandbox, parent), exist_ok=True)
            except OSError as error:
                raise FetchError(
                    f"Unable to create subdirectory {parent} in sandbox: {error.strerror}"
                ) from error
        return str(output_file)
    return basename(str(uri["value"]))


def _place(uri: dict[str, Any], source: str, destination: str, sandbox: str, *, downloaded: bool) -> str:
    """Apply executable/extract to a fetched file; ``source`` is in the cache when not ``downloaded``."""
    if uri.get("executable", False):
        if not downloaded:
            shutil.copyfile(source, destination)
        _chmod_executable(destination)
        return destination
    if uri.get("extract", True):
        if extract(source, sandbox):
            return sandbox if not downloaded else destination
        _log(
            "W",
            "Copying instead of extracting resource from URI with 'extract' flag, because it "
            f"does not seem to be an archive: {uri['value']}",
        )
    if not downloaded:
        shutil.copyfile(source, destination)
    return destination


def _fetch_through_cache(item: dict[str, Any], info: dict[str, Any], destination: str, stall: float) -> str:
    cache_directory = info.get("cache_directory")
    filename = item.get("cache_filename")
    if not cache_directory:
        raise FetchError("Cache directory not specified")
    if not filename:
        raise FetchError(f"No cache file name for: {item['uri']['value']}")
    os.makedirs(cache_directory, exist_ok=True)
    cached = os.path.join(cache_directory, filename)
    # One lock per entry: concurrent containers fetching the same URI download it once.
    with open(cached + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if os.path.exists(cached):
            _log("I", "Fetching from cache")
        else:
            _log("I", "Downloading into cache")
            partial = cached + ".partial"
            try:
                _download(item["uri"]["value"], partial, stall)
                os.replace(partial, cached)
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
    return _place(item["uri"], cached, destination, info["sandbox_directory"], downloaded=False)


def fetch_item(item: dict[str, Any], info: dict[str, Any]) -> str:
    uri = item["uri"]
    sandbox = info["sandbox_directory"]
    stall = float(info.get("stall_timeout", {}).get("nanoseconds", _DEFAULT_STALL_TIMEOUT * 1e9)) / 1e9
    _log("I", f"Fetching URI '{uri['value']}'")
    destination = os.path.join(sandbox, _output_name(uri, sandbox))
    if item.get("action", "BYPASS_CACHE") == "BYPASS_CACHE":
        _log("I", "Fetching directly into the sandbox directory")
        _download(str(uri["value"]).lstrip(), destination, stall)
        return _place(uri, destination, destination, sandbox, downloaded=True)
    return _fetch_through_cache(item, info, destination, stall)


def main() -> int:
    raw = os.environ.get("MESOS_FETCHER_INFO")
    if raw is None:
        _log("F", "Check failed: Missing MESOS_FETCHER_INFO environment variable")
        return 1
    info = json.loads(raw)
    _log("I", f"Fetcher Info: {raw}")
    for item in info.get("items", []):
        try:
            fetched = fetch_item(item, info)
        except FetchError as error:
            _log("E", f"EXIT with status 1: Failed to fetch '{item['uri']['value']}': {error}")
            return 1
        _log("I", f"Fetched '{item['uri']['value']}' to '{fetched}'")
    _log("I", f"Successfully fetched all URIs into '{info['sandbox_directory']}'")
    return 0


if __name__ == "__main__":
    # Files the fetcher creates must be readable by the task like Mesos' (umask 022).
    os.umask(0o022)
    sys.exit(main())
