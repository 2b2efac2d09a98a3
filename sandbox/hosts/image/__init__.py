"""The sandbox host image's recipe and the tags derived from it.

The recipe is the set of files next to this module. Tags are content hashes of those files, so a
changed recipe gets a new tag and an unchanged one is never rebuilt. This module is the only place
the tags are computed; setup/steps/host-image.sh asks it through ``python -m sandbox.hosts.image``.

Two levels, so that editing the Dockerfile or the entrypoint does not redo the slow debootstrap:
the base image (and the cached rootfs tarball) is keyed by the rootfs recipe only, the final image
by the whole recipe.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

RECIPE_DIR = Path(__file__).resolve().parent
IMAGE_REPOSITORY = "alluxio-mesos-host"
BASE_REPOSITORY = "alluxio-mesos-host-base"
DIGEST_LENGTH = 12

# Files that decide the debootstrapped root filesystem.
ROOTFS_RECIPE_FILES: tuple[str, ...] = ("debootstrap.toml", "packages.txt", "finish-rootfs.sh")
# Files that decide the final image: the rootfs recipe plus what the Dockerfile adds.
IMAGE_RECIPE_FILES: tuple[str, ...] = (*ROOTFS_RECIPE_FILES, "Dockerfile", "entrypoint.sh", "sshd_config")

_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SUITE_OR_VARIANT = re.compile(r"^[a-z][a-z0-9-]*$")


class RecipeError(ValueError):
    """The recipe files are missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class DebootstrapRecipe:
    suite: str
    variant: str
    components: tuple[str, ...]
    mirror: str
    packages: tuple[str, ...]


def _read_recipe_file(name: str, recipe_dir: Path) -> bytes:
    path = recipe_dir / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file is missing") from None


def recipe_digest(names: tuple[str, ...], recipe_dir: Path = RECIPE_DIR) -> str:
    """sha256 over the named files' names and contents, in a fixed order."""
    digest = hashlib.sha256()
    for name in sorted(names):
        content = _read_recipe_file(name, recipe_dir)
        # Name and length prefix each file so that moving bytes between files changes the digest.
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def rootfs_key(recipe_dir: Path = RECIPE_DIR) -> str:
    return recipe_digest(ROOTFS_RECIPE_FILES, recipe_dir)[:DIGEST_LENGTH]


def image_key(recipe_dir: Path = RECIPE_DIR) -> str:
    return recipe_digest(IMAGE_RECIPE_FILES, recipe_dir)[:DIGEST_LENGTH]


def base_image_tag(recipe_dir: Path = RECIPE_DIR) -> str:
    return f"{BASE_REPOSITORY}:{rootfs_key(recipe_dir)}"


def image_tag(recipe_dir: Path = RECIPE_DIR) -> str:
    """The tag of the sandbox host image for the current recipe, e.g. alluxio-mesos-host:0123456789ab."""
    return f"{IMAGE_REPOSITORY}:{image_key(recipe_dir)}"


def parse_packages(text: str, source: str = "packages.txt") -> tuple[str, ...]:
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PACKAGE_NAME.match(line):
            raise RecipeError(f"{source}:{number}: {line!r} is not a Debian package name")
        if line in packages:
            raise RecipeError(f"{source}:{number}: {line!r} is listed twice")
        packages.append(line)
    if not packages:
        raise RecipeError(f"{source}: lists no packages")
    return tuple(packages)


def _string_key(table: dict[str, object], key: str, source: str, pattern: re.Pattern[str] | None) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise RecipeError(f"{source}: key '{key}' must be a non-empty string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise RecipeError(f"{source}: key '{key}' has an invalid value {value!r}")
    return value


def load_debootstrap_recipe(recipe_dir: Path = RECIPE_DIR) -> DebootstrapRecipe:
    source = str(recipe_dir / "debootstrap.toml")
    try:
        table = tomllib.loads(_read_recipe_file("debootstrap.toml", recipe_dir).decode())
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{source}: not valid TOML: {error}") from None
    unknown = sorted(set(table) - {"suite", "variant", "components", "mirror"})
    if unknown:
        raise RecipeError(f"{source}: unknown key(s) {', '.join(unknown)}")
    components = table.get("components")
    if (
        not isinstance(components, list)
        or not components
        or not all(isinstance(c, str) and _SUITE_OR_VARIANT.match(c) for c in components)
    ):
        raise RecipeError(f"{source}: key 'components' must be a non-empty list of names, got {components!r}")
    mirror = _string_key(table, "mirror", source, None)
    if not mirror.startswith(("http://", "https://")):
        raise RecipeError(f"{source}: key 'mirror' must be an http(s) URL, got {mirror!r}")
    packages_source = str(recipe_dir / "packages.txt")
    return DebootstrapRecipe(
        suite=_string_key(table, "suite", source, _SUITE_OR_VARIANT),
        variant=_string_key(table, "variant", source, _SUITE_OR_VARIANT),
        components=tuple(components),
        mirror=mirror,
        packages=parse_packages(_read_recipe_file("packages.txt", recipe_dir).decode(), packages_source),
    )
