"""The host-side runtime scripts, run through this machine's shell exactly as a local host runs them."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from core.errors import Fenced, HostCommandFailed
from core.hostlink import scripts
from core.hostlink.frames import ReplicaSample
from core.hostlink.link import run_local
from core.model import NO_TOKEN, Claim, ClaimOutcome, ReplicaId, Token
from tests.hostlink.helpers import alive, until
from tests.sshd import missing, require_tool

NOBODY = 65534
WEB = ReplicaId("web", 0)


async def run(command: str) -> str:
    return await run_local(command, 10, "me", "a runtime script")


async def listed(state: Path) -> tuple[ReplicaSample, ...]:
    return scripts.parse_listing(await run(scripts.list_command(str(state)))).samples


@contextmanager
def started_by_test() -> Iterator[list[int]]:
    """The pids put here are killed (with their process groups) when the test ends, whatever happened."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


async def test_a_replica_that_outlives_sigkill_keeps_its_record_and_the_stop_fails() -> None:
    # The replica belongs to root and STOP runs as nobody: every kill fails, as for a process stuck in
    # uninterruptible sleep, and the process is still there after SIGKILL. Its record must stay (the
    # replica is still seen and counted) and the stop must fail, not report "stopped".
    if os.geteuid() != 0:
        missing("needs root to run STOP as another user")
    setpriv = require_tool("setpriv", "util-linux")
    with tempfile.TemporaryDirectory() as tmp, started_by_test() as pids:  # not tmp_path: its 0700 parents bar nobody
        os.chmod(tmp, 0o755)
        state = Path(tmp) / "state"
        out = await run(scripts.start_command(str(state), NO_TOKEN, WEB, "g1", "exec sleep 60", None))
        (sample,) = scripts.parse_listing(out).samples
        pids.append(sample.pid)
        shutil.chown(state / "replicas", NOBODY, NOBODY)  # nobody may remove the record, only not signal the process
        os.chmod(state, 0o755)  # and may take the lock the runtime made private (0600 in 0700)
        os.chmod(state / "fence.lock", 0o644)
        as_nobody = f"{setpriv} --reuid={NOBODY} --regid={NOBODY} --clear-groups "
        # a record nobody cannot read (root's, 0600) is not taken for a replica that is gone: STOP keeps it,
        # START runs no second copy (the logs are nobody's too, so that only the record stands in its way)
        with pytest.raises(HostCommandFailed, match="cannot be read by nobody; record kept"):
            await run(as_nobody + scripts.stop_command(str(state), NO_TOKEN, WEB, 0.1))
        for path in (state / "logs", *(state / "logs").iterdir()):
            shutil.chown(path, NOBODY, NOBODY)
        with pytest.raises(HostCommandFailed, match="cannot be read by nobody; nothing started"):
            await run(as_nobody + scripts.start_command(str(state), NO_TOKEN, WEB, "g2", "exec sleep 61", None))
        second = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "61"]]
        pids.extend(p.pid for p in second)
        assert not second
        os.chmod(state / "replicas" / f"{scripts.hexed('web')}.0.rec", 0o644)

        with pytest.raises(HostCommandFailed, match=f"pid {sample.pid} is still running after SIGKILL"):
            await run(as_nobody + scripts.stop_command(str(state), NO_TOKEN, WEB, 0.1))

        assert alive(sample.pid)
        assert (state / "replicas" / f"{scripts.hexed('web')}.0.rec").is_file()
        assert [(s.replica, s.pid, s.alive) for s in await listed(state)] == [(WEB, sample.pid, True)]


async def test_stop_removes_the_record_once_the_process_is_gone() -> None:
    with tempfile.TemporaryDirectory() as tmp, started_by_test() as pids:
        state = Path(tmp)
        (sample,) = scripts.parse_listing(
            await run(scripts.start_command(tmp, NO_TOKEN, WEB, "g1", "exec sleep 60", None))
        ).samples
        pids.append(sample.pid)
        assert await run(scripts.stop_command(tmp, NO_TOKEN, WEB, 1.0)) == "stopped\n"
        assert not alive(sample.pid)
        assert await listed(state) == ()
        assert await run(scripts.stop_command(tmp, NO_TOKEN, WEB, 1.0)) == "absent\n"


async def test_stat_is_read_right_for_a_process_named_with_parens_and_spaces(tmp_path: Path) -> None:
    # /proc/PID/stat's comm field is "(a) b (c)" for this binary: fields are found only by cutting after the
    # last ") ", and then the start time (field 22) must still match the record for the replica to count.
    binary = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    state = tmp_path / "state"
    with started_by_test() as pids:
        command = f"exec {shlex.quote(str(binary))} 60"
        out = await run(scripts.start_command(str(state), NO_TOKEN, WEB, "g1", command, None))
        (sample,) = scripts.parse_listing(out).samples
        pids.append(sample.pid)
        await until(lambda: psutil.Process(sample.pid).name() == binary.name, 5, "the replica runs the renamed binary")
        (seen,) = await listed(state)
        assert (seen.pid, seen.alive) == (sample.pid, True)
        assert seen.rss_kb is not None and seen.rss_kb > 0
        assert seen.ticks is not None and seen.ticks >= 0


