"""Autoscaling: the HPA rule (tolerance, stabilization, bounds), and the autoscaler beside a real engine."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from pathlib import Path

import pytest

from core import config as config_io
from core.autoscale import Autoscaler, Rule, measured_ratio
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import ConfigError
from core.model import Autoscale, Resources, Service
from tests.fake_fleet import FakeFleet

WEB = Service("web", "serve", 4, Resources(500, 1 << 28), autoscale=Autoscale(2, 20, 0.6))


def feed(rule: Rule, service: Service, t0: float, t1: float, ratio: float) -> None:
    for t in range(int(t0), int(t1)):
        rule.observe(service.name, float(t), ratio)


def test_scale_up_is_immediate_and_says_why() -> None:
    rule = Rule()
    feed(rule, WEB, 0, 30, 0.92)
    decision = rule.decide(WEB, 30)
    assert decision is not None and decision.desired == math.ceil(4 * 0.92 / 0.6) == 7
    assert str(decision) == "autoscale.up web 4→7: cpu 0.92 of requested, target 0.6"
    assert decision.kind is EventKind.AUTOSCALE_UP


def test_within_the_tolerance_nothing_changes() -> None:
    rule = Rule()
    feed(rule, WEB, 0, 30, 0.65)  # 8% over the target
    assert rule.decide(WEB, 30) is None
    feed(rule, WEB, 30, 60, 0.55)  # 8% under
    assert rule.decide(WEB, 60) is None


def test_the_ratio_is_averaged_over_the_window() -> None:
    rule = Rule()
    feed(rule, WEB, 0, 15, 0.3)
    feed(rule, WEB, 15, 30, 0.9)
    assert rule.ratio("web", WEB.autoscale, 30) == pytest.approx(0.6)  # both halves inside the 30 s window
    assert rule.ratio("web", WEB.autoscale, 45) == pytest.approx(0.9)  # the low half has left it


def test_bounds() -> None:
    rule = Rule()
    feed(rule, WEB, 0, 30, 5.0)
    assert rule.decide(WEB, 30).desired == 20  # max
    small = dataclasses.replace(WEB, replicas=1)
    assert Rule().decide(small, 0).desired == 2  # below min: raised even before anything is measured
    big = dataclasses.replace(WEB, replicas=30)
    assert Rule().decide(big, 0).desired == 20
    rule = Rule()
    feed(rule, big, 0, 30, 0.1)
    assert rule.decide(big, 30).desired == 20  # above max goes at once, measured or not (no window for that)


def test_scale_down_waits_for_the_stabilization_window() -> None:
    rule = Rule()
    for t in range(0, 120):  # steady at the target: every recommendation is "4"
        rule.observe("web", t, 0.6)
        assert rule.decide(WEB, t) is None
    decided = None
    for t in range(120, 480):  # load drops to a third: recommendation 2, but 4 was recommended < 5 min ago
        rule.observe("web", t, 0.2)
        decided = rule.decide(WEB, t)
        if decided is not None:
            break
    # not before the 5 min window since the load dropped, and no later than that plus the averaging window
    assert decided is not None and 120 + 300 <= t <= 120 + 300 + 30
    # the highest recommendation left in the window: 3, made while the average was still falling (the HPA rule)
    assert decided.desired == 3 and decided.kind is EventKind.AUTOSCALE_DOWN
    assert str(decided) == "autoscale.down web 4→3: cpu 0.20 of requested, target 0.6"


def test_a_new_controller_does_not_scale_down_before_a_window() -> None:
    """A controller that just started (or first sees the service) has no recommendations yet: the replicas it
    finds count as one, as the HPA seeds them, so low load scales down only after the window, not at once."""
    rule = Rule()
    decided = None
    for t in range(0, 400):
        rule.observe("web", t, 0.1)  # idle from the first sample: the rule alone would want 1 → min 2
        decided = rule.decide(WEB, t)
        if decided is not None:
            break
    assert decided is not None and t >= 300, f"scaled down {WEB.replicas}→{decided and decided.desired} at {t} s"
    assert decided.desired == 2


def test_flapping_load_does_not_flap_replicas() -> None:
    """10 minutes of load that doubles and halves every 15 s: at most 2 scale-downs (the issue's bound)."""
    rule = Rule()
    service = dataclasses.replace(WEB, replicas=4)
    demand = {True: 4 * 0.9, False: 4 * 0.2}  # in requested-cpu units: the ratio is demand / replicas
    downs = ups = 0
    for t in range(0, 600):
        rule.observe("web", t, demand[(t // 15) % 2 == 0] / service.replicas)
        decision = rule.decide(service, t)
        if decision is not None:
            downs += decision.desired < decision.current
            ups += decision.desired > decision.current
            service = dataclasses.replace(service, replicas=decision.desired)
            rule.scaled("web")
    assert downs <= 2 and ups >= 1


def test_autoscale_is_validated_like_the_file() -> None:
    base = '[[hosts]]\nname = "a"\naddress = "h"\n[[services]]\nname = "web"\ncommand = "x"\ncpu = 1\nmem = "1GiB"\n'
    cfg = config_io.parse(base + "autoscale = { min = 2, max = 20, cpu_target = 0.6 }\n")
    assert cfg.service("web").autoscale == Autoscale(2, 20, 0.6, 30.0, 300.0)
    with pytest.raises(ConfigError) as caught:
        config_io.parse(base + 'autoscale = { min = 3, max = 2, cpu_target = "high", mn = 1 }\n', "c.toml")
    assert [str(p) for p in caught.value.problems] == [
        'c.toml: services "web": autoscale.mn is not a known key (did you mean "autoscale.min"?)',
        'c.toml: services "web": autoscale.cpu_target must be a number more than zero (e.g. 0.6 = 60% of the '
        'requested cpu), got a string "high"',
        'c.toml: services "web": autoscale.max 2 is less than min (3)',
    ]


CLUSTER = """\
# autoscaled through the file
[cluster]
name = "as"
poll_interval = "100ms"
failure_timeout = "300ms"

[policy]
auto_apply = true
cooldown = 0
settle = 0
solver_time_limit = "2s"

[[hosts]]
name = "a"
address = "10.0.0.1"
capacity = {{ cpu = {cpu}, mem = "8GiB" }}

[[hosts]]
name = "b"
address = "10.0.0.2"
capacity = {{ cpu = {cpu}, mem = "8GiB" }}

[[services]]
name = "web"
command = "serve"
replicas = 2   # the autoscaler writes here
cpu = "500m"
mem = "256MiB"
autoscale = {{ min = 2, max = 6, cpu_target = 0.5, window = 1 }}
"""


async def until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def burn(fleet: FakeFleet, percent: float) -> None:
    """Every running web replica reports `percent` of one core (as /proc would)."""
    for _host, records in fleet.records.items():
        for replica, status in records.items():
            records[replica] = dataclasses.replace(status, cpu_percent=percent)


async def start(
    tmp_path: Path, cpu: int, *, read_only: bool = False
) -> tuple[Path, Engine, FakeFleet, Autoscaler, asyncio.Task[None]]:
    path = tmp_path / "cluster.toml"
    path.write_text(CLUSTER.format(cpu=cpu), encoding="utf-8")
    config = config_io.load(path)
    fleet = FakeFleet(config)
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1, read_only=read_only)
    await engine.start(first_contact_timeout=1)
    scaler = Autoscaler(engine, path, time.time)
    return path, engine, fleet, scaler, asyncio.create_task(scaler.run(0.1))


async def test_load_scales_the_file_up_and_the_engine_places_it(tmp_path: Path) -> None:
    path, engine, fleet, scaler, task = await start(tmp_path, cpu=4)
    try:
        await until(lambda: len(fleet.running()) == 2)
        burn(fleet, 45.0)  # 450m of 500m requested: ratio 0.9, target 0.5 → ceil(2 × 1.8) = 4
        assert measured_ratio(engine.snapshot(), engine.snapshot().config.service("web")) == pytest.approx(0.9)
        await until(lambda: engine.snapshot().config.service("web").replicas == 4)
        assert "replicas = 4   # the autoscaler writes here" in path.read_text(encoding="utf-8")
        event = next(e for e in engine.recent_events() if e.kind is EventKind.AUTOSCALE_UP)
        assert event.message == "autoscale.up web 2→4: cpu 0.90 of requested, target 0.5"
        assert event.data == {"service": "web", "from": 2, "to": 4, "ratio": 0.9, "target": 0.5}
        await until(lambda: len(fleet.running()) == 4)  # placed and started
        assert scaler.last["web"] == event.message
    finally:
        task.cancel()
        await engine.close(grace=5)


async def test_a_controller_that_does_not_act_does_not_scale(tmp_path: Path) -> None:
    # A standby (clustered: every daemon but the leader) sees the same load; only the one that acts decides,
    # or each would write the desired state.
    path, engine, fleet, scaler, task = await start(tmp_path, cpu=4, read_only=True)
    try:
        for index, host in enumerate(("a", "b")):  # a read-only engine places nothing: two replicas to measure
            await fleet.start_replica(host, engine.snapshot().config.service("web"), index, "g")
        burn(fleet, 45.0)
        await asyncio.sleep(1.5)
        assert engine.snapshot().read_only and "replicas = 2   # the autoscaler" in path.read_text(encoding="utf-8")
        assert scaler.last == {}
    finally:
        task.cancel()
        await engine.close(grace=5)


async def test_a_scale_up_that_cannot_be_placed_is_undone_with_the_reason(tmp_path: Path) -> None:
    path, engine, fleet, _scaler, task = await start(tmp_path, cpu=1)  # room for 2 × 500m per host: 4 in all
    try:
        await until(lambda: len(fleet.running()) == 2)
        burn(fleet, 150.0)  # ratio 3.0 → wants 6 (max): 2 cannot be placed
        await until(lambda: any(e.kind is EventKind.AUTOSCALE_BLOCKED for e in engine.recent_events()))
        blocked = next(e for e in engine.recent_events() if e.kind is EventKind.AUTOSCALE_BLOCKED)
        assert blocked.data["from"] == 2 and blocked.data["to"] == 6 and blocked.data["reason"]
        assert blocked.message.startswith("autoscale.blocked web 2→6: ") and blocked.message.endswith("keeps 2")
        assert config_io.load(path).service("web").replicas == 2  # the file says what it had
        assert engine.snapshot().config.service("web").replicas == 2
    finally:
        task.cancel()
        await engine.close(grace=5)


async def test_a_persons_edit_wins_over_a_decision(tmp_path: Path) -> None:
    path, engine, fleet, scaler, task = await start(tmp_path, cpu=4)
    task.cancel()
    try:
        await until(lambda: len(fleet.running()) == 2)
        path.write_text(CLUSTER.format(cpu=4).replace("replicas = 2", "replicas = 3"), encoding="utf-8")
        assert not await scaler._write("web", 2, 5)  # the file no longer says 2: nothing written
        assert config_io.load(path).service("web").replicas == 3
    finally:
        await engine.close(grace=5)
