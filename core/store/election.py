"""Leader election among a cluster's daemons, on an etcd lease.

Keys under the cluster's prefix:
    election/leader             the leader's id, put with its lease; its create_revision is the leader's epoch
    election/stepdown           a request that the leader named in it steps down (`loadmaster leader step-down`)
    controllers/<id>            every daemon's heartbeat (JSON), put with its lease: `loadmaster status` lists them

State owned here: our lease and when it runs out by our own clock (`_deadline`, from the moment the last
keepalive was *sent* plus the TTL etcd granted, so we always think it ends before etcd does), whether we
hold the leader key, and who does. Two loops: the keepalive (every TTL/3) and the look (every `poll`):
a daemon without a leader campaigns (a transaction that creates the key only if nobody has it), the
leader checks that the key is still its own and honours step-down requests.

`leading` is what the runtime checks before every host action: it turns False the instant our lease
might have run out — etcd unreachable, quorum lost, the process paused — not at the next tick. A leader
that finds its key gone or another's stops at once as well. The epoch only grows: a later leader's key
is created at a later revision, so its token beats ours on every host it touches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import StoreError
from core.store.etcd import EtcdClient, created_is, delete_op, put_op, range_op

log = logging.getLogger("loadmaster.election")

LEADER, STEPDOWN, CONTROLLERS = "election/leader", "election/stepdown", "controllers/"


@dataclass(frozen=True, slots=True)
class Leadership:
    """What the election knows now, as the engine and front ends show it."""

    me: str
    leading: bool
    leader: str | None  # the leader's id (ours when leading); None while nobody leads
    epoch: int  # the leader key's create_revision (0: no leader known)
    problem: str | None = None  # why we cannot tell or cannot lead (etcd unreachable, no quorum)


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    id: str
    host: str
    role: str  # leader | standby
    leader: str | None
    heartbeat: float  # unix seconds of its last heartbeat


OnChange = Callable[[Leadership, Leadership], None]


class Election:
    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        me: str,
        ttl: float,
        *,
        poll: float | None = None,
        campaign: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`campaign`: False for a front end that only shows who leads (the console): it never leads and
        holds no lease."""
        self.client, self.prefix, self.me = client, prefix, me
        self.ttl = max(2, round(ttl + 0.49))  # etcd counts whole seconds, and refuses less than ~2 s
        self.poll = poll if poll is not None else min(0.25, self.ttl / 8)
        self.campaign, self._clock = campaign, clock
        self.listeners: list[OnChange] = []  # told of every change of Leadership (e.g. the engine's fencing)
        self._lease = 0
        self._deadline = 0.0  # by our clock, when the lease may have run out
        self._holding = False  # the leader key is ours (as last read)
        self._leader: str | None = None
        self._epoch = 0
        self._problem: str | None = None
        self._hold_off_until = 0.0  # after a step-down, let another campaign first
        self._last = Leadership(me, False, None, 0)
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    # -- what others ask ------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._holding and self._clock() < self._deadline

    @property
    def epoch(self) -> int:
        return self._epoch if self.leading else 0

    def state(self) -> Leadership:
        leading = self.leading
        leader = self.me if leading else (None if self._holding else self._leader)
        return Leadership(self.me, leading, leader, self._epoch if leader else 0, self._problem)

    def _key(self, name: str) -> str:
        return self.prefix + name

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._look_loop(), name="election-look")]
        if self.campaign:
            self._tasks.append(asyncio.create_task(self._keepalive_loop(), name="election-keepalive"))

    async def close(self) -> None:
        """Stop; a leader gives the lease back so that a standby takes over at once rather than after a TTL."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._lease:
            with contextlib.suppress(StoreError):
                await self.client.revoke(self._lease)
        self._holding, self._lease = False, 0
        self._changed()

    async def step_down(self, hold_off: float | None = None) -> bool:
        """Give up the lead (SIGUSR1, the API, `loadmaster leader step-down`): stop acting at once, delete the
        leader key, and campaign again only after `hold_off` seconds (default two TTLs: time for a standby to
        win and take the hosts, or for this one to take the lead back if none does). False if not leading."""
        if not self._holding:  # a standby asked to step down keeps campaigning: holding off would leave nobody to lead
            return False
        self._holding = False
        self._hold_off_until = self._clock() + (2 * self.ttl if hold_off is None else hold_off)
        self._changed()
        with contextlib.suppress(StoreError):
            await self.client.txn([created_is(self._key(LEADER), self._epoch)], [delete_op(self._key(LEADER))])
        return True

    # -- the loops ----------------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        while True:
            renewed = False
            try:
                await self._keepalive()
                renewed = True
            except StoreError as exc:
                self._trouble(f"cannot renew the lease: {exc.problem}")
            self._changed()  # the deadline may have passed
            # A failed renewal is tried again at once (an etcd leader change takes about a second): the lease
            # must be renewed before our deadline, not a third of a TTL later.
            await self._sleep(self.ttl / 3 if self._lease and renewed else self.poll)

    async def _keepalive(self) -> None:
        sent = self._clock()
        if not self._lease:
            self._lease = await self.client.grant(self.ttl)
            self._deadline = sent + self.ttl
        else:
            granted = await self.client.keepalive(self._lease)
            if granted <= 0:  # it expired (we were away longer than the TTL): whatever we held is gone
                self._lease, self._holding = 0, False
                self._changed()
                return await self._keepalive()
            self._deadline = sent + granted
        self._problem = None
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        role = "leader" if self.leading else "standby"
        doc = {"id": self.me, "host": socket.gethostname(), "pid": os.getpid(), "role": role,
               "leader": self.state().leader, "at": time.time()}  # fmt: skip
        await self.client.put(self._key(CONTROLLERS + self.me), json.dumps(doc), self._lease)

    async def _look_loop(self) -> None:
        while True:
            try:
                await self._look()
            except StoreError as exc:
                self._trouble(f"cannot read the election: {exc.problem}")
            self._changed()
            await self._sleep(self.poll)

    async def _look(self) -> None:
        kvs, _ = await self.client.range(self._key("election/"), prefix=True)
        keys = {kv.key[len(self.prefix) :]: kv for kv in kvs}
        leader = keys.get(LEADER)
        request = keys.get(STEPDOWN)
        if leader is not None:
            ours = leader.value.decode() == self.me and leader.lease == self._lease and self._lease != 0
            self._holding = ours and self._clock() >= self._hold_off_until
            self._leader, self._epoch = leader.value.decode(errors="replace"), leader.create_revision
            if ours and request is not None and request.value.decode() == self.me:
                await self.client.txn([], [delete_op(self._key(STEPDOWN))])
                log.info("step-down requested for %s", self.me)
                await self.step_down()
            self._problem = None
            return
        self._holding, self._leader, self._epoch = False, None, 0
        if request is not None:  # asked of a leader that is gone
            await self.client.txn([], [delete_op(self._key(STEPDOWN))])
        if not self._lease or self._clock() < self._hold_off_until or self._clock() >= self._deadline:
            return
        key = self._key(LEADER)
        result = await self.client.txn([created_is(key, 0)], [put_op(key, self.me, self._lease)], [range_op(key)])
        if result.succeeded:
            self._holding, self._leader, self._epoch = True, self.me, result.revision
            await self._heartbeat()
        elif kvs := result.kvs():
            self._leader, self._epoch = kvs[0].value.decode(errors="replace"), kvs[0].create_revision
        self._problem = None

    def _trouble(self, problem: str) -> None:
        self._problem = problem

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _changed(self) -> None:
        now = self.state()
        if now != self._last:
            before, self._last = self._last, now
            for listener in list(self.listeners):
                listener(before, now)


async def request_step_down(client: EtcdClient, prefix: str) -> str | None:
    """Ask the current leader to step down; its id, or None when nobody leads."""
    leader = await client.get(prefix + LEADER)
    if leader is None:
        return None
    who = leader.value.decode(errors="replace")
    await client.put(prefix + STEPDOWN, who)
    return who


async def controllers(client: EtcdClient, prefix: str) -> list[ControllerInfo]:
    """Every daemon whose lease is alive, leader first."""
    kvs, _ = await client.range(prefix + CONTROLLERS, prefix=True)
    leader = await client.get(prefix + LEADER)
    current = leader.value.decode(errors="replace") if leader else None
    out = []
    for kv in kvs:
        try:
            doc: dict[str, Any] = json.loads(kv.value)
            cid = str(doc["id"])
            out.append(ControllerInfo(cid, str(doc.get("host", "?")), "leader" if cid == current else "standby",
                                      current, float(doc.get("at", 0))))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda c: (c.role != "leader", c.id))
