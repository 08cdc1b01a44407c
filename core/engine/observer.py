"""Observe: the hosts' frames → what runs where, as one `View` per tick.

State owned here, and who changes it:
- host states (`states`), and when a lost host came back (`_back_since`, `_ever_lost`): `observe` only;
- the replica records per host, corrected by `_expected` — our own starts and stops that no frame
  has shown yet: `observe`, and every start/stop made through `runtime` (the only way the engine
  reaches the hosts' replicas);
- `_intended`, the target of the last applied plan (which copy to keep when a replica runs twice):
  `intend`, called by the engine after an apply;
- `view`, the latest `View`: replaced (never mutated) by `observe`;
- `excluded`, the hosts no plan may use and why (one host's impossible numbers never block the plan): `observe`.

Everything else reads `view`: it is computed once per observation, so that a tick's stages share one
picture of the fleet and none of them recomputes host states or the basis per host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from core.engine.duplicates import duplicate_hosts
from core.engine.ended import ended, ended_fields
from core.engine.events import Emit, EventKind
from core.engine.holds import HostHold
from core.engine.ledger import Ledger, split
from core.engine.ports import FleetPort, ReplicaRuntime
from core.engine.reconcile import reconcile
from core.engine.rollout import Rollouts
from core.engine.view import View
from core.model import (
    ClusterConfig,
    Health,
    HostObservation,
    HostState,
    Placement,
    ReplicaId,
    ReplicaStatus,
    Resources,
    Service,
)
from core.optimizer import unplannable

_HOST_EVENTS = {
    HostState.UP: EventKind.HOST_UP,
    HostState.SUSPECT: EventKind.HOST_SUSPECT,
    HostState.DOWN: EventKind.HOST_DOWN,
    HostState.KEY_MISMATCH: EventKind.HOST_KEY_MISMATCH,
    HostState.UNSUPPORTED: EventKind.HOST_UNSUPPORTED,
    HostState.MISBEHAVING: EventKind.HOST_MISBEHAVING,
}

# an event to emit: kind, message, host, replica (and the event's fields, for some)
_News = (
    tuple[EventKind, str, str, ReplicaId | None] | tuple[EventKind, str, str, ReplicaId | None, Mapping[str, object]]
)


@dataclass(frozen=True)
class _Pulled:
    """What one observation read, copied so that its `View` can be derived in another thread."""

    seq: int
    at: float
    config: ClusterConfig
    observations: Mapping[str, HostObservation]
    states: Mapping[str, HostState]
    planning: Mapping[str, HostState]
    records: Mapping[str, tuple[ReplicaStatus, ...]]  # every record the hosts report
    placed: frozenset[tuple[ReplicaId, str]]  # the ledger's, copied: which records are ours (`ledger.split`)
    trusted: frozenset[int]
    intended: Placement | None
    given_up: frozenset[tuple[ReplicaId, str]]
    halted: Mapping[str, str]
    last: _Derived | None = None  # the derivation installed when this was pulled

    def _same_as(self, other: _Pulled) -> bool:
        """Everything a derivation reads is as in `other` (the frames may be newer: their records are not).
        Plain comparisons in C: a host's records are the very tuple of the frame before when it did not change."""
        return (
            self.config is other.config
            and self.states == other.states
            and self.planning == other.planning
            and self.records == other.records
            and (self.placed is other.placed or self.placed == other.placed)
            and self.trusted == other.trusted
            and self.intended == other.intended
            and self.given_up == other.given_up
            and self.halted == other.halted
        )

    def derive(self) -> _Derived:
        """The view, and the live records that are foreign (the journal never started them)."""
        last = self.last
        if last is not None and self._same_as(last.pulled):
            # Nothing the reconciliation, the basis or its fingerprint read has changed: the steady state,
            # where they would cost tens of milliseconds at 10,000 replicas for the same answer.
            before = last.view
            view = View(self.seq, self.at, self.config, self.observations, self.states, self.planning,
                        before.records, before.rec, self.halted)  # fmt: skip
            view.carry(before)
            return _Derived(replace(self, last=None), view, last.foreign)
        ours, foreign = split(self.records, self.placed, self.trusted)
        rec = reconcile(self.config, self.planning, ours, self.intended, self.given_up)
        view = View(
            self.seq,
            self.at,
            self.config,
            self.observations,
            self.states,
            self.planning,
            ours,
            rec,
            self.halted,
        )
        _ = view.fingerprint  # every tick compares it (stale plans, failover refresh): computed here, once
        return _Derived(replace(self, last=None), view, foreign)  # without `last`: no chain of every view


@dataclass(frozen=True)
class _Derived:
    """A derivation: what it was derived from, the view, and the foreign live records."""

    pulled: _Pulled
    view: View
    foreign: list[ReplicaStatus]


