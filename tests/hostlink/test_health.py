"""Health checks run by the probe on real hosts: OpenSSH sshd (the shell probe) and demo hosts (in process).

Every kind healthy and unhealthy against real servers and processes, a wedged (SIGSTOPped) HTTP
server turning unhealthy, a host without an http tool falling back to tcp and saying so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from core.hostlink import scripts
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.hostlink.frames import Frame, FrameReader
from core.model import NO_TOKEN, CheckKind, ClusterConfig, Health, HealthCheck, HostState, ReplicaId, Resources, Service
from tests.conftest import demo_cluster
from tests.hostlink.helpers import cluster, fleet_for, fresh_cluster, until, until_state
from tests.sshd import Sshd, free_port

MARK = "LM_HEALTH_TEST"
QUICK = {"interval": 0.5, "timeout": 0.4, "grace": 0.0, "unhealthy_after": 2}


def services(flag: Path, fixed: int) -> tuple[Service, ...]:
    def svc(name: str, command: str, check: HealthCheck) -> Service:
        return Service(name, command, 1, Resources(100, 1 << 20), check=check)

    web = f"exec python3 -m http.server {{port}} --bind 127.0.0.1  # {MARK}"
    return (
        svc("web", web, HealthCheck(CheckKind.HTTP, **QUICK)),  # type: ignore[arg-type]
        svc("web404", web, HealthCheck(CheckKind.HTTP, path="/nowhere", **QUICK)),  # type: ignore[arg-type]
        svc("web204", web, HealthCheck(CheckKind.HTTP, status=204, **QUICK)),  # type: ignore[arg-type]
        svc("tcp", web, HealthCheck(CheckKind.TCP, **QUICK)),  # type: ignore[arg-type]
        svc("tcpoff", "exec sleep 60", HealthCheck(CheckKind.TCP, port=fixed, **QUICK)),  # type: ignore[arg-type]
        svc(
            "ready", "exec sleep 60", HealthCheck(CheckKind.EXEC, command=f"test -e {shlex.quote(str(flag))}", **QUICK)
        ),  # type: ignore[arg-type]
        svc("plain", "exec sleep 60", None),  # type: ignore[arg-type]
    )


Target = tuple[Fleet, str]  # the fleet and the name of the host under test


@pytest.fixture(params=["sshd", "demo"])
async def target(
    request: pytest.FixtureRequest, tmp_path: Path, demo_fleet: Callable[[ClusterConfig], Awaitable[DemoFleet]]
) -> AsyncIterator[tuple[Fleet, str, Path]]:
    shared = Path(tempfile.mkdtemp(prefix="lm-health-"))  # not tmp_path: its 0700 parents bar sshd's user
    shared.chmod(0o755)
    flag = shared / "ready"
    fixed = free_port("127.0.0.1")
    if request.param == "sshd":
        sshd: Sshd = request.getfixturevalue("sshd")
        names = fresh_cluster(sshd)
        name = next(names)
        cfg = cluster(name, sshd.host("a"))
        cfg = ClusterConfig(cfg.name, cfg.hosts, services(flag, fixed), 0.5, 1.5, defaults=cfg.defaults)
        fleet = fleet_for(sshd, cfg)
        host = "a"
    else:
        demo = await demo_fleet(demo_cluster(1, services=services(flag, fixed)))
        fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
        host = "h1"
    await fleet.start()
    try:
        await until_state(fleet, host, HostState.UP, 10)
        yield fleet, host, flag
    finally:
        for s in fleet._config.services:
            with contextlib.suppress(Exception):  # clean-up only
                await fleet.stop_replica(host, ReplicaId(s.name, 0), 0.2)
        await fleet.close()
        if request.param == "sshd":
            next(names, None)
        shutil.rmtree(shared, ignore_errors=True)


def health(fleet: Fleet, host: str, name: str) -> tuple[Health | None, str]:
    for r in fleet.observations()[host].replicas:
        if r.replica.service == name and r.running:
            return r.health, r.health_detail
    return None, "not running"


async def until_health(fleet: Fleet, host: str, name: str, want: Health | None, timeout: float = 10) -> None:
    await until(
        lambda: health(fleet, host, name)[0] is want, timeout, lambda: f"{name} {want}: {health(fleet, host, name)}"
    )


async def test_every_kind_healthy_and_unhealthy_on_a_real_host(target: tuple[Fleet, str, Path]) -> None:
    fleet, host, flag = target
    flag.touch()
    for s in fleet._config.services:
        await fleet.start_replica(host, s, 0, "g1")
    await until_health(fleet, host, "web", Health.HEALTHY)
    await until_health(fleet, host, "tcp", Health.HEALTHY)
    await until_health(fleet, host, "ready", Health.HEALTHY)
    await until_health(fleet, host, "web404", Health.UNHEALTHY)
    assert health(fleet, host, "web404")[1] == "http-4xx"
    await until_health(fleet, host, "web204", Health.UNHEALTHY)
    assert health(fleet, host, "web204")[1] == "http-2xx"  # 200, but the check wants 204
    await until_health(fleet, host, "tcpoff", Health.UNHEALTHY)
    assert health(fleet, host, "tcpoff")[1] == "not-listening"
    assert health(fleet, host, "plain") == (None, "")  # no check: no health, running counts
    flag.unlink()
    await until_health(fleet, host, "ready", Health.UNHEALTHY)
    assert health(fleet, host, "ready")[1] == "exit-1"
    flag.touch()
    await until_health(fleet, host, "ready", Health.HEALTHY)


async def test_a_wedged_http_server_turns_unhealthy(target: tuple[Fleet, str, Path]) -> None:
    fleet, host, _ = target
    web = fleet._config.service("web")
    status = await fleet.start_replica(host, web, 0, "g1")
    await until_health(fleet, host, "web", Health.HEALTHY)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGSTOP)  # still listening, never answering: a tcp check would not see it
    try:
        await until_health(fleet, host, "web", Health.UNHEALTHY)
        assert health(fleet, host, "web")[1] in ("timeout", "no-answer")
        assert fleet.observations()[host].state.value == "up"  # a slow check never holds up the frames
    finally:
        os.kill(status.pid, signal.SIGCONT)
    await until_health(fleet, host, "web", Health.HEALTHY)


async def test_a_host_without_http_tools_checks_the_port_and_says_so_once(tmp_path: Path) -> None:
    # The probe as a host with only sh, sleep and getconf on its PATH runs it: no curl, wget or python3.
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "sleep", "getconf"):
        path = shutil.which(tool)
        assert path, tool
        (bare / tool).symlink_to(path)
    state = tmp_path / "state"
    port = free_port("127.0.0.1")
    web = Service("web", "x", 1, Resources(1, 1), check=HealthCheck(CheckKind.HTTP, port=port, **QUICK))  # type: ignore[arg-type]
    server = subprocess.Popen(
        ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out = subprocess.run(
            scripts.start_command(str(state), NO_TOKEN, ReplicaId("web", 0), "g", "exec sleep 30", None),
            shell=True,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "r " in out.stdout
        probe = await asyncio.create_subprocess_exec(
            *shlex.split(scripts.probe_command(str(state), 0.2, "1-1@test", [web])),  # the probe itself: killed below
            stdout=asyncio.subprocess.PIPE,
            env={"PATH": str(bare)},
        )
        reader, frames = FrameReader(), []
        assert probe.stdout is not None
        while len(frames) < 6:
            data = await asyncio.wait_for(probe.stdout.read(4096), 5)
            assert data, "the probe ended"
            frames += [f for f in reader.feed(data) if isinstance(f, Frame)]
        probe.kill()
        await probe.wait()
        assert frames[0].warnings and "no curl, wget or python3" in frames[0].warnings[0]
        assert not any(f.warnings for f in frames[1:])  # once
        assert frames[-1].checks[0].health is Health.HEALTHY and frames[-1].checks[0].detail == "ok"
    finally:
        server.kill()
        subprocess.run(scripts.stop_command(str(state), NO_TOKEN, ReplicaId("web", 0), 0), shell=True, check=False)


async def test_new_checks_restart_the_probe_on_the_same_connection(sshd: Sshd) -> None:
    names = fresh_cluster(sshd)
    name = next(names)
    plain = Service("plain", "exec sleep 60", 1, Resources(100, 1 << 20))
    base = cluster(name, sshd.host("a"))
    cfg = dataclasses.replace(base, services=(plain,))
    states: list[HostState] = []
    fleet = fleet_for(sshd, cfg, on_change=lambda o: states.append(o.state))
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 10)
        await fleet.start_replica("a", plain, 0, "g1")
        await until(lambda: health(fleet, "a", "plain") == (None, ""), 5, "plain running, no check")
        checked = dataclasses.replace(plain, check=HealthCheck(CheckKind.EXEC, command="true", **QUICK))  # type: ignore[arg-type]
        fleet.update_config(dataclasses.replace(cfg, services=(checked,)))
        await until_health(fleet, "a", "plain", Health.HEALTHY)
        assert set(states) == {HostState.UP}  # never lost, not even for a moment
    finally:
        await fleet.close()
        next(names, None)


def test_a_stopped_replica_ends_on_term_without_waiting_for_kill(tmp_path: Path) -> None:
    # A wedged (SIGSTOPped) replica acts on TERM only once continued: STOP sends CONT after TERM, so a
    # restart of an unhealthy replica does not wait out the whole grace period for SIGKILL (5 s before).
    state = str(tmp_path / "state")
    out = subprocess.run(
        scripts.start_command(state, NO_TOKEN, ReplicaId("w", 0), "g", "exec sleep 60", None),
        shell=True, capture_output=True, text=True, check=True,
    )  # fmt: skip
    (sample,) = scripts.parse_listing(out.stdout).samples
    os.kill(sample.pid, signal.SIGSTOP)
    started = time.monotonic()
    subprocess.run(scripts.stop_command(state, NO_TOKEN, ReplicaId("w", 0), 5.0), shell=True, check=True)
    assert time.monotonic() - started < 2.5
