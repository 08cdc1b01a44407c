"""The replica runtime and host-key handling, against a real OpenSSH sshd and a demo host alike."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import psutil
import pytest

from core.errors import Fenced, HostCommandFailed, HostUnreachable
from core.hostlink import scripts
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import ClaimOutcome, ClusterConfig, Host, HostKeyPolicy, HostState, ReplicaId, ReplicaStatus, Token
from tests.conftest import demo_cluster
from tests.hostlink.helpers import alive, cluster, fleet_for, fresh_cluster, service, until, until_state
from tests.sshd import start_sshd

HOSTILE = '\'; $(touch {canary}) "x y"'


@dataclass(frozen=True)
class Target:
    """A host to run replicas on: what tests need of an sshd or of a demo host."""

    address: str
    port: int
    user: str | None
    known_hosts: str
    client_key: str
    host_key: asyncssh.SSHKey
    home: Path  # where `~` is on the host

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint()

    def host(self, name: str) -> Host:
        return Host(name, self.address, self.port, user=self.user)


@pytest.fixture(params=["sshd", "demo"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sshd":
        request.applymarker(pytest.mark.sshd)
        server = start_sshd("127.0.0.2")
        try:
            yield Target(server.address, server.port, server.user, server.known_hosts, server.client_key,
                         server.host_key, server.home)  # fmt: skip
        finally:
            server.cleanup()
    else:
        demo = DemoFleet(demo_cluster(1), tmp_path / "demo")
        await demo.start()
        try:
            (host,) = demo.hosts
            root = tmp_path / "demo" / "hosts" / host.name
            key = asyncssh.read_public_key(str(root / "host_key.pub"))
            yield Target(host.address, host.port, None, demo.known_hosts, demo.client_key, key, root / "home")
        finally:
            await demo.stop()


@pytest.fixture
def name(target: Target) -> Iterator[str]:
    yield from fresh_cluster(target)


async def test_stop_terms_the_process_group_and_kills_it_after_the_grace_period(target: Target, name: str) -> None:
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        polite = await fleet.start_replica("a", service("polite", "sleep 60 & wait"), 0, "g")
        stubborn = await fleet.start_replica("a", service("stubborn", "trap '' TERM; sleep 60 & wait"), 0, "g")
        await asyncio.sleep(0.2)
        group = {p.pid for p in psutil.Process(polite.pid).children()}
        started = time.monotonic()
        await fleet.stop_replica("a", ReplicaId("polite", 0), grace=10)
        # TERM was enough: no waiting out the grace period (0.15 s quiet; 2 s seen in a full suite at load 2)
        assert time.monotonic() - started < 5.0
        assert not alive(polite.pid) and not any(alive(p) for p in group)  # the whole group, not just the leader
        started = time.monotonic()
        await fleet.stop_replica("a", ReplicaId("stubborn", 0), grace=1)
        assert 1.0 <= time.monotonic() - started < 3.0 and not alive(stubborn.pid)
    finally:
        await fleet.close()


async def test_start_list_stop_run_hostile_names_and_commands_exactly_as_written(
    target: Target, name: str, tmp_path: Path
) -> None:
    canary = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    hostile = HOSTILE.format(canary=canary)
    svc = service(hostile, f"printf '%s\\n' {scripts.shlex.quote(hostile)} > out.txt; exec sleep 60")
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        started = await fleet.start_replica("a", svc, 0, "gen 'one'")
        assert started.running and started.generation == "gen 'one'" and started.replica == ReplicaId(hostile, 0)
        assert psutil.Process(started.pid).username() == (target.user or getpass.getuser())
        again = await fleet.start_replica("a", svc, 0, "gen 'two'")
        assert again.pid == started.pid  # idempotent: the live record wins
        (listed,) = await fleet.list_replicas("a")
        assert listed.replica == ReplicaId(hostile, 0) and listed.running and listed.pid == started.pid
        await until(lambda: any(r.running for r in fleet.observations()["a"].replicas), 3, "replica in the frames")
        state = target.home / ".loadmaster" / name
        assert (state / "out.txt").read_text() == hostile + "\n"
        log = state / "logs" / f"{scripts.hexed(hostile)}.0.log"
        assert log.exists()
        await fleet.stop_replica("a", ReplicaId(hostile, 0), grace=2)
        await fleet.stop_replica("a", ReplicaId(hostile, 0), grace=2)
        assert not alive(started.pid) and await fleet.list_replicas("a") == ()
        assert not os.path.exists(canary)
    finally:
        await fleet.close()


async def test_a_reused_pid_is_never_taken_for_the_replica_nor_killed(target: Target, name: str) -> None:
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        old = await fleet.start_replica("a", service("old", "exec sleep 60"), 0, "g")
        other = await fleet.start_replica("a", service("other", "exec sleep 60"), 0, "g")
        await fleet.stop_replica("a", ReplicaId("other", 0), grace=1)
        bystander = await fleet.start_replica("a", service("bystander", "exec sleep 60"), 0, "g")
        # `old` died and the kernel handed its pid to an unrelated process: forge exactly that.
        record = target.home / ".loadmaster" / name / "replicas" / f"{scripts.hexed('old')}.0.rec"
        fields = record.read_text().split()
        os.kill(old.pid or 0, 9)
        fields[5] = str(bystander.pid)
        record.write_text(" ".join(fields) + "\n")
        listed = {r.replica.service: r for r in await fleet.list_replicas("a")}
        assert not listed["old"].running and listed["old"].pid == bystander.pid
        assert listed["bystander"].running
        await fleet.stop_replica("a", ReplicaId("old", 0), grace=1)
        assert alive(bystander.pid)  # stop did not signal the process that reused the pid
        restarted = await fleet.start_replica("a", service("old", "exec sleep 60"), 0, "g2")
        assert restarted.running and restarted.pid != bystander.pid and restarted.generation == "g2"
        assert other.pid != restarted.pid or not alive(other.pid)
    finally:
        await fleet.close()


async def test_changed_host_key_is_refused_as_key_mismatch_with_both_fingerprints(
    target: Target, name: str, tmp_path: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{target.address}]:{target.port} {impostor.export_public_key().decode()}")
    fleet = fleet_for(target, cluster(name, target.host("a"), policy=HostKeyPolicy.ACCEPT_NEW), str(known))
    await fleet.start()
    try:
        obs = await until_state(fleet, "a", HostState.KEY_MISMATCH, 10)
        assert impostor.get_fingerprint() in (obs.error or "") and target.fingerprint in (obs.error or "")
        with pytest.raises(HostUnreachable, match="host key changed"):
            await fleet.list_replicas("a")
    finally:
        await fleet.close()


async def test_accept_new_records_the_key_in_loadmasters_own_known_hosts(
    target: Target, name: str, tmp_path: Path
) -> None:
    empty, own = tmp_path / "empty", tmp_path / "lm" / "known_hosts"
    empty.write_text("")
    cfg = cluster(name, target.host("a"), policy=HostKeyPolicy.ACCEPT_NEW)
    fleet = fleet_for(target, cfg, str(empty), own_known_hosts=str(own))
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 10)
        assert any("recorded new host key" in n and target.fingerprint in n for n in fleet.notices)
    finally:
        await fleet.close()
    assert (
        own.read_text() == f"[{target.address}]:{target.port} {target.host_key.export_public_key().decode().strip()}\n"
    )
    assert empty.read_text() == ""  # the user's file is never written
    strict = fleet_for(target, cluster(name, target.host("a")), str(empty), own_known_hosts=str(own))
    await strict.start()
    try:
        await until_state(strict, "a", HostState.UP, 10)  # recorded once, trusted from then on
    finally:
        await strict.close()


async def test_accept_new_records_the_key_in_the_known_hosts_the_cluster_file_names(
    target: Target, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, item 9: `known_hosts = "…"` in [defaults] is where accept-new writes, not ~/.loadmaster/known_hosts."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    named = tmp_path / "fleet_known_hosts"
    named.write_text("")
    base = cluster(name, target.host("a"), policy=HostKeyPolicy.ACCEPT_NEW)
    cfg = dataclasses.replace(base, defaults=dataclasses.replace(base.defaults, known_hosts=str(named)))
    fleet = Fleet(cfg, client_keys=[target.client_key])
    fleet.log_notices = False
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 10)
        assert [n for n in fleet.notices if "recorded new host key" in n and str(named) in n]
    finally:
        await fleet.close()
    line = f"[{target.address}]:{target.port} {target.host_key.export_public_key().decode().strip()}\n"
    assert named.read_text() == line
    assert not (tmp_path / "home" / ".loadmaster" / "known_hosts").exists()
    strict_defaults = dataclasses.replace(cfg.defaults, host_key_policy=HostKeyPolicy.STRICT)
    strict = Fleet(dataclasses.replace(cfg, defaults=strict_defaults), client_keys=[target.client_key])
    await strict.start()
    try:
        await until_state(strict, "a", HostState.UP, 10)  # the named file is read too: trusted from then on
    finally:
        await strict.close()


async def test_strict_policy_refuses_an_unknown_key(target: Target, name: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    fleet = fleet_for(target, cluster(name, target.host("a")), str(empty), own_known_hosts=str(tmp_path / "own"))
    await fleet.start()
    try:
        obs = await until_state(fleet, "a", HostState.DOWN, 10)
        assert target.fingerprint in (obs.error or "") and "accept-new" in (obs.error or "")
    finally:
        await fleet.close()


async def test_a_failing_command_is_a_typed_error(target: Target, name: str) -> None:
    cfg = cluster(name, target.host("a"))
    fleet = fleet_for(target, ClusterConfig(**{**_fields(cfg), "state_dir": "/proc/not-writable"}))
    await fleet.start()
    try:
        with pytest.raises(HostCommandFailed, match="a: start x/0 failed"):
            await fleet.start_replica("a", service("x", "sleep 1"), 0, "g")
    finally:
        await fleet.close()


async def test_replicas_outlive_the_connection_and_a_new_fleet_finds_them(target: Target, name: str) -> None:
    svc = service("long", "exec sleep 60")
    first = fleet_for(target, cluster(name, target.host("a")))
    await first.start()
    try:
        started = await first.start_replica("a", svc, 0, "g1")
    finally:
        await first.close()
    await asyncio.sleep(0.3)
    assert alive(started.pid)  # detached into its own session: the SSH session's end does not touch it
    second = fleet_for(target, cluster(name, target.host("a")))
    await second.start()
    try:
        await until(lambda: [r.pid for r in second.observations()["a"].replicas] == [started.pid], 5, "re-read")
        again = await second.start_replica("a", svc, 0, "g2")
        assert again.pid == started.pid and again.generation == "g1"  # never started twice
    finally:
        await second.close()


def _umask(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("Umask:")), 8)


async def test_records_and_logs_are_private_and_the_replica_keeps_the_logins_umask(target: Target, name: str) -> None:
    """Issue 10, defect 15: under umask 022 the records and logs were world-readable (0644 in 0755 directories)."""
    ambient = os.umask(0o022)  # a demo host's commands get this umask; the sshd's logins the one it started under
    login = 0o022 if target.user is None else ambient
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        assert login & 0o077 != 0o077, "a login umask of 077 would make every file private anyway"
        status = await fleet.start_replica("a", service("private", "echo out; exec sleep 60"), 0, "g")
        assert status.pid is not None and _umask(status.pid) == login  # the replica's own files are as before
        state = target.home / ".loadmaster" / name
        replicas, logs = state / "replicas", state / "logs"
        await until(lambda: (logs / f"{scripts.hexed('private')}.0.log").read_bytes() == b"out\n", 5, "its log")
        made = (replicas, logs, *replicas.iterdir(), *logs.iterdir())
        modes = {p.relative_to(state).as_posix(): p.stat().st_mode & 0o777 for p in made}
        assert modes == {
            "replicas": 0o700, "logs": 0o700,
            f"replicas/{scripts.hexed('private')}.0.rec": 0o600, f"logs/{scripts.hexed('private')}.0.log": 0o600,
        }  # fmt: skip
    finally:
        os.umask(ambient)
        await fleet.close()


def _fields(cfg: ClusterConfig) -> dict[str, object]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


async def test_a_command_at_the_validated_limit_runs_and_one_far_beyond_it_cannot(target: Target, name: str) -> None:
    """`validate` caps a command at config.MAX_COMMAND_BYTES (quoted) because the host must carry it: one
    at the cap starts on a real host, one of 50 KB fails there (issue 10 defect 15: it passed validate)."""
    from core.config import MAX_COMMAND_BYTES

    head = "exec sleep 60 # "
    at_cap = head + "x" * (MAX_COMMAND_BYTES - len(head) - 2)  # shlex.quote adds the two quotes
    assert len(scripts.shlex.quote(at_cap)) == MAX_COMMAND_BYTES
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        started = await fleet.start_replica("a", service("capped", at_cap), 0, "g")
        assert started.running
        with pytest.raises(HostCommandFailed):
            await fleet.start_replica("a", service("huge", head + "x" * 50_000), 0, "g")
        await fleet.stop_replica("a", ReplicaId("capped", 0), grace=1)
    finally:
        await fleet.close()


async def test_two_fleets_fence_each_other_on_the_host_and_the_holder_renews_through_its_probe(
    target: Target, name: str
) -> None:
    # Two controllers (two fleets with their own ids) on one real host: the holder's probe keeps the
    # host's fence fresh, the other's claim is held off, its actions are refused as fenced, and a
    # higher token taken with force fences the first off in turn.
    cfg = cluster(name, target.host("a"))
    first, second = fleet_for(target, cfg, controller="ctl-1"), fleet_for(target, cfg, controller="ctl-2")
    await first.start()
    await second.start()
    try:
        await until_state(first, "a", HostState.UP, 10)
        await until_state(second, "a", HostState.UP, 10)
        taken = await first.claim("a", Token(1, "ctl-1"), live_for=1.5)
        assert taken.outcome is ClaimOutcome.TAKEN
        first.set_token(Token(1, "ctl-1"))
        await first.start_replica("a", service("web", "exec sleep 60"), 0, "g")
        await asyncio.sleep(2.0)  # longer than live_for: only the probe's renewals keep the holder live
        fence = second.observations()["a"].fence
        assert fence is not None and fence.token == Token(1, "ctl-1") and fence.age is not None and fence.age < 1.5
        held = await second.claim("a", Token(2, "ctl-2"), live_for=1.5)
        assert held.outcome is ClaimOutcome.HELD and held.before == Token(1, "ctl-1")
        with pytest.raises(Fenced):  # no token (a controller that never claimed) is lower than the holder's
            await second.stop_replica("a", ReplicaId("web", 0), grace=0.5)
        assert (await second.claim("a", Token(2, "ctl-2"), 1.5, force=True)).outcome is ClaimOutcome.TAKEN
        with pytest.raises(Fenced):
            await first.stop_replica("a", ReplicaId("web", 0), grace=0.5)
        second.set_token(Token(2, "ctl-2"))
        await second.stop_replica("a", ReplicaId("web", 0), grace=0.5)
        assert await second.list_replicas("a") == ()
    finally:
        await first.close()
        await second.close()


async def test_a_replica_that_ends_is_reported_with_its_exit_code_or_signal(target: Target, name: str) -> None:
    """Issue 12, item 14: each replica's waiter (START) reaps it and records how it ended, which the probe reports:
    `exit 3` as code 3, a process group killed with SIGKILL or SIGTERM as that signal, and one whose leader exited
    while a child held on as the leader's code once the child ended too. A STOP leaves nothing to report."""
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 15)
        three = await fleet.start_replica("a", service("three", "sleep 0.5; exit 3"), 0, "g")
        killed = await fleet.start_replica("a", service("killed", "sleep 60"), 0, "g")
        termed = await fleet.start_replica("a", service("termed", "sleep 60"), 0, "g")
        child = await fleet.start_replica("a", service("child", "sleep 1.5 & exit 4"), 0, "g")
        stopped = await fleet.start_replica("a", service("stopped", "sleep 60"), 0, "g")
        assert all(s.running for s in (three, killed, termed, child, stopped))
        os.killpg(killed.pid or 0, signal.SIGKILL)
        os.killpg(termed.pid or 0, signal.SIGTERM)
        await fleet.stop_replica("a", ReplicaId("stopped", 0), grace=2)

        def now() -> dict[str, ReplicaStatus]:
            return {r.replica.service: r for r in fleet.observations()["a"].replicas}

        await until(
            lambda: all(not r.running and r.exit_status is not None for r in now().values()) and len(now()) == 4,
            15,
            lambda: str(now()),
        )
        assert {n: (r.pid, r.ended_by) for n, r in now().items()} == {
            "three": (three.pid, (3, None)),
            "killed": (killed.pid, (None, signal.SIGKILL.value)),
            "termed": (termed.pid, (None, signal.SIGTERM.value)),
            "child": (child.pid, (4, None)),
        }
        # the waiters are gone with their replicas, and a stopped replica left no status behind
        state = target.home / ".loadmaster" / name / "replicas"
        assert sorted(p.name for p in state.glob("*.exit")) == sorted(
            f"{scripts.hexed(n)}.0.exit" for n in ("three", "killed", "termed", "child")
        )
    finally:
        await fleet.close()
