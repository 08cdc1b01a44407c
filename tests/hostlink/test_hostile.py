"""Hostile hosts are contained (issue 10, build 7 and defects 10, 11).

A host that streams garbage, or valid frames as fast as it can, or numbers no machine has, is
marked `misbehaving` once — one observation, not a line per frame — and its stream is cut off and
retried only after a backoff. The hosts are real asyncssh servers on loopback whose probe answers
what the test says; the guard's rate and the frame checks also have pure tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncssh
import pytest

from core.errors import HostCommandFailed
from core.hostlink import probe_shell, scripts
from core.hostlink.fleet import Fleet
from core.hostlink.frames import FrameError, parse_frame
from core.hostlink.guard import BAD_IN_A_ROW, BURST, StreamGuard
from core.hostlink.keys import host_pattern
from core.model import ClusterConfig, Host, HostObservation, HostState
from tests.hostlink.helpers import until, until_state
from tests.sshd import free_port

POLL = 0.5
GOOD = (
    "F {seq}\ncpu  100 0 50 {idle} 0 0 0 0\nmem 8388608 4000000\nload 0.5 0.4 0.3 1/100 42\nup {up} 10\nncpu 2 100\nE\n"
)
GARBAGE = "F 1\nthis is not a frame\nE\n"


def good(seq: int) -> bytes:
    return GOOD.format(seq=seq, up=100 + seq * POLL, idle=1000 + 100 * seq).encode()


# -- pure: impossible numbers are refused where frames are read ----------------------------------------


@pytest.mark.parametrize(
    ("line", "old", "complaint"),
    [
        ("mem -1024 0", "mem 8388608 4000000", "MemTotal kB -1024 is impossible"),
        ("mem 99999999999999999999 0", "mem 8388608 4000000", "MemTotal kB 99999999999999999999 is impossible"),
        ("load nan", "load 0.5 0.4 0.3 1/100 42", "load average 'nan' is not a finite number"),
        ("up inf 1", "up {up} 10", "uptime 'inf' is not a finite number"),
        ("up 1e400 1", "up {up} 10", "uptime '1e400' is not a finite number"),
        ("ncpu -4 100", "ncpu 2 100", "cpu count -4 is impossible"),
        ("ncpu 10000000 100", "ncpu 2 100", "cpu count 10000000 is impossible"),
        ("cpu  -5 0 0 100", "cpu  100 0 50 {idle} 0 0 0 0", "cpu counter -5 is impossible"),
    ],
)
def test_a_frame_with_impossible_numbers_is_refused_naming_the_number(line: str, old: str, complaint: str) -> None:
    text = GOOD.replace(old, line).format(seq=1, up=100, idle=1000)
    with pytest.raises(FrameError, match=complaint.replace("(", r"\(")):
        parse_frame(text.strip("\n"))


def test_a_replica_with_impossible_numbers_is_refused() -> None:
    base = GOOD.format(seq=1, up=100, idle=1000).replace("E\n", "")
    svc, gen = scripts.hexed("web"), scripts.hexed("g1")
    for line, complaint in (
        (f"r {svc} 0 {gen} nan 1 1 - - -", "pid 'nan' is not a whole number"),
        (f"r {svc} 0 {gen} 0 1 1 - - -", "pid 0 is impossible"),
        (f"r {svc} 0 {gen} 7 nan 1 - - -", "start time 'nan' is not a finite number"),
        (f"r {svc} -3 {gen} 7 1 1 - - -", "replica index -3 is impossible"),
        (f"r {svc} 0 {gen} 7 1 1 - -9 -", "rss kB -9 is impossible"),
    ):
        with pytest.raises(FrameError, match=complaint):
            parse_frame(base + line + "\nE")


# -- pure: the guard ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_garbage_gets_one_verdict_after_a_few_frames_and_nothing_more_is_read() -> None:
    guard = StreamGuard(POLL, Clock())
    assert guard.feed(GARBAGE.encode()) == [] and guard.verdict is None  # one bad write is skipped
    assert guard.feed((GARBAGE * 1000).encode()) == []
    assert guard.verdict is not None and f"{BAD_IN_A_ROW} unusable frames in a row" in guard.verdict.reason
    assert guard.feed(good(1)) == []  # after the verdict nothing is read, not even good frames


def test_a_bad_frame_between_good_ones_is_skipped() -> None:
    clock = Clock()
    guard = StreamGuard(POLL, clock)
    for seq in range(1, 20):
        clock.now += POLL
        data = good(seq) + (GARBAGE.encode() if seq % 3 == 0 else b"")
        assert len(guard.feed(data)) == 1
    assert guard.verdict is None and guard.skipped is not None


def test_valid_frames_at_full_speed_are_a_flood() -> None:
    clock = Clock()
    guard = StreamGuard(POLL, clock)
    frames = b"".join(good(seq) for seq in range(1, 200))
    assert len(guard.feed(frames)) == BURST
    assert guard.verdict is not None and "faster than" in guard.verdict.reason


def test_frames_bunched_by_a_stall_pass_and_a_steady_pace_never_trips() -> None:
    clock = Clock()
    guard = StreamGuard(POLL, clock)
    clock.now = 20 * POLL  # the event loop stalled for 20 polls: their frames arrive together
    assert len(guard.feed(b"".join(good(seq) for seq in range(1, 21)))) == 20
    for seq in range(21, 2000):  # then hours of frames at the probe's pace, a little faster even
        clock.now += POLL * 0.6
        assert len(guard.feed(good(seq))) == 1
    assert guard.verdict is None


def test_a_flood_of_errors_is_misbehaving() -> None:
    guard = StreamGuard(POLL, Clock())
    for _ in range(40):
        guard.errors(32 * 1024)
    assert guard.verdict is not None and "errors" in guard.verdict.reason


# -- real asyncssh hosts ----------------------------------------------------------------------------------

Behaviour = Callable[[asyncssh.SSHServerProcess[bytes]], Awaitable[None]]
Start = Callable[[Behaviour], Awaitable[tuple[Fleet, "HostileServer", list[HostObservation]]]]


async def _garbage(process: asyncssh.SSHServerProcess[bytes]) -> None:
    chunk = (GARBAGE * 2000).encode()
    while True:
        process.stdout.write(chunk)
        await process.stdout.drain()


async def _flood(process: asyncssh.SSHServerProcess[bytes]) -> None:
    seq = 0
    while True:
        chunk = b"".join(good(seq + i) for i in range(1, 300))
        seq += 299
        process.stdout.write(chunk)
        await process.stdout.drain()


async def _negative_memory(process: asyncssh.SSHServerProcess[bytes]) -> None:
    seq = 0
    while True:
        seq += 1
        process.stdout.write(good(seq).replace(b"mem 8388608", b"mem -8388608"))
        await process.stdout.drain()
        await asyncio.sleep(POLL)


class HostileServer:
    """An asyncssh server whose probe runs `behaviour`; counts the probe connections it gets."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.answer: Behaviour | None = None
        self.probes: list[float] = []

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if probe_shell.PROBE_MARK in (process.command or ""):
            self.probes.append(time.monotonic())
            with contextlib.suppress(OSError, asyncssh.Error):  # the client cut us off: what the test wants
                await self.behaviour(process)
        elif self.answer is not None:  # a runtime command (list, start, stop)
            with contextlib.suppress(OSError, asyncssh.Error):
                await self.answer(process)
        process.exit(0)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Start]:
    servers: list[asyncssh.SSHAcceptor] = []
    fleets: list[Fleet] = []

    async def start(behaviour: Behaviour) -> tuple[Fleet, HostileServer, list[HostObservation]]:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key.write_private_key(str(tmp_path / "client_key"))
        port = free_port("127.0.0.1")
        (tmp_path / "known_hosts").write_text(
            f"{host_pattern('127.0.0.1', port)} {host_key.export_public_key().decode()}"
        )
        server = HostileServer(behaviour)
        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        acceptor = await asyncssh.listen(
            "127.0.0.1", port, server_host_keys=[host_key], process_factory=server.handle, encoding=None,
            authorized_client_keys=authorized,
        )  # fmt: skip
        servers.append(acceptor)
        cfg = ClusterConfig("t", (Host("evil", "127.0.0.1", port),), (), poll_interval=POLL, failure_timeout=1.5)
        seen: list[HostObservation] = []
        fleet = Fleet(
            cfg, known_hosts=str(tmp_path / "known_hosts"), client_keys=[str(tmp_path / "client_key")],
            on_change=seen.append,
        )  # fmt: skip
        fleets.append(fleet)
        await fleet.start()
        return fleet, server, seen

    yield start
    for fleet in fleets:
        await fleet.close()
    for server in servers:
        server.close()


