"""The embedded demo fleet (asyncssh servers, real processes) driven through Fleet."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from core import config as config_file
from core.errors import ConfigError, HostUnreachable, LoadmasterError
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import Host, HostObservation, HostState, ReplicaId, Resources, Service, SshDefaults
from tests.conftest import demo_cluster
from tests.hostlink.helpers import until, until_state
from tests.sshd import free_port, require_tool

BURN = Service("burn", "exec python3 -c 'while True: pass'", 1, Resources(1000, 1 << 20))
SLEEP = Service("sleep", "sleep 300", 2, Resources(100, 1 << 20))
WEB = Service("web", "exec python3 -m http.server {port} --bind 127.0.0.1", 2, Resources(100, 1 << 20))

StartDemo = Callable[..., Awaitable[DemoFleet]]


@pytest.fixture
async def running(demo_fleet: StartDemo) -> AsyncIterator[tuple[DemoFleet, Fleet, list[HostObservation]]]:
    demo = await demo_fleet(demo_cluster(2, services=(BURN, SLEEP, WEB)), extra_hosts=1)
    seen: list[HostObservation] = []
    fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key], on_change=seen.append)
    await fleet.start()
    for host in demo.config.hosts:
        await until_state(fleet, host.name, HostState.UP, 10)
    yield demo, fleet, seen
    await fleet.close()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_demo_hosts_report_declared_capacity_and_only_their_own_usage(running) -> None:
    demo, fleet, seen = running
    assert [h.name for h in demo.config.hosts] == ["h1", "h2", "demo-0003"]  # --hosts beyond the file
    assert {o.host for o in seen} == {"h1", "h2", "demo-0003"}  # on_change saw every host
    await fleet.start_replica("h1", BURN, 0, "g1")

    def busy() -> bool:
        h1 = fleet.observations()["h1"]
        return (h1.cpu_percent or 0) > 10 and any((r.cpu_percent or 0) > 20 for r in h1.replicas)

    await until(busy, 6, "h1 and its replica busy")
    h1, h2 = fleet.observations()["h1"], fleet.observations()["h2"]
    assert h1.capacity == h2.capacity == Resources(2000, 4 << 30)
    assert h1.ncpu == 2 and h1.mem_total == 4 << 30
    assert h1.mem_available is not None and h1.mem_available < 4 << 30  # the burner's RSS
    (burn,) = h1.replicas
    assert burn.replica == ReplicaId("burn", 0) and burn.running and burn.generation == "g1"
    assert h2.cpu_percent == 0.0 and h2.mem_available == 4 << 30 and h2.replicas == ()  # the machine is busy, h2 not


async def test_start_is_idempotent_stop_is_idempotent_and_ports_do_not_collide(running) -> None:
    _, fleet, _ = running
    first = await fleet.start_replica("h1", WEB, 0, "g1")
    again = await fleet.start_replica("h1", WEB, 0, "g2")
    assert first.running and again.pid == first.pid and again.generation == "g1"
    second = await fleet.start_replica("h1", WEB, 1, "g1")
    records = {r.replica: r for r in await fleet.list_replicas("h1")}
    assert set(records) == {ReplicaId("web", 0), ReplicaId("web", 1)} and all(r.running for r in records.values())
    ports = set()
    for status in (first, second):
        process = psutil.Process(status.pid)

        def listening(process: psutil.Process = process) -> list[int]:
            return [c.laddr.port for c in process.net_connections() if c.status == "LISTEN"]

        await until(lambda: bool(listening()), 5, "the web replica listens")
        (port,) = listening()
        ports.add(port)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert conn.recv(12).startswith(b"HTTP/1.0 200")
    assert len(ports) == 2 and all(20000 <= p <= 29999 for p in ports)
    await fleet.stop_replica("h1", ReplicaId("web", 0), grace=2)
    await fleet.stop_replica("h1", ReplicaId("web", 0), grace=2)  # already stopped: nothing to do
    assert not alive(first.pid)
    assert [r.replica for r in await fleet.list_replicas("h1")] == [ReplicaId("web", 1)]


async def test_a_replica_that_dies_shows_in_the_next_frame(running) -> None:
    _, fleet, _ = running
    status = await fleet.start_replica("h2", SLEEP, 0, "g1")
    await until(lambda: len(fleet.observations()["h2"].replicas) == 1, 3, "replica in the frames")
    os.killpg(status.pid or 0, signal.SIGKILL)
    took = await until(lambda: not fleet.observations()["h2"].replicas[0].running, 3, "death in the frames")
    assert took <= 0.5 + 0.3  # within one poll
    (record,) = await fleet.list_replicas("h2")
    assert not record.running and record.pid == status.pid


async def test_crash_kills_replicas_cut_off_keeps_them_restore_brings_hosts_back(running) -> None:
    demo, fleet, _ = running
    on_h1 = await fleet.start_replica("h1", SLEEP, 0, "g1")
    on_h2 = await fleet.start_replica("h2", SLEEP, 1, "g1")
    await demo.crash("h1")
    await demo.cut_off("h2")
    crashed = await until_state(fleet, "h1", HostState.DOWN, 1)
    assert "connection" in (crashed.error or "")
    await until(lambda: not alive(on_h1.pid or 0), 2, "h1's replica ends with it")
    with pytest.raises(HostUnreachable):
        await fleet.list_replicas("h1")
    start = time.monotonic()
    await until_state(fleet, "h2", HostState.SUSPECT, 2)
    await until_state(fleet, "h2", HostState.DOWN, 3)
    cfg = demo.config
    assert time.monotonic() - start <= cfg.failure_timeout + cfg.poll_interval + 0.3
    assert alive(on_h2.pid or 0)  # a partition does not stop the host's processes
    await demo.restore("h1")
    await demo.restore("h2")
    await until_state(fleet, "h1", HostState.UP, 12)
    await until_state(fleet, "h2", HostState.UP, 12)
    (dead,) = await fleet.list_replicas("h1")
    assert dead.replica == ReplicaId("sleep", 0) and not dead.running  # the record survived the crash
    (kept,) = await fleet.list_replicas("h2")
    assert kept.running and kept.pid == on_h2.pid


async def test_update_config_connects_added_and_drops_removed_hosts(running) -> None:
    demo, fleet, _ = running
    smaller = dataclasses.replace(demo.config, hosts=demo.config.hosts[:1])
    fleet.update_config(smaller)
    assert list(fleet.observations()) == ["h1"]
    with pytest.raises(LoadmasterError, match='"h2" is not a host'):
        await fleet.list_replicas("h2")
    fleet.update_config(demo.config)
    await until_state(fleet, "h2", HostState.UP, 10)


async def test_plain_openssh_client_logs_in_to_a_demo_host(running) -> None:
    demo, _, _ = running
    require_tool("ssh")
    proc = await asyncio.create_subprocess_shell(  # not subprocess.run: the server shares this event loop
        f"{demo.ssh_command('h1')} -o BatchMode=yes 'echo \"$HOME\"; echo err >&2; exit 3'",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 3 and out.decode().strip().endswith("hosts/h1/home") and b"err" in err


def test_demo_config_errors_name_what_to_fix(tmp_path: Path) -> None:
    cfg = demo_cluster(1)
    with pytest.raises(ConfigError, match="state_dir must start with ~/"):
        DemoFleet(dataclasses.replace(cfg, state_dir="/srv/state"), tmp_path)
    remote = dataclasses.replace(cfg.hosts[0], address="10.1.2.3")
    with pytest.raises(ConfigError, match=r'hosts "h1": address 10\.1\.2\.3 is not IPv4 loopback'):
        DemoFleet(dataclasses.replace(cfg, hosts=(remote,)), tmp_path)


async def test_port_already_taken_is_a_clear_error(demo_fleet: StartDemo) -> None:
    cfg = demo_cluster(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", cfg.hosts[0].port))
        taken.listen()
        with pytest.raises(LoadmasterError, match=f"demo host h1: cannot listen on 127.0.0.1:{cfg.hosts[0].port}"):
            await demo_fleet(cfg)


def test_demo_serve_prints_ssh_lines_and_stops_on_interrupt(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg = demo_cluster(1)
    cfg_file.write_text(
        f'[cluster]\nname = "t"\ndemo = true\n[[hosts]]\nname = "a"\naddress = "127.0.0.1"\n'
        f'port = {cfg.hosts[0].port}\ncapacity = {{ cpu = 1, mem = "1GiB" }}\n'
    )
    workdir = str(tmp_path / "w")
    cmd = [sys.executable, "-m", "console.cli", "demo", "--serve", "-c", str(cfg_file), "--workdir", workdir]
    proc = subprocess.Popen([*cmd, "--hosts", "3"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert lines[0].startswith("a ") and f"-p {cfg.hosts[0].port} " in lines[0] and "UserKnownHostsFile=" in lines[0]
    assert lines[1].startswith("demo-0002 ") and lines[3].startswith("serving 3 demo hosts")
    too_few = subprocess.run([*cmd, "--hosts", "0"], capture_output=True, text=True, timeout=30)
    assert too_few.returncode == 1 and "--hosts 0" in too_few.stderr


async def test_a_restarted_demo_fleet_ends_replicas_its_killed_predecessor_left(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(
        f'[cluster]\nname = "t"\ndemo = true\n[[hosts]]\nname = "h1"\naddress = "127.0.0.1"\n'
        f'port = {port}\ncapacity = {{ cpu = 1, mem = "1GiB" }}\n'
    )
    workdir = tmp_path / "w"
    serve = [sys.executable, "-m", "console.cli", "demo", "--serve", "-c", str(cfg_file), "--workdir", str(workdir)]
    proc = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("h1 ")
    cfg = config_file.load(cfg_file)
    fleet = Fleet(cfg, known_hosts=str(workdir / "known_hosts"), client_keys=[str(workdir / "client_key")])
    await fleet.start()
    try:
        leftover = await fleet.start_replica("h1", SLEEP, 0, "g1")
    finally:
        await fleet.close()
    proc.kill()  # the demo process dies without cleaning up: its replica lives on
    proc.wait()
    assert alive(leftover.pid or 0)
    reborn = DemoFleet(cfg, workdir)
    await reborn.start()  # a boot: what ran before is gone, the record stays
    try:
        await until(lambda: not alive(leftover.pid or 0), 3, "the leftover replica ended by the boot")
        assert len(list((workdir / "hosts" / "h1" / "home" / ".loadmaster" / "t" / "replicas").glob("*.rec"))) == 1
    finally:
        await reborn.stop()


async def test_silent_hosts_do_not_hold_the_handshake_slots(demo_fleet: StartDemo) -> None:
    demo = await demo_fleet(demo_cluster(1))
    silent = []
    for _ in range(3):  # the kernel accepts the TCP connection; no SSH server ever speaks
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        silent.append(sock)
    try:
        hung = tuple(Host(f"hung{i}", "127.0.0.1", s.getsockname()[1]) for i, s in enumerate(silent))
        cfg = dataclasses.replace(
            demo.config, hosts=(*hung, *demo.config.hosts), defaults=SshDefaults(connect_timeout=3.0)
        )
        fleet = Fleet(cfg, known_hosts=demo.known_hosts, client_keys=[demo.client_key], max_handshakes=1)
        await fleet.start()
        try:
            await until_state(fleet, "h1", HostState.UP, 2.0)  # not after the hung hosts' 3 s timeouts
            assert {fleet.observations()[h.name].state for h in hung} == {HostState.UNKNOWN}
            await until_state(fleet, "hung0", HostState.DOWN, 4.0)
            assert "timed out" in (fleet.observations()["hung0"].error or "")
        finally:
            await fleet.close()
    finally:
        for sock in silent:
            sock.close()