class _Expecting:
    """Every start and stop the engine makes goes through here, so it is remembered until seen."""

    def __init__(self, fleet: ReplicaRuntime, expect: Callable[[str, ReplicaId, ReplicaStatus | None], None]):
        self._fleet, self._expect = fleet, expect

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        status = await self._fleet.start_replica(host, service, index, generation)
        self._expect(host, status.replica, status if status.running else None)
        return status

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        await self._fleet.stop_replica(host, replica, grace)
        self._expect(host, replica, None)


Transition = tuple[str, HostState, HostState]  # a host, its state before and now


class Observer:
    def __init__(self, config: ClusterConfig, fleet: FleetPort, clock: Callable[[], float], emit: Emit, ledger: Ledger):
        self._fleet, self._clock, self._emit, self._ledger = fleet, clock, emit, ledger
        self.foreign: tuple[ReplicaStatus, ...] = ()  # live records the journal never started: left alone
        self._foreign_seen: set[tuple[ReplicaId, str]] = set()
        self.states: dict[str, HostState] = {}
        self._back_since: dict[str, float] = {}  # host → when it came back after being lost
        self._ever_lost: set[str] = set()
        self._records: dict[str, tuple[ReplicaStatus, ...]] = {}
        self._warned: dict[str, tuple[str, ...]] = {}  # host → the probe warnings already announced
        # host → replica → (status after our start, or None after our stop; when), until a frame shows it
        self._expected: dict[str, dict[ReplicaId, tuple[ReplicaStatus | None, float]]] = {}
        self._intended: Placement | None = None
        self.runtime: ReplicaRuntime = _Expecting(fleet, self._expect)
        self._seq = 0  # observations pulled so far
        self.excluded: dict[str, str] = {}  # host → why no plan may use it (core.optimizer.unplannable, duplicates)
        self.duplicates: dict[str, str] = {}  # host → whose machine it is (core.engine.duplicates)
        # host → the operator's hold (core.engine.holds), set by the engine: planned as taking no new replicas
        # (cordon) or keeping none (drain)
        self.holds: Mapping[str, HostHold] = {}
        # the rolling updates a failing new copy stopped (core.engine.rollout), set by the engine: not restarted
        self.rollouts = Rollouts()
        self.view = View(0, self._clock(), config, {}, {}, {}, {}, reconcile(config, {}, {}))
        # Kept between pulls, so that a pull looks only at the hosts whose frame is new (each host reports at
        # its own pace) and a derivation is made again only when what it reads changed (`_Pulled.derive`):
        self._derived: _Derived | None = None  # the derivation of `view`
        self._seen: dict[str, HostObservation] = {}  # host → the frame last looked at
        self._probed: dict[str, Resources] = {}  # host → the capacity its frame reports
        self._fences: dict[str, int] = {}  # host → the epoch of the fence it shows, while reachable
        self._pulled_for: ClusterConfig | None = None  # the config these were kept for
        self._excluded_for: ClusterConfig | None = None  # the config `excluded` was decided for

    async def first_contact(self, timeout: float) -> None:
        """Wait (at most `timeout`) until every host has said something, up or down."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            if all(o.state is not HostState.UNKNOWN for o in self._fleet.observations().values()):
                return
            await asyncio.sleep(0.05)

    def rows(self, config: ClusterConfig, observations: Mapping[str, HostObservation]) -> dict[str, HostObservation]:
        """Every host of `config` as a front end shows it: why one is excluded from planning on its row."""
        out = {}
        for h in config.hosts:
            o = observations.get(h.name) or HostObservation(h.name, HostState.UNKNOWN, self._clock())
            if h.name in self.excluded and o.error is None:
                o = replace(o, error=f"excluded from planning: {self.excluded[h.name]}")
            if h.name in self.duplicates:  # its replicas are the first host's: shown there, once
                o = replace(o, replicas=())
            out[h.name] = o
        return out

    def down_besides(
        self, transitions: list[tuple[str, HostState, HostState]]
    ) -> list[tuple[str, HostState, HostState]]:
        """Hosts down now that are not among `transitions`, as transitions to DOWN (a controller that starts to act
        fails over the hosts that went down while it stood by)."""
        seen = {host for host, _, _ in transitions}
        return [(h, s, s) for h, s in self.view.states.items() if s is HostState.DOWN and h not in seen]

    def intend(self, placement: Placement) -> None:
        """The engine applied a plan for `placement`: when a replica runs twice, keep the copy it chose."""
        self._intended = placement

    def observe(self, config: ClusterConfig, given_up: frozenset[tuple[ReplicaId, str]]) -> list[Transition]:
        """Pull the fleet's observations into a new `view`; returns the host state transitions."""
        transitions, pulled, news = self._pull(config, given_up)
        self._install(pulled.derive(), news)
        self._announce(news)
        return transitions

    async def observe_off_loop(
        self, config: ClusterConfig, given_up: frozenset[tuple[ReplicaId, str]]
    ) -> list[tuple[str, HostState, HostState]]:
        """`observe`, with the work that grows with the replicas (reconcile, basis) in a thread.

        The tick uses this one: at thousands of replicas that work takes tens of milliseconds,
        which the event loop, serving every host's connection, must not spend in one piece.
        """
        transitions, pulled, news = self._pull(config, given_up)
        self._install(await asyncio.to_thread(pulled.derive), news)
        self._announce(news)
        return transitions

    def _install(self, derived: _Derived, news: list[_News]) -> None:
        # An observation pulled later may have been derived first (a plan or an apply observes
        # while the tick's thread runs): the newest pull wins.
        if derived.view.seq > self.view.seq:
            self.view, self._derived = derived.view, derived
            news.extend(self._foreign(derived.foreign))

    def _announce(self, news: list[_News]) -> None:
        # After the view is installed: whoever hears "host.down" and looks finds it down.
        for kind, message, host, replica, *data in news:
            self._emit(kind, message, host=host, replica=replica, data=data[0] if data else None)

    def _pull(
        self, config: ClusterConfig, given_up: frozenset[tuple[ReplicaId, str]]
    ) -> tuple[list[tuple[str, HostState, HostState]], _Pulled, list[_News]]:
        """Host states and records updated from the fleet's frames (on the loop, cheap), and the news."""
        transitions = []
        news: list[_News] = []
        now = self._clock()
        observations = self._fleet.observations()
        if config is not self._pulled_for:  # hosts may have left the file: every host looked at anew
            self._pulled_for = config
            self._seen.clear()
            self._probed.clear()
            self._fences.clear()
        seen, expected, probed, fences = self._seen, self._expected, self._probed, self._fences
        states, records = self.states, self._records
        capacities_changed = identities_changed = False
        # Thousands of hosts send a new frame every poll: a few microseconds each here is milliseconds per tick.
        for name, obs in observations.items():
            last = seen.get(name)
            if last is obs and not expected.get(name):
                continue  # the very frame looked at last time, and none of our starts or stops to wait for
            seen[name] = obs
            if (last.identity if last is not None else None) != obs.identity:
                identities_changed = True  # which machine it is (core.engine.duplicates)
            state, capacity = obs.state, obs.capacity
            reachable = state.reachable
            held = probed.get(name)
            if held is not capacity and held != capacity:
                capacities_changed = True
                if capacity is None:
                    del probed[name]
                else:
                    probed[name] = capacity
            if obs.fence and reachable:
                fences[name] = obs.fence.token.epoch
            else:
                fences.pop(name, None)
            before = states.get(name, HostState.UNKNOWN)
            if state is not before:
                transitions.append((name, before, state))
                states[name] = state
                if state in (HostState.DOWN, HostState.KEY_MISMATCH, HostState.MISBEHAVING):
                    self._ever_lost.add(name)
                if state is HostState.UP and name in self._ever_lost:
                    self._back_since[name] = now
                kind = _HOST_EVENTS.get(state)
                if kind is not None:
                    detail = f": {obs.error}" if obs.error else ""
                    news.append((kind, f"{name} is {state.value}{detail}", name, None))
            if reachable:
                replicas = self._with_expected(name, obs.replicas, now, config) if expected.get(name) else obs.replicas
                old = records.get(name)
                if old is not None and replicas is not old and replicas == old:
                    replicas = old  # a new frame that says the same: the same tuple, so the derivation sees it as such
                # A host that just came back reports its dead, not crashed, replicas; and a frame
                # seen before (hosts report at their own pace) has nothing new.
                if before.reachable and replicas is not old:
                    news.extend(self._crashes(name, replicas))
                    news.extend(self._health_changes(name, replicas))
                if obs.warnings != self._warned.get(name, ()):
                    self._warned[name] = obs.warnings
                    news.extend((EventKind.HOST_WARNING, f"{name}: {w}", name, None) for w in obs.warnings)
                records[name] = replicas
        if identities_changed or config is not self._excluded_for:
            self.duplicates = duplicate_hosts(config, observations)
        for name in self.duplicates:  # the first host's replicas, reported again: not counted twice, never acted on
            records[name] = ()
        if capacities_changed or identities_changed or config is not self._excluded_for:
            self._excluded_for = config
            news.extend(self._exclusions(config, probed))
        # The epochs the fences show: a standby counts what the controller holding the cluster started.
        holding = frozenset(fences.values())
        self._seq += 1
        pulled = _Pulled(
            self._seq, now, config, observations, dict(self.states), self._planning_states(config, now),
            dict(self._records), self._ledger.frozen(), frozenset(self._ledger.trusted | holding),
            self._intended, given_up, self.rollouts.halted, self._derived,
        )  # fmt: skip
        return transitions, pulled, news

    def _foreign(self, foreign: list[ReplicaStatus]) -> list[_News]:
        """Live copies the journal never started: news once per copy, then only shown."""
        self.foreign = tuple(sorted(foreign, key=lambda r: (r.replica, r.host)))
        now = {(r.replica, r.host) for r in foreign}
        new = sorted(now - self._foreign_seen)
        self._foreign_seen = now
        return [
            (EventKind.REPLICA_FOREIGN, f"{replica} runs on {host} but was not started by this cluster's "
             "controllers: left alone, not counted", host, replica)
            for replica, host in new
        ]  # fmt: skip

    def _exclusions(self, config: ClusterConfig, probed: Mapping[str, Resources]) -> list[_News]:
        """Hosts the planner leaves out (their numbers, or a reserve larger than they have): news once per reason."""
        excluded, before = {**unplannable(config, probed), **self.duplicates}, self.excluded
        self.excluded = excluded
        return [
            (EventKind.HOST_EXCLUDED, f"{name} is excluded from planning: {why}", name, None)
            for name, why in excluded.items()
            if before.get(name) != why
        ]

    def _planning_states(self, config: ClusterConfig, now: float) -> dict[str, HostState]:
        settle = config.policy.settle
        out = dict(self.states)
        for host, back in self._back_since.items():  # only hosts that came back may be settling
            if out.get(host) is HostState.UP and now - back < settle:
                out[host] = HostState.SUSPECT
        for host in self.duplicates:  # another host's machine: takes nothing, keeps nothing (what it runs is not its)
            out[host] = HostState.UNSUPPORTED
        for host, hold in self.holds.items():  # the operator's holds: a handful of hosts, looked at alone
            state = out.get(host)
            if hold is HostHold.DRAIN and state in (HostState.UP, HostState.SUSPECT):
                out[host] = HostState.DRAINING  # reachable, keeps nothing: plans move its replicas off
            elif state is HostState.UP:
                out[host] = HostState.SUSPECT  # cordoned: keeps what it runs, takes nothing new
        return out

    def _with_expected(
        self, host: str, reported: tuple[ReplicaStatus, ...], now: float, config: ClusterConfig
    ) -> tuple[ReplicaStatus, ...]:
        """The host's report, corrected by our own starts and stops that its probe has not shown yet.

        Without this, the frame that left the host just before a start lands would make the
        replica look missing, and the next plan would start it a second time elsewhere.
        """
        expected = self._expected.get(host)
        if not expected:
            return reported
        replicas = {r.replica: r for r in reported}
        horizon = config.failure_timeout + 3 * config.poll_interval
        for replica, (status, at) in list(expected.items()):
            seen = replicas.get(replica)
            confirmed = seen is None if status is None else seen is not None and seen.running
            if confirmed or now - at > horizon:
                del expected[replica]
            elif status is None:
                replicas.pop(replica, None)
            else:
                replicas[replica] = status
        return tuple(replicas.values())

    def _expect(self, host: str, replica: ReplicaId, status: ReplicaStatus | None) -> None:
        self._expected.setdefault(host, {})[replica] = (status, self._clock())

    def _health_changes(self, host: str, replicas: tuple[ReplicaStatus, ...]) -> list[_News]:
        """replica.healthy / replica.unhealthy when a running replica's check turns (not for `starting`)."""
        if not any(r.health is Health.HEALTHY or r.health is Health.UNHEALTHY for r in replicas):
            return []  # no checked replica here (most services have no check): no dict of the old frame
        before = {r.replica: r for r in self._records.get(host, ())}
        news: list[_News] = []
        for r in replicas:
            old = before.get(r.replica)
            if not r.running or r.health not in (Health.HEALTHY, Health.UNHEALTHY):
                continue
            if old is not None and old.running and old.pid == r.pid and old.health is r.health:
                continue
            detail = f" ({r.health_detail})" if r.health is Health.UNHEALTHY and r.health_detail else ""
            kind = EventKind.REPLICA_HEALTHY if r.health is Health.HEALTHY else EventKind.REPLICA_UNHEALTHY
            news.append((kind, f"{r.replica} is {r.health.value} on {host}{detail}", host, r.replica))
        return news

    def _crashes(self, host: str, replicas: tuple[ReplicaStatus, ...]) -> list[_News]:
        # Every host's every frame comes through here: the usual answer (all running) costs no dict.
        if all(r.running for r in replicas):
            return []
        before = {r.replica: r for r in self._records.get(host, ())}
        return [
            (EventKind.REPLICA_CRASHED, f"{r.replica} {ended(r)} on {host}", host, r.replica, ended_fields(r))
            for r in replicas
            if (old := before.get(r.replica)) is not None and old.running and not r.running
        ]
