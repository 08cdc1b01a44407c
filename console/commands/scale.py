"""`loadmaster scale SERVICE N`: set a service's replicas in the cluster file, keeping its comments.

The file is the one source of truth: this writes it (core.desired: comment-preserving, atomic,
revision-checked) and a running console or daemon picks the edit up like any other.
"""

from __future__ import annotations

import argparse
import time

from console.commands.options import add_config, add_read_only
from console.commands.runtime import journal_path
from core import config as config_io
from core import desired
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import LoadmasterError, ReadOnly


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="set a service's replicas in the cluster file (comments and layout kept)")
    p.add_argument("service", help="a service of the cluster file")
    p.add_argument("replicas", type=int, help="how many replicas it should run (0 or more)")
    add_config(p)
    add_read_only(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.read_only:
        raise ReadOnly(f"scale {args.service}")
    if args.replicas < 0:
        raise LoadmasterError(f"scale {args.service} {args.replicas}: replicas must be 0 or more")
    path = config_io.resolve_path(args.config)
    before = desired.read(path)
    was = next((s.replicas for s in before.config.services if s.name == args.service), None)
    doc = desired.scale(path, args.service, args.replicas, expect=before.revision)
    message = f"{args.service} scaled {was} → {args.replicas} in {doc.path} (loadmaster scale)"
    Journal(journal_path(doc.config)).log_event(time.time(), {
        "at": round(time.time(), 3), "event": EventKind.SERVICE_SCALED.value, "message": message,
        "service": args.service, "from": was, "to": args.replicas, "revision": doc.revision,
    })  # fmt: skip
    print(f"{message}; a running console or daemon follows the file within a second")
    return 0
