"""`loadmaster config push FILE | pull [FILE]`: the desired-state document of a clustered cluster (etcd).

`push` validates FILE (refused with every problem, as `validate` prints them, before anything is sent)
and stores it with a compare-and-swap: on the revision given with --if-revision, else on the one the
last `pull` or `push` from this machine saw (kept in the controller's state directory), else only if
the store holds no document yet. Someone else's push in between is a conflict (exit 5) naming the
revision now stored: pull, merge, push again. Every daemon of the cluster adopts a push at once.
`pull` writes the stored document to FILE (default: the cluster file) atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from console.commands.options import add_config
from console.commands.runtime import journal_path
from core import config as config_io
from core.errors import LoadmasterError
from core.model import ClusterConfig
from core.private import private_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="push or pull the desired-state document of a clustered (etcd) cluster")
    verbs = p.add_subparsers(title="verbs", metavar="VERB", required=True)
    push = verbs.add_parser("push", help="validate FILE and store it (compare-and-swap); every daemon adopts it")
    push.add_argument("file", metavar="FILE", help="the cluster file to store")
    push.add_argument("--if-revision", type=int, metavar="N", help="store only if the stored revision is N")
    add_config(push)
    push.set_defaults(run=run_push)
    pull = verbs.add_parser("pull", help="write the stored document to FILE (default: the cluster file)")
    pull.add_argument("file", metavar="FILE", nargs="?", help="where to write it")
    add_config(pull)
    pull.set_defaults(run=run_pull)


def _seen_path(config: ClusterConfig) -> Path:
    return journal_path(config).parent / "desired.revision"


def _seen(config: ClusterConfig) -> int:
    try:
        return int(_seen_path(config).read_text().strip())
    except (OSError, ValueError):
        return 0


def _remember(config: ClusterConfig, revision: int) -> None:
    path = _seen_path(config)
    private_file(path)
    path.write_text(f"{revision}\n")


def _clustered(config: ClusterConfig, source: str) -> None:
    if not config.store.clustered:
        raise LoadmasterError(f'{source}: [cluster] store is "sqlite": config push/pull need an etcd store '
                              '(store = "etcd://host:2379,…"); with one machine, edit the file itself')  # fmt: skip


def run_push(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadmasterError(f"config push {path}: cannot read it ({exc})") from None
    config = config_io.parse(text, str(path))  # every problem, as validate prints them; nothing is sent
    _clustered(config, str(path))
    expect = args.if_revision if args.if_revision is not None else _seen(config)
    stored = asyncio.run(_push(config, text, str(path), expect))
    _remember(config, stored)
    print(f"{path}: stored as revision {stored} of cluster {config.name!r}; every daemon adopts it now")
    return 0


async def _push(config: ClusterConfig, text: str, source: str, expect: int) -> int:
    from console.clustered import client_for, prefix_of
    from core.store.desired_doc import push

    client = client_for(config)
    try:
        return (await push(client, prefix_of(config), text, source, expect)).revision
    finally:
        await client.close()


def run_pull(args: argparse.Namespace) -> int:
    config = config_io.load(config_io.resolve_path(args.config))
    _clustered(config, config.source)
    target = Path(args.file) if args.file else config_io.resolve_path(args.config)
    text, revision = asyncio.run(_pull(config))
    directory = target.resolve().parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)  # a reader never sees half a file
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LoadmasterError(f"config pull: cannot write {target} ({exc})") from None
    _remember(config, revision)
    print(f"{target}: revision {revision} of cluster {config.name!r}")
    return 0


async def _pull(config: ClusterConfig) -> tuple[str, int]:
    from console.clustered import client_for, prefix_of
    from core.store.desired_doc import pull

    client = client_for(config)
    try:
        stored = await pull(client, prefix_of(config))
    finally:
        await client.close()
    if stored is None:
        why = "the first daemon to start stores its file, or run `loadmaster config push FILE`"
        raise LoadmasterError(f"config pull: cluster {config.name!r} has no stored document yet ({why})")
    return stored.text, stored.revision
