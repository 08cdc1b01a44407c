"""The `loadmaster` command line: parses arguments and turns typed errors into messages."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from console.commands import demo, hosts, validate
from core.errors import LoadmasterError

# Each module registers one sub-command; the list is the help's order.
COMMANDS = (validate, hosts, demo)


def _version() -> str:
    try:
        return version("loadmaster")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadmaster",
        description="Run a fleet of machines as one computer: live hosts over SSH, CP-SAT placement, failover plans.",
    )
    parser.add_argument("--version", action="version", version=f"loadmaster {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except LoadmasterError as exc:
        print(f"loadmaster: {exc}" if "\n" not in str(exc) else f"loadmaster: errors:\n{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
