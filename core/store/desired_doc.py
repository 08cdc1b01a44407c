"""The desired-state document in etcd (clustered mode): the `cluster.toml` text under `<prefix>desired`,
its revision being the key's mod_revision.

- `push` validates the text with the config reader first — an invalid document is refused with every
  problem, as `validate` prints them, and never reaches the store — then writes it with a
  compare-and-swap on the revision the writer based it on (0: only if there is none yet); a writer
  that finds another revision gets RevisionConflict carrying the current one.
- `DesiredWatch` follows the key from a daemon: every new revision is parsed and handed to `adopt`
  (Engine.reload); one the reader rejects goes to `on_invalid` and the old desired state stays.
- `StoredEditor` is the document as core.desired's `Editor`: the daemon's HTTP API and autoscaler change
  the stored document (the same edits, validation and revisions — the sha256 of the text — as on a
  file), not the local file a clustered daemon does not follow. A copy of the text in force is kept in a
  local mirror file, which the API reads its views from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core import config as config_io
from core import desired
from core.errors import ConfigError, ConfigProblem, RevisionConflict, StoreError
from core.model import ClusterConfig
from core.private import private_dir, write_private
from core.store.etcd import EtcdClient, modified_is, put_op, range_op

log = logging.getLogger("loadmaster.desired")
T = TypeVar("T")

DESIRED = "desired"


@dataclass(frozen=True, slots=True)
class StoredDocument:
    text: str
    revision: int  # the key's mod_revision; every push makes a higher one


def document_name(prefix: str) -> str:
    """How messages name the stored document."""
    return f"etcd:{prefix}{DESIRED}"


async def pull(client: EtcdClient, prefix: str) -> StoredDocument | None:
    kv = await client.get(prefix + DESIRED)
    if kv is None:
        return None
    return StoredDocument(kv.value.decode("utf-8", errors="replace"), kv.mod_revision)


async def push(client: EtcdClient, prefix: str, text: str, source: str, expect: int) -> StoredDocument:
    """Store `text` if it is valid and the stored revision is still `expect` (0: none stored yet)."""
    config_io.parse(text, source)  # ConfigError with every problem: nothing is written
    key = prefix + DESIRED
    # mod_revision 0 compares true only for a key that does not exist: the first push creates it.
    result = await client.txn([modified_is(key, expect)], [put_op(key, text)], [range_op(key)])
    if not result.succeeded:
        found = result.kvs()
        current = found[0].mod_revision if found else 0
        raise RevisionConflict(document_name(prefix), str(expect), str(current))
    return StoredDocument(text, result.revision)


def parse(doc: StoredDocument, prefix: str) -> ClusterConfig:
    return config_io.parse(doc.text, f"{document_name(prefix)}@{doc.revision}")


class DesiredWatch:
    """Follows the stored document and adopts each new revision; reconnects when the stream breaks."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        adopt: Callable[[ClusterConfig], object],
        on_invalid: Callable[[ConfigError], None],
        *,
        seen: int = 0,
        retry: float = 1.0,
        mirror: Path | None = None,
    ):
        """`mirror`: a file that gets the text of every revision adopted (StoredEditor's)."""
        self.client, self.prefix = client, prefix
        self._adopt, self._on_invalid = adopt, on_invalid
        self._mirror = mirror
        self.seen = seen  # the revision last adopted (or refused)
        self._retry = retry
        self._wanted = asyncio.Event()

    def request(self) -> None:
        """SIGHUP: read the stored document again now (safe from a signal handler)."""
        self._wanted.set()

    async def run(self) -> None:
        while True:
            try:
                current = await pull(self.client, self.prefix)  # what changed while the stream was down
                if current is not None and (current.revision > self.seen or self._wanted.is_set()):
                    self._take(current)
                self._wanted.clear()
                follow = asyncio.create_task(self._follow())
                asked = asyncio.create_task(self._wanted.wait())
                try:
                    done, _ = await asyncio.wait((follow, asked), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (follow, asked):
                        task.cancel()
                    await asyncio.gather(follow, asked, return_exceptions=True)
                if follow in done:
                    follow.result()  # the stream broke (StoreError) or ended: pull, then follow again
                    await asyncio.sleep(self._retry)
            except StoreError as exc:
                log.warning("watching the desired state: %s (retrying)", exc)
                await asyncio.sleep(self._retry)

    async def _follow(self) -> None:
        async for event in self.client.watch(self.prefix + DESIRED, start_revision=self.seen + 1):
            if not event.deleted and event.kv.mod_revision > self.seen:
                self._take(StoredDocument(event.kv.value.decode("utf-8", "replace"), event.kv.mod_revision))

    def _take(self, doc: StoredDocument) -> None:
        self.seen = doc.revision
        try:
            config = parse(doc, self.prefix)
        except ConfigError as exc:
            self._on_invalid(exc)
            return
        if self._mirror is not None:
            write_mirror(self._mirror, doc.text)
        try:
            self._adopt(config)
        except Exception as exc:  # an adoption bug must not end the watch: no push would be seen again
            log.exception("adopting %s failed", document_name(self.prefix))
            where = document_name(self.prefix)
            self._on_invalid(ConfigError([ConfigProblem(where, "", "", f"could not be adopted ({exc})")]))


def write_mirror(path: Path, text: str) -> None:
    private_dir(path.parent)
    write_private(path, text)


class StoredEditor:
    """The stored document as an Editor (core.desired) for writers that run in a thread (the API's and the
    autoscaler's edits do): each call runs its etcd requests on `loop`, which owns the client, and waits."""

    def __init__(self, client: EtcdClient, prefix: str, loop: asyncio.AbstractEventLoop, mirror: Path | None = None):
        """`mirror`: the daemon's local copy of the text in force (None for a one-shot command)."""
        self.client, self.prefix, self._loop, self.mirror = client, prefix, loop, mirror
        self.name = document_name(prefix)
        self._path = mirror or Path(self.name)  # what a Document names as its file

    def read(self) -> desired.Document:
        stored = self._pull()
        if self.mirror is not None:
            write_mirror(self.mirror, stored.text)
        return desired.Document(self._path, stored.text, _revision(stored.text), parse(stored, self.prefix))

    def edit(self, change: desired.Change, expect: str | None) -> desired.Document:
        stored = self._pull()
        current = _revision(stored.text)
        if expect is not None and expect != current:
            raise RevisionConflict(self.name, expect, current)
        text, config = desired.revise(stored.text, self.name, change)
        try:
            self._run(push(self.client, self.prefix, text, self.name, expect=stored.revision))
        except RevisionConflict:  # pushed by another writer meanwhile: name its revision as a file would
            raise RevisionConflict(self.name, expect or current, _revision(self._pull().text)) from None
        if self.mirror is not None:
            write_mirror(self.mirror, text)
        return desired.Document(self._path, text, _revision(text), config)

    def _pull(self) -> StoredDocument:
        stored = self._run(pull(self.client, self.prefix))
        if stored is None:
            raise ConfigError(
                [ConfigProblem(self.name, "", "", "no desired state is stored (loadmaster config push FILE)")]
            )
        return stored

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:  # waiting here would block the loop that must answer
            coroutine.close()
            raise RuntimeError("StoredEditor is called from a thread (asyncio.to_thread), not on its loop")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _revision(text: str) -> str:
    return desired.revision_of(text.encode("utf-8"))
