"""One acting controller per cluster: taking the hosts' fences, standing by, stepping down.

State owned here, and who changes it: the role (`acting`, `standby`), our token and the holder we
defer to. `take` (engine start, `--take-over`) and `watch` (every tick) change them, and `guard`'s
runtime steps down as soon as a host refuses one of our actions as fenced.

The hosts enforce it (core/hostlink/scripts.py): each keeps the highest token seen and refuses lower
ones, so two controllers can never both act on a host. This module decides when to claim:
- at start, a controller that sees a live holder (one whose probe renewed the fence within
  `failure_timeout`) stands by; otherwise it claims every reachable host with a fresh epoch from its
  journal. Two that start together and split the hosts between them are told apart by their tokens:
  the higher one claims everything again with `force`, the lower one stands by;
- a standby claims once no reachable host shows a live holder (the holder stopped, crashed, or lost
  every host), and not before it has stood by for `failure_timeout` (frames lag a poll behind the
  hosts); a host that answers "held" keeps it standing by — only a start-up race is settled by tokens;
- the acting controller steps down when any host shows a higher token: another took over.
A holder id names the process (`PID-STARTTIME@HOST`): a holder on this machine whose process is gone
is not waited for, so a controller restarted after kill -9 takes over at once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.engine.events import Emit, EventKind
from core.engine.ports import FencePort, ReplicaRuntime
from core.errors import Fenced, LoadmasterError, NotHolder
from core.identity import gone_here
from core.model import Claim, ClaimOutcome, HostObservation, ReplicaId, ReplicaStatus, Service, Token
from core.store.base import StateStore

if TYPE_CHECKING:
    from core.store.election import Election


class Role(enum.StrEnum):
    ACTING = "acting"
    STANDBY = "standby"  # another controller holds the cluster: read-only until it is gone
    STARTING = "starting"  # not yet decided (before the first claim)


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    """Who acts on the cluster, as a front end shows it."""

    me: str
    role: Role
    token: Token | None  # ours, while acting
    holder: Token | None  # the highest token the reachable hosts show (ours when acting)
    holder_age: float | None  # seconds since that holder last renewed, the freshest host's
    leader: str | None = None  # clustered mode (core.engine.elected): the elected leader's id, None while none


def highest(observations: Iterable[HostObservation]) -> tuple[Token | None, float | None]:
    """The highest token the reachable hosts show, and the freshest renewal age of it."""
    top: Token | None = None
    age: float | None = None
    for o in observations:
        if not o.state.reachable or o.fence is None or o.fence.token.epoch == 0:
            continue
        token = o.fence.token
        if top is None or token > top:
            top, age = token, o.fence.age
        elif token == top and o.fence.age is not None and (age is None or o.fence.age < age):
            age = o.fence.age
    return top, age


class Fencing:
    def __init__(
        self, fleet: FencePort, journal: StateStore, failure_timeout: float, emit: Emit, clock: Callable[[], float]
    ):
        self._fleet, self._journal, self._emit, self._clock = fleet, journal, emit, clock
        self.failure_timeout = failure_timeout
        self._standby_since = 0.0
        self.role = Role.STARTING
        self.token: Token | None = None
        self.deferring_to: Token | None = None
        self._taking = False

    @property
    def me(self) -> str:
        return self._fleet.controller

    @property
    def acting(self) -> bool:
        return self.role is Role.ACTING

    @property
    def standing_by(self) -> bool:
        return self.role is Role.STANDBY

    @property
    def epoch(self) -> int:
        """The epoch of our token (0 before we hold one), journaled with each start."""
        return self.token.epoch if self.token is not None else 0

    def refuse_if_standing_by(self, what: str) -> None:
        if self.standing_by:
            holder = self.deferring_to
            raise NotHolder(what, holder.holder if holder else "another controller", holder.epoch if holder else 0)

    def status(self, observations: Mapping[str, HostObservation]) -> ControllerStatus:
        top, age = highest(observations.values())
        return ControllerStatus(self.me, self.role, self.token if self.acting else None, top, age)

    def live_holder(self, observations: Mapping[str, HostObservation]) -> Token | None:
        """Another controller that renewed its fence within failure_timeout on a reachable host, if any."""
        best: Token | None = None
        for o in observations.values():
            fence = o.fence
            if not o.state.reachable or fence is None or fence.token.holder in ("-", self.me):
                continue
            if fence.age is None or fence.age >= self.failure_timeout or gone_here(fence.token.holder):
                continue
            if best is None or fence.token > best:
                best = fence.token
        return best

    async def take(
        self, observations: Mapping[str, HostObservation], *, force: bool = False, race: bool = True
    ) -> bool:
        """Claim every reachable host unless a live holder has the cluster (or `force`); True if we act.
        `race`: controllers starting together split the hosts; the higher token then takes them all."""
        if self._taking:
            return self.acting
        self._taking = True
        try:
            return await self._take(observations, force, race)
        finally:
            self._taking = False

    async def _take(self, observations: Mapping[str, HostObservation], force: bool, race: bool) -> bool:
        live = self.live_holder(observations)
        if live is not None and not force:
            self._stand_by(live, "holds the cluster")
            return False
        hosts = [n for n, o in observations.items() if o.state.reachable]
        seen = max((o.fence.token.epoch for o in observations.values() if o.fence is not None), default=0)
        token, answers = await self._claim(hosts, seen, force)
        taken = [a for a in answers if a.outcome is ClaimOutcome.TAKEN]
        refused = [a.before for a in answers if a.outcome is not ClaimOutcome.TAKEN]
        if refused and not force:
            top = max(refused)
            if not taken or top > token or not race:
                # Everything was already held, or we raced a controller whose token is higher: it acts.
                self._stand_by(top, "holds the cluster" if not taken else "won the race to claim it")
                return False
            # We raced a lower token and split the hosts with it: ours wins; take them all again.
            token, answers = await self._claim(hosts, max(seen, top.epoch), True)
        for answer in answers:  # what the controllers we took the hosts over from started is ours now
            if answer.outcome is ClaimOutcome.TAKEN and answer.before.epoch > 0:
                self._journal.trust_epoch(answer.before.epoch, answer.before.holder)
        self.token, self.role, self.deferring_to = token, Role.ACTING, None
        self._fleet.set_token(token)
        claimed = sum(a.outcome is ClaimOutcome.TAKEN for a in answers)
        self._emit(
            EventKind.CONTROLLER_ACTING,
            f"this controller ({self.me}) holds the cluster: epoch {token.epoch} on {claimed} of "
            f"{len(observations)} hosts" + (" (taken over)" if force else ""),
            data={"epoch": token.epoch, "holder": self.me},
        )
        return True

    async def _claim(self, hosts: list[str], seen: int, force: bool) -> tuple[Token, list[Claim]]:
        token = Token(self._journal.allocate_epoch(self.me, above=seen), self.me)

        async def one(host: str) -> Claim | None:
            try:
                return await self._fleet.claim(host, token, self.failure_timeout, force)
            except (LoadmasterError, OSError, TimeoutError):
                return None  # unreachable now: our first action there carries the token

        answers = await asyncio.gather(*(one(h) for h in hosts))
        return token, [a for a in answers if a is not None]

    async def watch(self, observations: Mapping[str, HostObservation]) -> None:
        """Every tick: step down when a higher token shows; a standby claims once no holder is live."""
        if self.acting:
            assert self.token is not None
            top, _ = highest(observations.values())
            if top is not None and top > self.token:
                self.stand_down(top)
        elif (
            self.role is Role.STANDBY
            and self._clock() - self._standby_since >= self.failure_timeout
            and self.live_holder(observations) is None
        ):
            await self.take(observations, race=False)

    async def step_down(self) -> str:
        """Only an elected leader steps down (core.engine.elected); here another controller takes over."""
        raise LoadmasterError("step-down needs clustered mode ([cluster] store = \"etcd://…\"); here, start "
                              "another controller with --take-over")  # fmt: skip

    async def follow(self) -> bool:
        """Standing by, re-read what the acting controller journals when it is shared with us (clustered
        mode, core.engine.elected); True when re-read. A journal of our own has nothing new to offer."""
        return False

    def stand_down(self, holder: Token) -> None:
        """A host showed or answered a higher token: another controller took over; act no more."""
        if not self.acting:
            return
        self.token = None
        self._stand_by(holder, "took over the cluster", fenced=True)

    def _stand_by(self, holder: Token, why: str, *, fenced: bool = False) -> None:
        changed = self.role is not Role.STANDBY or self.deferring_to != holder
        self.role, self.deferring_to, self._standby_since = Role.STANDBY, holder, self._clock()
        if changed:
            self._emit(
                EventKind.CONTROLLER_FENCED if fenced else EventKind.CONTROLLER_STANDBY,
                f"controller {holder.holder} {why} (epoch {holder.epoch}): this one ({self.me}) runs read-only "
                "until it is gone, or is started with --take-over",
                data={"epoch": holder.epoch, "holder": holder.holder},
            )

    def guard(self, runtime: ReplicaRuntime) -> ReplicaRuntime:
        """`runtime`, stepping down when a host refuses an action as fenced."""
        return _Guarded(runtime, self)


class _Guarded:
    def __init__(self, runtime: ReplicaRuntime, fencing: Fencing):
        self._runtime, self._fencing = runtime, fencing

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        try:
            return await self._runtime.start_replica(host, service, index, generation)
        except Fenced as exc:
            self._fencing.stand_down(Token(exc.epoch, exc.holder))
            raise

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        try:
            await self._runtime.stop_replica(host, replica, grace)
        except Fenced as exc:
            self._fencing.stand_down(Token(exc.epoch, exc.holder))
            raise


def fencing_for(
    election: Election | None,
    fleet: FencePort,
    journal: StateStore,
    failure_timeout: float,
    emit: Emit,
    clock: Callable[[], float],
) -> Fencing:
    """Fencing by the hosts' tokens alone, or, clustered (an etcd election), by the election's lead."""
    if election is None:
        return Fencing(fleet, journal, failure_timeout, emit, clock)
    from core.engine.elected import ElectedFencing  # it builds on Fencing: imported once this module is

    return ElectedFencing(election, fleet, journal, failure_timeout, emit, clock)
