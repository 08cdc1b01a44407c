"""Clustered mode: the etcd election decides which daemon acts; the hosts' fences enforce it.

State owned here (beyond `Fencing`'s role and token): nothing of its own — the election (core.store.
election) owns the lease and who leads; this module turns that into the engine's role:
- a daemon acts only while it holds the leader key *and* its lease has not run out by its own clock.
  Its token is `Token(election revision, id)`: a later leader's key is created at a later revision, so
  its token beats every earlier one, and when it claims the hosts (with force: the election, not a host's
  fence age, is the authority here) every action of a deposed leader is refused on the hosts as fenced;
- losing the lease (etcd unreachable, quorum lost, the process paused) or the key (step-down) stops the
  acting at once: the election calls back, the role becomes standby before the next tick, and the guard
  checks `leading` before every host action — so a paused leader that wakes up starts nothing new;
- before an action reaches a host, the store's queued writes for it (the plan, the action state, the
  placed copy) are flushed to etcd: journal first, as with SQLite;
- a daemon that wins re-reads the store (plans, placed copies, epochs another leader wrote) before it
  acts, so the engine's roll-forward finishes the plan the old leader left half-applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from core.engine.events import EventKind
from core.engine.fencing import ControllerStatus, Emit, Fencing, Role, highest
from core.engine.ports import FencePort, ReplicaRuntime
from core.errors import Fenced, LoadmasterError, NotHolder, StoreError
from core.model import Claim, ClaimOutcome, HostObservation, ReplicaId, ReplicaStatus, Service, Token
from core.store.base import StateStore
from core.store.election import Election, Leadership

FOLLOW_EVERY = 2.0  # seconds between a standby's re-reads of the store


class ElectedFencing(Fencing):
    def __init__(
        self,
        election: Election,
        fleet: FencePort,
        store: StateStore,
        failure_timeout: float,
        emit: Emit,
        clock: Callable[[], float],
    ):
        super().__init__(fleet, store, failure_timeout, emit, clock)
        self.election, self._store = election, store
        self.role = Role.STANDBY  # until the election says we lead
        election.listeners.append(self.leadership_changed)
        self._followed = 0.0

    def leadership_changed(self, before: Leadership, after: Leadership) -> None:
        """The election's callback: losing the lead stops acting now, not at the next tick."""
        if before.leading and not after.leading:
            why = after.problem or "stepped down, or the leader key is gone"
            self._demote(f"lost the lead ({why}): no new action starts here")
        elif after.leader is not None and not after.leading and before.leader != after.leader:
            self._emit(EventKind.CONTROLLER_STANDBY, f"standby (leader: {after.leader}, epoch {after.epoch})",
                       data={"leader": after.leader, "epoch": after.epoch})  # fmt: skip
        elif after.problem and not before.problem and not after.leading:
            self._emit(EventKind.CONTROLLER_STANDBY, f"standby: {after.problem}", data={"level": "error"})

    def _demote(self, message: str) -> None:
        was = self.acting
        self.token = None
        state = self.election.state()
        self.role = Role.STANDBY
        self.deferring_to = Token(state.epoch, state.leader) if state.leader else None
        self._standby_since = self._clock()
        if was:
            self._emit(EventKind.CONTROLLER_FENCED, message, data={"leader": state.leader, "epoch": state.epoch})

    def status(self, observations: Mapping[str, HostObservation]) -> ControllerStatus:
        state = self.election.state()
        top, age = highest(observations.values())
        leader = self.me if self.acting else state.leader  # acting is leading, even between two looks
        return ControllerStatus(self.me, self.role, self.token if self.acting else None, top, age, leader=leader)

    async def take(
        self, observations: Mapping[str, HostObservation], *, force: bool = False, race: bool = True
    ) -> bool:
        if not self.election.leading:
            self._demote("not the leader")
            return False
        if self._taking:
            return self.acting
        self._taking = True
        try:
            epoch = self.election.epoch
            await self._store.refresh()  # what the old leader wrote: its plans, copies and epochs
            token = Token(epoch, self.me)
            hosts = [n for n, o in observations.items() if o.state.reachable]
            answers = [a for a in await self._claim_all(hosts, token) if a is not None]
            for answer in answers:
                if answer.outcome is ClaimOutcome.TAKEN and answer.before.epoch > 0:
                    self._store.trust_epoch(answer.before.epoch, answer.before.holder)
            self._store.trust_epoch(epoch, self.me)
            if not self.election.leading or self.election.epoch != epoch:
                self._demote("lost the lead while taking the hosts")
                return False
            self.token, self.role, self.deferring_to = token, Role.ACTING, None
            self._fleet.set_token(token)
            claimed = sum(a.outcome is ClaimOutcome.TAKEN for a in answers)
            self._emit(
                EventKind.CONTROLLER_ACTING,
                f"this controller ({self.me}) leads the cluster: epoch {epoch} (election revision) on {claimed} "
                f"of {len(observations)} hosts",
                data={"epoch": epoch, "holder": self.me, "leader": self.me},
            )
            return True
        finally:
            self._taking = False

    async def _claim_all(self, hosts: list[str], token: Token) -> list[Claim | None]:
        async def one(host: str) -> Claim | None:
            try:
                return await self._fleet.claim(host, token, self.failure_timeout, True)
            except Exception:  # unreachable now: our first action there carries the token
                return None

        return list(await asyncio.gather(*(one(h) for h in hosts)))

    async def watch(self, observations: Mapping[str, HostObservation]) -> None:
        if self.acting:
            assert self.token is not None
            top, _ = highest(observations.values())
            if not self.election.leading or self.election.epoch != self.token.epoch:
                self._demote("lost the lead: no new action starts here")
            elif top is not None and top > self.token:
                self.stand_down(top)
        elif self.election.leading:
            held = self.deferring_to
            if held is not None and held.holder != self.me and held.epoch > self.election.epoch:
                return  # a host shows a higher token than our election's: a controller outside it acts
            await self.take(observations)
        else:
            self._demote("not the leader")

    async def follow(self) -> bool:
        if self.acting or self._clock() - self._followed < FOLLOW_EVERY:
            return False
        self._followed = self._clock()
        try:
            await self._store.refresh()
        except StoreError:
            return False  # etcd is away: the election says so; the view keeps what it had
        return True

    async def step_down(self) -> str:
        if not await self.election.step_down():
            state = self.election.state()
            raise LoadmasterError(f"this daemon ({self.me}) does not lead: {state.leader or 'no daemon'} does")
        return f"{self.me} stepped down; another daemon takes the lead"

    def may_act(self, what: str) -> None:
        """Raise NotHolder unless we lead now (checked before every host action)."""
        if not (self.acting and self.election.leading and self.token is not None
                and self.election.epoch == self.token.epoch):  # fmt: skip
            state = self.election.state()
            self._demote("lost the lead: no new action starts here")
            raise NotHolder(what, state.leader or "no leader (etcd cannot elect one now)", state.epoch)

    def guard(self, runtime: ReplicaRuntime) -> ReplicaRuntime:
        return _ElectedGuard(runtime, self)


class _ElectedGuard:
    def __init__(self, runtime: ReplicaRuntime, fencing: ElectedFencing):
        self._runtime, self._fencing = runtime, fencing

    async def _ready(self, what: str) -> None:
        self._fencing.may_act(what)
        await self._fencing._store.flush()  # journal first: the step is in etcd before it runs
        self._fencing.may_act(what)  # the flush may have waited: still the leader?

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        await self._ready(f"start {service.name}/{index} on {host}")
        try:
            return await self._runtime.start_replica(host, service, index, generation)
        except Fenced as exc:
            self._fencing.stand_down(Token(exc.epoch, exc.holder))
            raise

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        await self._ready(f"stop {replica} on {host}")
        try:
            await self._runtime.stop_replica(host, replica, grace)
        except Fenced as exc:
            self._fencing.stand_down(Token(exc.epoch, exc.holder))
            raise
