"""`loadmaster scale SERVICE N`: set a service's replicas in the cluster file, keeping its comments.

The file is the one source of truth: this writes it (core.desired: comment-preserving, atomic,
revision-checked) and a running console or daemon picks the edit up like any other. In clustered mode
the desired state is the document stored in etcd: this changes it the same way, and every daemon adopts it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from console.commands.options import add_config, add_read_only
from console.commands.runtime import journal_path
from core import config as config_io
from core import desired
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import LoadmasterError, ReadOnly
from core.model import ClusterConfig


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
    if config_io.load(path).store.clustered:
        return asyncio.run(_scale_stored(args, path))
    before = desired.read(path)
    doc = _scale(desired.FileEditor(path), args, before)
    Journal(journal_path(doc.config)).log_event(time.time(), {
        "at": round(time.time(), 3), "event": EventKind.SERVICE_SCALED.value, "message": doc.message,
        "service": args.service, "from": doc.was, "to": args.replicas, "revision": doc.revision,
    })  # fmt: skip
    print(f"{doc.message}; a running console or daemon follows the file within a second")
    return 0


async def _scale_stored(args: argparse.Namespace, path: Path) -> int:
    """Clustered: the desired state is the document in etcd (the daemons do not follow the local file)."""
    from console.clustered import client_for, prefix_of
    from core.store.desired_doc import StoredEditor

    config = config_io.load(path)
    client = client_for(config)
    try:
        editor = StoredEditor(client, prefix_of(config), asyncio.get_running_loop())
        before = await asyncio.to_thread(editor.read)
        done = await asyncio.to_thread(_scale, editor, args, before)
    finally:
        await client.close()
    print(f"{done.message}; every daemon of the cluster adopts it within a second")
    return 0


@dataclass(frozen=True, slots=True)
class _Scaled:
    message: str
    was: int | None
    revision: str
    config: ClusterConfig


def _scale(editor: desired.Editor, args: argparse.Namespace, before: desired.Document) -> _Scaled:
    was = next((s.replicas for s in before.config.services if s.name == args.service), None)
    doc = desired.scale(editor, args.service, args.replicas, expect=before.revision)
    message = f"{args.service} scaled {was} → {args.replicas} in {editor.name} (loadmaster scale)"
    return _Scaled(message, was, doc.revision, doc.config)
