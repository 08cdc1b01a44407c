"""The local host (`address = "local"`): the same frames from psutil, no SSH."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil

from core.hostlink import records
from core.hostlink.frames import Frame
from core.hostlink.link import Link, run_local


def local_frame(seq: int, state_dir: Path, holder: str) -> Frame:
    """This machine as a probe frame: the counters the remote probe reads from /proc; renews the fence
    for `holder` as the shell probe does."""
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
        replicas=records.samples(state_dir),
        fence=records.fence(state_dir, holder),
    )


class LocalLink(Link):
    async def _main(self) -> None:
        directory = Path(os.path.expanduser(self.state_dir))
        seq = 0
        while True:
            seq += 1
            self._frame(local_frame(seq, directory, self.holder))
            await asyncio.sleep(self.config.poll_interval)

    async def run(self, command: str, timeout: float, what: str) -> str:
        return await run_local(command, timeout, self.host.name, what)