def copies(marker: str) -> list[psutil.Process]:
    """The live processes running `sleep MARKER` (a duration no other process uses)."""
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["cmdline"] == ["sleep", marker] and proc.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(proc)
    return out


async def test_a_record_that_cannot_be_written_leaves_nothing_running(tmp_path: Path) -> None:
    # Issue 10, defect 2: START spawned the replica and only then wrote its record; with the record
    # unwritable the start failed but the process ran on, untracked. (A directory in the way of the
    # record's temporary file fails the write even for root, as a read-only state directory does.)
    marker = "61.0002"
    (tmp_path / "replicas" / f"{scripts.hexed('web')}.0.rec.tmp").mkdir(parents=True)
    try:
        with pytest.raises(HostCommandFailed):
            await run(scripts.start_command(str(tmp_path), NO_TOKEN, WEB, "g1", f"exec sleep {marker}", None))
        await asyncio.sleep(0.3)
        assert copies(marker) == [], "a replica runs that no record names"
        assert await listed(tmp_path) == ()
    finally:
        for proc in copies(marker):
            proc.kill()


async def test_killing_the_recorded_pid_leaves_the_replica_running_and_counted_once(tmp_path: Path) -> None:
    # Issue 10, defect 12: the record holds the `sh -c` wrapper; kill -9 of it left its child running in the
    # session, the record read as dead, and the next START ran a second copy beside the first.
    marker = "61.0012"
    command = f"sleep {marker}; echo done"  # not `exec`: the wrapper shell stays, as for any compound command
    with started_by_test() as pids:
        (sample,) = scripts.parse_listing(
            await run(scripts.start_command(str(tmp_path), NO_TOKEN, WEB, "g1", command, None))
        ).samples
        pids.append(sample.pid)
        await until(lambda: len(copies(marker)) == 1, 5, "the replica's command runs")
        os.kill(sample.pid, signal.SIGKILL)
        await until(lambda: not alive(sample.pid), 5, "the wrapper is gone")

        (seen,) = await listed(tmp_path)
        assert seen.alive and seen.pid == sample.pid, "the replica runs on in its session"
        again = scripts.parse_listing(
            await run(scripts.start_command(str(tmp_path), NO_TOKEN, WEB, "g1", command, None))
        ).samples
        assert [s.alive for s in again] == [True]
        assert len(copies(marker)) == 1, "a second copy was started"

        assert await run(scripts.stop_command(str(tmp_path), NO_TOKEN, WEB, 1.0)) == "stopped\n"
        assert copies(marker) == [] and await listed(tmp_path) == ()


async def test_a_host_refuses_lower_tokens_and_follows_higher_ones(tmp_path: Path) -> None:
    state = str(tmp_path)
    a1, a2, b1, b2, b3 = Token(1, "a"), Token(2, "a"), Token(1, "b"), Token(2, "b"), Token(3, "b")
    with started_by_test() as pids:
        (sample,) = scripts.parse_listing(
            await run(scripts.start_command(state, a2, WEB, "g1", "exec sleep 60", None))
        ).samples
        pids.append(sample.pid)
        assert sample.epoch == 2
        for lower in (NO_TOKEN, a1, b1, b2):  # lower, or the same epoch from another holder
            with pytest.raises(Fenced) as refused:
                await run(scripts.stop_command(state, lower, WEB, 0.1))
            assert (refused.value.epoch, refused.value.holder) == (2, "a")
        assert alive(sample.pid)
        assert (tmp_path / "fence").read_text() == "2 a\n"

        assert await run(scripts.stop_command(state, b3, WEB, 1.0)) == "stopped\n"  # a higher token takes the host
        assert (tmp_path / "fence").read_text() == "3 b\n"
        with pytest.raises(Fenced):
            await run(scripts.start_command(state, a2, WEB, "g1", "exec sleep 60", None))
        assert await listed(tmp_path) == ()


async def claim(state: Path, token: Token, live_for: float, force: bool = False) -> Claim:
    return scripts.parse_claim(await run(scripts.claim_command(str(state), token, live_for, force)))


async def test_a_claim_is_held_off_by_a_live_holder_and_taken_from_a_silent_one(tmp_path: Path) -> None:
    a1, b2, a3 = Token(1, "a"), Token(2, "b"), Token(3, "a")
    assert await claim(tmp_path, a1, 5) == Claim(ClaimOutcome.TAKEN, NO_TOKEN)
    held = await claim(tmp_path, b2, 5)
    assert (held.outcome, held.before) == (ClaimOutcome.HELD, a1)
    assert held.age is not None and 0 <= held.age < 1
    assert (await claim(tmp_path, b2, 0)).outcome is ClaimOutcome.TAKEN  # a's renewal is older than 0 s
    assert await claim(tmp_path, a1, 0) == Claim(ClaimOutcome.FENCED, b2)  # not above b's token
    assert await claim(tmp_path, a3, 5, force=True) == Claim(ClaimOutcome.TAKEN, b2)
    assert (tmp_path / "fence").read_text() == "3 a\n"