def _misbehaving(seen: list[HostObservation]) -> int:
    """How many times the host turned misbehaving (what becomes a `host.misbehaving` event)."""
    turns, before = 0, HostState.UNKNOWN
    for o in seen:
        turns += o.state is HostState.MISBEHAVING and before is not HostState.MISBEHAVING
        before = o.state
    return turns


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [(_garbage, "unusable frames in a row"), (_flood, "faster than"), (_negative_memory, "MemTotal kB -8388608")],
    ids=["garbage", "valid-frames-at-full-speed", "negative-memtotal"],
)
async def test_a_hostile_host_is_misbehaving_once_cut_off_and_retried_with_backoff(
    hostile: Start, caplog: pytest.LogCaptureFixture, behaviour: Behaviour, why: str
) -> None:
    caplog.set_level(logging.INFO, logger="loadmaster")
    fleet, server, seen = await hostile(behaviour)
    obs = await until_state(fleet, "evil", HostState.MISBEHAVING, 5)
    assert obs.error is not None and obs.error.startswith("misbehaving: ") and why in obs.error, obs.error
    # The first wait is 4-8 s; the gap adds the time to the verdict and a reconnect, seconds on a loaded machine.
    await until(lambda: len(server.probes) >= 2, 14, "a retry after the first backoff (4-8 s)")
    assert 3.5 <= server.probes[1] - server.probes[0] <= 12, f"probe connections at {server.probes}"
    await until_state(fleet, "evil", HostState.MISBEHAVING, 5)  # cut off again; the next try waits 8-16 s
    await asyncio.sleep(2)
    assert len(server.probes) == 2, f"probe connections at {server.probes}"
    assert fleet.observations()["evil"].state is HostState.MISBEHAVING
    assert _misbehaving(seen) == 1, [(o.state.value, o.error) for o in seen]
    # A flood of valid frames may show the host up for its first ones; once cut off, it stays misbehaving
    # until its stream has looked like a probe's for a while: never up again on the next flood.
    first = next(i for i, o in enumerate(seen) if o.state is HostState.MISBEHAVING)
    assert all(o.state is HostState.MISBEHAVING for o in seen[first:]), [o.state.value for o in seen[first:]]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("loadmaster")]
    assert len(lines) <= 1, lines


