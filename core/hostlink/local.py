"""The local host (`address = "local"`): the same frames from psutil, no SSH."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import psutil

from core.hostlink import limits, records
from core.hostlink.frames import Frame
from core.hostlink.health import CheckRunner
from core.hostlink.link import Link, run_local, stream_local
from core.model import HealthCheck


def local_frame(
    seq: int,
    state_dir: Path,
    holder: str,
    checks: Mapping[str, HealthCheck] | None = None,
    runner: CheckRunner | None = None,
) -> Frame:
    """This machine as a probe frame: the counters the remote probe reads from /proc, and health checks;
    renews the fence for `holder` as the shell probe does."""
    found = records.read_records(state_dir)
    sessions = records.Sessions()
    samples = tuple(records.sample(r, sessions) for r in found)
    live = [r for r, s in zip(found, samples, strict=True) if s.alive]
    times = psutil.cpu_times()
    fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    memory = psutil.virtual_memory()
    return Frame(
        seq=seq,
        cpu=tuple(round(getattr(times, f, 0.0) * records.HZ) for f in fields),
        mem_total_kb=memory.total // 1024,
        mem_available_kb=memory.available // 1024,
        load1=os.getloadavg()[0],
        uptime=max(0.0, time.time() - psutil.boot_time()),
        ncpu=psutil.cpu_count() or 1,
        hz=records.HZ,
        replicas=samples,
        fence=records.fence(state_dir, holder),
        checks=runner.step(checks, live) if checks and runner is not None else (),
        enforcement=limits.detect(),
        exits=records.exits(state_dir, found, samples),
    )


class LocalLink(Link):
    async def _main(self) -> None:
        directory = Path(os.path.expanduser(self.state_dir))
        seq = 0
        runner = CheckRunner()
        try:
            while True:
                seq += 1
                checks = {s.name: s.check for s in self.config.services if s.check is not None}
                self._frame(local_frame(seq, directory, self.holder, checks, runner))
                await asyncio.sleep(self.config.poll_interval)
        finally:
            runner.close()

    async def run(self, command: str, timeout: float, what: str) -> str:
        return await run_local(command, timeout, self.host.name, what)

    def stream(self, command: str, what: str) -> AsyncIterator[bytes]:
        return stream_local(command, self.host.name, what)
