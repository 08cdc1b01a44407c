"""The `loadmaster` command line: parses arguments and turns typed errors into messages."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from console.commands import (
    api_token,
    apply,
    cluster_config,
    console,
    demo,
    drain,
    hosts,
    journal,
    leader,
    logs,
    plan,
    run,
    scale,
    status,
    validate,
)
from core.errors import LoadmasterError
from core.sanitize import printable

# Each module registers one sub-command; the list is the help's order.
COMMANDS = (
    console, demo, hosts, status, logs, plan, apply, run, drain, scale, validate, cluster_config, leader, journal,
    api_token,
)  # fmt: skip


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
    argv = sys.argv[1:] if argv is None else argv
    # Like k9s, the bare command opens the console.
    args = parser.parse_args(argv or ["console"])
    try:
        return int(args.run(args) or 0)
    except LoadmasterError as exc:
        message = printable(exc, newlines=True)  # errors quote hosts: their stderr, their records
        print(f"loadmaster: {message}" if "\n" not in message else f"loadmaster: errors:\n{message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly like other Unix tools; point stdout at
        # /dev/null so the interpreter's final flush does not raise the same error again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
