"""The host-side runtime scripts, run through this machine's shell exactly as a local host runs them."""

from __future__ import annotations

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

from core.errors import HostCommandFailed
from core.hostlink import scripts
from core.hostlink.frames import ReplicaSample
from core.hostlink.link import run_local
from core.model import ReplicaId
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
        out = await run(scripts.start_command(str(state), WEB, "g1", "exec sleep 60", None))
        (sample,) = scripts.parse_listing(out).samples
        pids.append(sample.pid)
        shutil.chown(state / "replicas", NOBODY, NOBODY)  # nobody may remove the record, only not signal the process
        as_nobody = f"{setpriv} --reuid={NOBODY} --regid={NOBODY} --clear-groups "

        with pytest.raises(HostCommandFailed, match=f"pid {sample.pid} is still running after SIGKILL"):
            await run(as_nobody + scripts.stop_command(str(state), WEB, 0.1))

        assert alive(sample.pid)
        assert (state / "replicas" / f"{scripts.hexed('web')}.0.rec").is_file()
        assert [(s.replica, s.pid, s.alive) for s in await listed(state)] == [(WEB, sample.pid, True)]


async def test_stop_removes_the_record_once_the_process_is_gone() -> None:
    with tempfile.TemporaryDirectory() as tmp, started_by_test() as pids:
        state = Path(tmp)
        (sample,) = scripts.parse_listing(
            await run(scripts.start_command(tmp, WEB, "g1", "exec sleep 60", None))
        ).samples
        pids.append(sample.pid)
        assert await run(scripts.stop_command(tmp, WEB, 1.0)) == "stopped\n"
        assert not alive(sample.pid)
        assert await listed(state) == ()
        assert await run(scripts.stop_command(tmp, WEB, 1.0)) == "absent\n"


async def test_stat_is_read_right_for_a_process_named_with_parens_and_spaces(tmp_path: Path) -> None:
    # /proc/PID/stat's comm field is "(a) b (c)" for this binary: fields are found only by cutting after the
    # last ") ", and then the start time (field 22) must still match the record for the replica to count.
    binary = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    state = tmp_path / "state"
    with started_by_test() as pids:
        out = await run(scripts.start_command(str(state), WEB, "g1", f"exec {shlex.quote(str(binary))} 60", None))
        (sample,) = scripts.parse_listing(out).samples
        pids.append(sample.pid)
        await until(lambda: psutil.Process(sample.pid).name() == binary.name, 5, "the replica runs the renamed binary")
        (seen,) = await listed(state)
        assert (seen.pid, seen.alive) == (sample.pid, True)
        assert seen.rss_kb is not None and seen.rss_kb > 0
        assert seen.ticks is not None and seen.ticks >= 0
