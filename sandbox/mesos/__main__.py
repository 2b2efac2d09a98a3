"""``python -m sandbox.mesos master|agent [flags]``: run the stand-in master or agent."""

from __future__ import annotations

import sys

_USAGE = "usage: python -m sandbox.mesos {master|agent} [--flag=value ...]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not args else sys.stdout)
        return 0 if args else 2
    role, rest = args[0], args[1:]
    # Imported lazily so that each side only loads its own code (and its own bugs).
    if role == "master":
        from sandbox.mesos.master.cli import main as master_main  # noqa: PLC0415 - load one side only

        return master_main(rest)
    if role == "agent":
        from sandbox.mesos.agent.cli import main as agent_main  # noqa: PLC0415 - load one side only

        return agent_main(rest)
    print(f"unknown role {role!r}; {_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
