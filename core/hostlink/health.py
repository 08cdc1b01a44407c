"""Health checks for hosts loadmaster reaches without SSH (the local host, demo hosts).

The same rules as the shell probe (`probe_shell.PROBE`), in this process: each live replica whose service
has a check is checked every `interval` (at most once per frame); a check runs in the background while
frames keep flowing, and its result moves the replica's counters when it is done:
    pass → passes + 1, failures 0; `healthy_after` passes in a row → healthy
    fail → passes 0; once `grace` has passed since the replica started, failures + 1;
           `unhealthy_after` failures in a row → unhealthy
A new process for the replica (restarted, or a new copy) starts over as `starting`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.hostlink.frames import CheckSample
from core.hostlink.records import Record
from core.model import CheckKind, Health, HealthCheck

_PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def listening(port: int, tables: tuple[Path, ...] = _PROC_TCP) -> bool:
    """A socket listens on `port` (state 0A in /proc/net/tcp or tcp6), as the shell's `lis` reads it."""
    wanted = f"{port:04X}"
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and fields[1].rpartition(":")[2] == wanted:
                return True
    return False


async def http_status(port: int, path: str) -> int | None:
    """The status of `GET path` on 127.0.0.1:port, or None when nothing answers with a status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() and len(parts[1]) == 3:
        return int(parts[1])
    return None


async def run_check(check: HealthCheck, port: int | None) -> tuple[bool, str]:
    """(passed, detail) of one check of a replica listening on `port`; never raises."""
    target = check.port or port
    try:
        if check.kind is CheckKind.EXEC:
            return await asyncio.wait_for(_exec(check.command.replace("{port}", str(port or ""))), check.timeout)
        if target is None:
            return False, "no-port"
        if check.kind is CheckKind.TCP:
            return (True, "ok") if listening(target) else (False, "not-listening")
        status = await asyncio.wait_for(http_status(target, check.path), check.timeout)
    except TimeoutError:
        return False, "timeout"
    except OSError:
        return False, "no-answer"
    if status is None:
        return False, "no-answer"
    good = status == check.status if check.status is not None else 200 <= status < 400
    return (True, "ok") if good else (False, f"http-{status // 100}xx")


async def _exec(command: str) -> tuple[bool, str]:
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        code = await proc.wait()
    except asyncio.CancelledError:
        # timed out: the command and whatever it started go, as the shell probe kills its job
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
        raise
    return (True, "ok") if code == 0 else (False, f"exit-{code}")


@dataclass
class _State:
    ident: tuple[int, int]  # (pid, start time): a new process starts over
    health: Health = Health.STARTING
    passes: int = 0
    failures: int = 0
    detail: str = "-"
    due: float = 0.0  # monotonic
    task: asyncio.Task[tuple[bool, str]] | None = field(default=None, repr=False)

    def result(self, passed: bool, detail: str, check: HealthCheck, age: float) -> None:
        self.detail = detail
        if passed:
            self.passes, self.failures = self.passes + 1, 0
            if self.passes >= check.healthy_after:
                self.health = Health.HEALTHY
        else:
            self.passes = 0
            if age >= check.grace:
                self.failures += 1
                if self.failures >= check.unhealthy_after:
                    self.health = Health.UNHEALTHY


class CheckRunner:
    """Runs the checks of one host's live replicas; call `step` once per frame, on the event loop."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, int], _State] = {}

    def step(self, checks: Mapping[str, HealthCheck], live: list[Record]) -> tuple[CheckSample, ...]:
        now, wall = time.monotonic(), time.time()
        out = []
        seen = set()
        for record in live:
            check = checks.get(record.replica.service)
            if check is None:
                continue
            key = (record.replica.service, record.replica.index)
            seen.add(key)
            state = self._states.get(key)
            if state is None or state.ident != (record.pid, record.starttime):
                if state is not None and state.task is not None:
                    state.task.cancel()
                state = self._states[key] = _State((record.pid, record.starttime))
            age = wall - record.started_at
            if state.task is not None and state.task.done():
                passed, detail = state.task.result() if not state.task.cancelled() else (False, "cancelled")
                state.task = None
                state.result(passed, detail, check, age)
            if state.task is None and now >= state.due:
                state.due = now + check.interval
                if check.kind is CheckKind.TCP:
                    target = check.port or record.port
                    ok = target is not None and listening(target)
                    state.result(ok, "ok" if ok else "not-listening", check, age)
                else:
                    state.task = asyncio.ensure_future(run_check(check, record.port))
            out.append(
                CheckSample(record.replica, record.pid, state.health, state.passes, state.failures, state.detail)
            )
        for key in self._states.keys() - seen:
            gone = self._states.pop(key)
            if gone.task is not None:
                gone.task.cancel()
        return tuple(out)

    def close(self) -> None:
        for state in self._states.values():
            if state.task is not None:
                state.task.cancel()
        self._states.clear()
