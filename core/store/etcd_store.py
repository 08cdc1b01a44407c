"""The state store in etcd (clustered mode): what the journal keeps, shared by every daemon of a cluster.

Keys under the cluster's prefix (values are JSON):
    plans/<id>                  {created, reason, basis, status}
    actions/<id>/<seq:06d>      {kind, replica, from, to, state, error, updated}
    placed/<replica>@<host>     {epoch, at}
    fencing/<epoch:012d>        {holder, at}        every leader's election revision
    events/<ms:015d>-<n:06d>    the event's JSON
    holds/<host>, rollouts/<service>   the shared maps (core.store.etcd_map)

State owned here: a mirror of those keys (reads answer from it, `refresh` re-reads it from etcd) and the
queue of writes not yet in etcd. Writes update the mirror at once and are queued in order; one task sends
them in transactions of at most 128 operations (etcd's default --max-txn-ops). `flush` waits until what
was queued before it is in etcd: the runtime awaits it before a host action runs (journal first). While
etcd cannot take writes (no quorum, unreachable), they stay queued — plans and actions always, events
up to BACKLOG_EVENTS — and the watcher hears of it once, and once more when they are written.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from core.errors import StoreError
from core.model import Action, ActionKind, ReplicaId
from core.store.base import JournaledAction, Watcher
from core.store.etcd import EtcdClient, Op, delete_op, put_op
from core.store.etcd_map import MAP_POLL, EtcdMap

MAX_TXN_OPS = 128
BACKLOG_EVENTS = 10_000
EVENTS_KEPT = 20_000
PLANS_KEPT = 500  # finished plans kept (with their actions); unfinished ones always are
RETRY_EVERY = 0.5
MAPS = ("holds", "rollouts")  # the shared maps the engine keeps here (core.store.shared_map)
FLUSH_TIMEOUT = 10.0


class EtcdStore:
    def __init__(self, client: EtcdClient, prefix: str, local: Path):
        """`local`: this controller's state path on this machine (cordon/drain holds live beside it)."""
        self.client, self.prefix, self.path = client, prefix, str(local)
        self.where = f"{client.where}{prefix}"
        self.trouble: str | None = None
        self._plans: dict[str, dict[str, Any]] = {}
        self._actions: dict[str, dict[int, dict[str, Any]]] = {}
        self._placed: dict[tuple[ReplicaId, str], int] = {}
        self._fencing: dict[int, str] = {}
        self._queue: collections.deque[tuple[bool, list[Op]]] = collections.deque()
        self._queued = self._written = 0  # entries ever queued / ever written, for flush
        self._events_queued = self._dropped = self._late = 0
        self._event_keys: collections.deque[str] = collections.deque(maxlen=EVENTS_KEPT)
        self._event_n = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._watch: Watcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._maps = {name: EtcdMap(client, self._key(name) + "/", self._write, self.flush) for name in MAPS}
        self._follower: asyncio.Task[None] | None = None

    async def open(self) -> EtcdStore:
        """Read what is there and start sending writes; StoreError if etcd does not answer."""
        await self.refresh()
        self._task = asyncio.create_task(self._sender(), name="etcd-store")
        self._follower = asyncio.create_task(self._follow_maps(), name="etcd-maps")
        return self

    def shared_map(self, name: str) -> EtcdMap:
        return self._maps[name]

    async def _follow_maps(self) -> None:
        while True:
            await asyncio.sleep(MAP_POLL)
            for shared in self._maps.values():
                with contextlib.suppress(StoreError):  # etcd away: the maps keep what they had
                    await shared.load()

    def watch(self, watcher: Watcher) -> None:
        self._watch = watcher

    def close(self) -> int:
        left = len(self._queue)
        for task in (self._task, self._follower):
            if task is not None:
                task.cancel()
        return left

    async def aclose(self, timeout: float = 5.0) -> int:
        """Send what is queued (for up to `timeout` s), then stop; returns what could not be sent."""
        with contextlib.suppress(StoreError, TimeoutError):
            await asyncio.wait_for(self.flush(), timeout)
        left = self.close()
        await self.client.close()
        return left

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def retry(self, *, force: bool = False) -> None:
        self._wake.set()  # the sender retries on its own; this only hurries it

    # -- sending ------------------------------------------------------------------

    def _write(self, ops: list[Op], *, event: bool = False) -> None:
        if event and self._events_queued >= BACKLOG_EVENTS:
            self._dropped += 1
            return
        self._queue.append((event, ops))
        self._queued += 1
        self._events_queued += event
        self._wake.set()

    async def flush(self) -> None:
        """Return once every write queued before the call is in etcd; StoreError after FLUSH_TIMEOUT."""
        target = self._queued
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while self._written < target:
            if self._task is None or self._task.done():
                raise StoreError(self.where, "the store is closed", "restart the daemon")
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(self.where, f"writes not accepted for {FLUSH_TIMEOUT:.0f} s ({self.trouble})",
                                 "check the etcd members' health and quorum")  # fmt: skip
            self._progress.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except TimeoutError:
                continue

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch: list[Op] = []
                taken = 0
                for _, ops in self._queue:
                    # etcd refuses a txn that writes a key twice (or puts inside a range it deletes)
                    if batch and (len(batch) + len(ops) > MAX_TXN_OPS or _overlap(batch, ops)):
                        break
                    batch.extend(ops)
                    taken += 1
                try:
                    for start in range(0, len(batch), MAX_TXN_OPS):  # an entry bigger than a txn goes in parts
                        await self.client.txn([], batch[start : start + MAX_TXN_OPS])
                except StoreError as exc:
                    self._failing(exc)
                    await asyncio.sleep(RETRY_EVERY)
                    continue
                for _ in range(taken):
                    event, _ops = self._queue.popleft()
                    self._events_queued -= event
                self._written += taken
                self._progress.set()
                if self.trouble is not None:
                    self._late += taken
            if self.trouble is not None:
                self._recovered()

    def _failing(self, exc: StoreError) -> None:
        first = self.trouble is None
        self.trouble = f"{exc.problem}; {exc.fix}"
        if first:
            self._late = 0
            if self._watch is not None:
                self._watch(str(exc), 0, 0)

    def _recovered(self) -> None:
        written, dropped = self._late, self._dropped
        self.trouble, self._late, self._dropped = None, 0, 0
        if self._watch is not None:
            self._watch(None, written, dropped)

    # -- writes -------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def begin_plan(self, plan_id: str, reason: str, basis: str, actions: tuple[Action, ...]) -> None:
        now = time.time()
        plan = {"created": now, "reason": reason, "basis": basis, "status": "applying"}
        docs = {
            seq: {"kind": a.kind.value, "replica": str(a.replica), "from": a.from_host, "to": a.to_host,
                  "state": "pending", "error": None, "updated": now}
            for seq, a in enumerate(actions)
        }  # fmt: skip
        self._plans[plan_id], self._actions[plan_id] = plan, docs
        # Actions before the plan: a plan that shows in the store has all its actions there.
        # (A plan id is its content's hash: the same id has the same actions, so nothing stale is left.)
        ops = [put_op(self._key("actions", plan_id, f"{seq:06d}"), json.dumps(d)) for seq, d in docs.items()]
        ops.append(put_op(self._key("plans", plan_id), json.dumps(plan)))
        self._write(ops)

    def set_action(self, plan_id: str, seq: int, state: str, error: str | None = None) -> None:
        doc = self._actions.get(plan_id, {}).get(seq)
        if doc is None:
            return  # a plan this store never began (the journal's UPDATE of no row)
        doc.update(state=state, error=error, updated=time.time())
        self._write([put_op(self._key("actions", plan_id, f"{seq:06d}"), json.dumps(doc))])

    def finish_plan(self, plan_id: str, status: str) -> None:
        plan = self._plans.get(plan_id)
        if plan is None:
            return
        plan["status"] = status
        self._write([put_op(self._key("plans", plan_id), json.dumps(plan))])
        self._trim_plans()

    def record_rejected(self, plan_id: str, reason: str, basis: str) -> None:
        plan = {"created": time.time(), "reason": reason, "basis": basis, "status": "rejected"}
        self._plans[plan_id] = plan
        self._write([put_op(self._key("plans", plan_id), json.dumps(plan))])

    def _trim_plans(self) -> None:
        finished = [p for p, d in self._plans.items() if d["status"] != "applying"]
        if len(finished) <= PLANS_KEPT:
            return
        finished.sort(key=lambda p: self._plans[p]["created"])
        ops: list[Op] = []
        for pid in finished[: len(finished) - PLANS_KEPT]:
            del self._plans[pid]
            self._actions.pop(pid, None)
            ops += [delete_op(self._key("plans", pid)), delete_op(self._key("actions", pid, ""), prefix=True)]
        self._write(ops)

    def log_event(self, at: float, doc: dict[str, object]) -> None:
        self._event_n += 1
        key = self._key("events", f"{int(at * 1000):015d}-{self._event_n % 1_000_000:06d}")
        ops = [put_op(key, json.dumps(doc))]
        if len(self._event_keys) == self._event_keys.maxlen and self._event_n % 1000 == 0:
            # a daemon runs for months: keep the newest events (those older than ours EVENTS_KEPT ago go)
            ops.append(delete_op(self._key("events", ""), end=self._event_keys[0]))
        self._event_keys.append(key)
        self._write(ops, event=True)

    def allocate_epoch(self, holder: str, above: int = 0) -> int:
        raise StoreError(self.where, "fencing epochs come from the leader election in clustered mode",
                         "this is a bug: report it")  # fmt: skip

    def record_placed(self, replica: ReplicaId, host: str, epoch: int) -> None:
        self._placed[(replica, host)] = epoch
        doc = {"epoch": epoch, "at": time.time()}
        self._write([put_op(self._key("placed", f"{replica}@{host}"), json.dumps(doc))])

    def record_removed(self, replica: ReplicaId, host: str) -> None:
        self._placed.pop((replica, host), None)
        self._write([delete_op(self._key("placed", f"{replica}@{host}"))])

    def trust_epoch(self, epoch: int, holder: str) -> None:
        if epoch in self._fencing:
            return
        self._fencing[epoch] = holder
        doc = {"holder": holder, "at": time.time()}
        self._write([put_op(self._key("fencing", f"{epoch:012d}"), json.dumps(doc))])

    # -- reads --------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read plans, actions, placed copies and epochs from etcd (another leader may have written them);
        what this process queued and has not sent yet is sent first."""
        if self._task is not None:
            await self.flush()
        kvs = []
        for part in ("plans/", "actions/", "placed/", "fencing/"):  # not events/: many, and never read back
            found, _ = await self.client.range(self.prefix + part, prefix=True)
            kvs += found
        plans: dict[str, dict[str, Any]] = {}
        actions: dict[str, dict[int, dict[str, Any]]] = {}
        placed: dict[tuple[ReplicaId, str], int] = {}
        fencing: dict[int, str] = {}
        for kv in kvs:
            rest = kv.key[len(self.prefix) :]
            kind, _, name = rest.partition("/")
            if kind not in ("plans", "actions", "placed", "fencing"):
                continue
            try:
                doc = json.loads(kv.value)
                if kind == "plans":
                    plans[name] = doc
                elif kind == "actions":
                    pid, _, seq = name.rpartition("/")
                    actions.setdefault(pid, {})[int(seq)] = doc
                elif kind == "placed":
                    replica, _, host = name.rpartition("@")
                    placed[(ReplicaId.parse(replica), host)] = int(doc["epoch"])
                else:
                    fencing[int(name)] = str(doc["holder"])
            except (ValueError, KeyError, TypeError):
                continue  # a key some other version wrote: not ours to interpret
        self._plans, self._actions, self._placed, self._fencing = plans, actions, placed, fencing
        for shared in self._maps.values():
            await shared.load()

    def placed(self) -> set[tuple[ReplicaId, str]]:
        return set(self._placed)

    def epochs(self) -> set[int]:
        return set(self._fencing)

    def unfinished(self) -> list[tuple[str, list[JournaledAction]]]:
        pids = sorted((p for p, d in self._plans.items() if d["status"] == "applying"),
                      key=lambda p: self._plans[p]["created"])  # fmt: skip
        return [(pid, self.actions(pid)) for pid in pids]

    def actions(self, plan_id: str) -> list[JournaledAction]:
        out = []
        for seq, d in sorted(self._actions.get(plan_id, {}).items()):
            action = Action(ActionKind(d["kind"]), ReplicaId.parse(d["replica"]), d.get("from"), d.get("to"))
            out.append(JournaledAction(plan_id, seq, action, d["state"], d.get("error")))
        return out

    def plan_status(self, plan_id: str) -> str | None:
        plan = self._plans.get(plan_id)
        return None if plan is None else str(plan["status"])


def _span(op: Op) -> tuple[str, str | None]:
    """The (base64) key an op writes, and the end of its range for a ranged delete."""
    req = op.get("request_put") or op.get("request_delete_range") or {}
    return str(req.get("key", "")), req.get("range_end")


def _overlap(batch: list[Op], ops: list[Op]) -> bool:
    def covers(a: tuple[str, str | None], key: str) -> bool:
        start, end = a
        return key == start if end is None else _raw(start) <= _raw(key) < _raw(end)

    spans = [_span(op) for op in batch]
    for op in ops:
        new = _span(op)
        for old in spans:
            if covers(old, new[0]) or covers(new, old[0]):
                return True
    return False


def _raw(text: str) -> bytes:
    return base64.b64decode(text)
