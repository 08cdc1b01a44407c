"""Clustered mode for the front ends (`[cluster] store = "etcd://…"`): connect to etcd, open the state store,
join the election, and settle which desired state is in force.

The stored document is the desired state: a daemon that starts uses it, and the local file only names the
cluster and its store (and is pushed as the first document when etcd has none yet). Every daemon follows
the stored document (core.store.desired_doc.DesiredWatch) instead of the local file; `loadmaster config
push` changes it for all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError, RevisionConflict, StoreError
from core.identity import controller_id
from core.model import ClusterConfig
from core.private import private_dir
from core.store.desired_doc import StoredDocument, parse, pull, push
from core.store.election import Election
from core.store.etcd import EtcdClient
from core.store.etcd_store import EtcdStore


@dataclass
class Cluster:
    client: EtcdClient
    prefix: str
    store: EtcdStore
    election: Election
    config: ClusterConfig  # the desired state in force: the stored document's
    revision: int  # its revision


def client_for(config: ClusterConfig) -> EtcdClient:
    settings = config.store
    try:
        context = settings.ssl_context()
    except OSError as exc:
        raise StoreError(",".join(settings.endpoints), f"cannot read the TLS files ({exc})",
                         "check store_ca, store_cert and store_key in [cluster]") from None  # fmt: skip
    # A request must fail well within a lease: the keepalive runs at TTL/3.
    return EtcdClient(settings.endpoints, ssl_context=context, timeout=max(0.5, min(2.0, config.failure_timeout / 3)))


def prefix_of(config: ClusterConfig) -> str:
    return config.store.key_prefix(config.name)


async def desired_in_force(client: EtcdClient, prefix: str, config: ClusterConfig, path: Path) -> StoredDocument:
    """The stored document; the local file becomes it when etcd has none yet (whoever pushes first wins)."""
    stored = await pull(client, prefix)
    if stored is None:
        try:
            stored = await push(client, prefix, path.read_text(encoding="utf-8"), str(path), expect=0)
        except RevisionConflict:
            stored = await pull(client, prefix)
    if stored is None:
        raise StoreError(client.where + prefix, "the desired state vanished while being read", "start again")
    return stored


@contextlib.asynccontextmanager
async def clustered(config: ClusterConfig, path: Path, state_dir: Path, *, campaign: bool) -> AsyncIterator[Cluster]:
    """The cluster's store and election while the front end runs; the lease is given back on the way out
    (a standby takes over at once instead of after a TTL)."""
    client = client_for(config)
    prefix = prefix_of(config)
    try:
        stored = await desired_in_force(client, prefix, config, path)
        try:
            in_force = parse(stored, prefix)
        except ConfigError as exc:  # pushed by something that did not validate it: keep the local file
            print(f"loadmaster: warning: the stored desired state is invalid, using {path}:\n{exc}", file=sys.stderr)
            in_force = config
        in_force = dataclasses.replace(in_force, store=config.store)  # the store this daemon reached stays
        private_dir(state_dir)
        store = await EtcdStore(client, prefix, state_dir / "etcd").open()
    except BaseException:
        await client.close()
        raise
    election = Election(client, prefix, controller_id(), config.failure_timeout, campaign=campaign)
    await election.start()
    try:
        yield Cluster(client, prefix, store, election, in_force, stored.revision)
    finally:
        await election.close()
        await store.aclose()
