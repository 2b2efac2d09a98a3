"""Command line for the host image recipe, used by setup/steps/host-image.sh.

python -m sandbox.hosts.image tag          the final image tag
python -m sandbox.hosts.image shell-vars   every value the build step needs, as shell assignments
"""

from __future__ import annotations

import argparse
import shlex
import sys

from sandbox.hosts.image import (
    RECIPE_DIR,
    RecipeError,
    base_image_tag,
    image_key,
    image_tag,
    load_debootstrap_recipe,
    rootfs_key,
)


def shell_vars() -> dict[str, str]:
    recipe = load_debootstrap_recipe()
    return {
        "HOST_IMAGE_TAG": image_tag(),
        "HOST_IMAGE_KEY": image_key(),
        "HOST_BASE_TAG": base_image_tag(),
        "HOST_ROOTFS_KEY": rootfs_key(),
        "HOST_RECIPE_DIR": str(RECIPE_DIR),
        "DEBOOTSTRAP_SUITE": recipe.suite,
        "DEBOOTSTRAP_VARIANT": recipe.variant,
        "DEBOOTSTRAP_COMPONENTS": ",".join(recipe.components),
        "DEBOOTSTRAP_MIRROR": recipe.mirror,
        "DEBOOTSTRAP_INCLUDE": ",".join(recipe.packages),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.hosts.image", description="The sandbox host image recipe and its tags."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tag", help="print the final image tag")
    sub.add_parser("base-tag", help="print the tag of the imported debootstrap base image")
    sub.add_parser("shell-vars", help="print the build's inputs as shell assignments (for eval)")
    args = parser.parse_args(argv)
    try:
        if args.command == "tag":
            print(image_tag())
        elif args.command == "base-tag":
            print(base_image_tag())
        else:
            for name, value in shell_vars().items():
                print(f"{name}={shlex.quote(value)}")
    except RecipeError as error:
        print(f"sandbox host image recipe: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