async def test_a_host_that_behaves_again_is_up_again(hostile: Start) -> None:
    behaving = asyncio.Event()

    async def garbage_then_good(process: asyncssh.SSHServerProcess[bytes]) -> None:
        if not behaving.is_set():
            await _garbage(process)
        seq = 0
        while True:
            seq += 1
            process.stdout.write(good(seq))
            await process.stdout.drain()
            await asyncio.sleep(POLL)

    fleet, _server, _seen = await hostile(garbage_then_good)
    await until_state(fleet, "evil", HostState.MISBEHAVING, 5)
    behaving.set()
    obs = await until_state(fleet, "evil", HostState.UP, 12)
    assert obs.error is None and obs.capacity is not None
    await until(lambda: fleet.observations()["evil"].cpu_percent is not None, 3, "a second good frame")


async def _behaving(process: asyncssh.SSHServerProcess[bytes]) -> None:
    seq = 0
    while True:
        seq += 1
        process.stdout.write(good(seq))
        await process.stdout.drain()
        await asyncio.sleep(POLL)


async def test_a_runtime_answer_without_end_is_cut_off_not_buffered(hostile: Start) -> None:
    """A host answers `list replicas` with garbage that never ends: refused past 16 MiB, at once.
    Before: the whole answer was buffered until the 30 s timeout (gigabytes at loopback speed)."""
    fleet, server, _seen = await hostile(_behaving)
    await until_state(fleet, "evil", HostState.UP, 5)
    server.answer = _garbage
    started = time.monotonic()
    with pytest.raises(HostCommandFailed, match="answered more than 16777216 bytes"):
        await asyncio.wait_for(fleet.list_replicas("evil"), 10)
    assert time.monotonic() - started < 5
