"""One host's link: its connection, its stream of frames, and what its silence means.

A link turns frames into observations and silence into states:
UP while frames arrive, SUSPECT after missed polls, DOWN after `failure_timeout`
of silence or as soon as the connection is lost; it then reconnects with capped
exponential backoff and jitter, and is UP again with the next frame.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncssh

from core.errors import Fenced, HostCommandFailed
from core.hostlink import scripts
from core.hostlink.frames import Frame, observe
from core.hostlink.keys import HostKeys
from core.model import ClusterConfig, Host, HostObservation, HostState, MachineIdentity

log = logging.getLogger("loadmaster.hostlink")

BACKOFF_BASE = 0.5  # seconds before the first reconnect
BACKOFF_CAP = 10.0  # never wait longer than this between attempts: a restored host is seen soon

MAX_ANSWER_BYTES = 16 << 20  # a runtime command's output: a listing is ~100 bytes per replica
SUSPECT_AFTER_POLLS = 2.0


def backoff(attempt: int, rng: random.Random, cap: float = BACKOFF_CAP) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): doubling, capped, with jitter so a
    fleet that lost its network does not reconnect in lock-step."""
    return min(cap, BACKOFF_BASE * 2 ** min(attempt, 16)) * (0.5 + rng.random() / 2)


def silence_state(silent: float, poll_interval: float, failure_timeout: float) -> HostState:
    """The state of a connected host whose last frame is `silent` seconds old."""
    if silent >= failure_timeout:
        return HostState.DOWN
    if silent > SUSPECT_AFTER_POLLS * poll_interval:
        return HostState.SUSPECT
    return HostState.UP


@dataclass(frozen=True, slots=True)
class LinkContext:
    """What every link of a fleet shares."""

    config: ClusterConfig
    keys: HostKeys
    client_keys: Sequence[asyncssh.SSHKeyPair] | None  # None: the user's keys, agent and ssh config
    handshakes: asyncio.Semaphore
    jump: Callable[[str], Awaitable[asyncssh.SSHClientConnection]]  # host name → its live connection
    notice: Callable[[str], None]


class Link(abc.ABC):
    """What the fleet needs of a host, whether reached over SSH or locally."""

    def __init__(self, host: Host, config: ClusterConfig, emit: Callable[[HostObservation], None], holder: str) -> None:
        self.host = host
        self.config = config
        self.holder = holder  # the controller's id: its probe renews the host's fence while the fence names it
        self.state_dir = scripts.state_dir(config.state_dir, config.name)
        self.observation = HostObservation(host=host.name, state=HostState.UNKNOWN, at=time.time())
        self.lock = asyncio.Lock()  # one start/stop at a time per host: port choice and records
        self._emit_to = emit
        self._prev: Frame | None = None
        self._last_frame: float | None = None  # monotonic
        self._task: asyncio.Task[None] | None = None
        self._warnings: tuple[str, ...] = ()  # what the probe said it cannot do, in its first frame
        self._identity: MachineIdentity | None = None  # which machine and state directory, in its first frame
        self._checks_changed = asyncio.Event()

    def reconfigure(self, host: Host, config: ClusterConfig) -> None:
        """Follow a config change that keeps the connection; new health checks restart the probe."""
        before = scripts.check_table(self.config.services)
        self.host, self.config = host, config
        if scripts.check_table(config.services) != before:
            self._checks_changed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._main(), name=f"hostlink {self.host.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @abc.abstractmethod
    async def _main(self) -> None:
        """Produce frames until cancelled."""

    @abc.abstractmethod
    async def run(self, command: str, timeout: float, what: str) -> str:
        """Run a runtime command on the host; its stdout, or HostUnreachable / HostCommandFailed."""

    @abc.abstractmethod
    def stream(self, command: str, what: str) -> AsyncIterator[bytes]:
        """Run a command on the host and yield its stdout as it comes; closing the iterator closes the
        command's stdin (the command's signal to end). Raises HostCommandFailed if it exits non-zero."""

    # -- observations --------------------------------------------------------------

    def _emit(self, observation: HostObservation) -> None:
        self.observation = observation
        self._emit_to(observation)

    def _frame(self, frame: Frame) -> None:
        if frame.seq == 1:
            self._warnings, self._identity = frame.warnings, frame.identity
        observation = observe(self.host.name, frame, self._prev, time.time())
        if self._warnings or self._identity:
            observation = dataclasses.replace(observation, warnings=self._warnings, identity=self._identity)
        self._emit(observation)
        self._prev = frame
        self._last_frame = time.monotonic()

    def _lost(self, error: str, state: HostState = HostState.DOWN, host_key: str | None = None) -> None:
        """`host_key`: the fingerprint of the refused key the host presented, for an operator to trust or not."""
        self._prev = None
        self._last_frame = None
        before = self.observation
        if before.state is not state or before.error != error or before.host_key != host_key:
            self._emit(dataclasses.replace(before, state=state, at=time.time(), error=error, host_key=host_key))

    def tick(self, now: float) -> None:
        """Called every fraction of a poll: turns the age of the last frame into a state."""
        if self._last_frame is None:
            return
        silent = now - self._last_frame
        state = silence_state(silent, self.config.poll_interval, self.config.failure_timeout)
        if state is not self.observation.state:
            error = None if state is HostState.UP else f"no frame for {silent:.1f} s"
            self._emit(dataclasses.replace(self.observation, state=state, at=time.time(), error=error))


async def stream_local(command: str, host: str, what: str) -> AsyncIterator[bytes]:
    """`Link.stream` on this machine."""
    proc = await asyncio.create_subprocess_shell(
        command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    try:
        while data := await proc.stdout.read(65536):
            yield data
        err = await proc.stderr.read()
        checked(host, what, await proc.wait(), "", err.decode("utf-8", "replace"))
    finally:
        proc.stdin.close()
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def checked(host: str, what: str, status: int | None, stdout: str, stderr: str) -> str:
    fenced = scripts.parse_fenced(stdout) if status == scripts.FENCED_STATUS else None
    if fenced is not None:
        raise Fenced(host, what, fenced.epoch, fenced.holder)
    if status != 0:
        raise HostCommandFailed(host, what, stderr.strip()[-500:] or f"exit status {status}")
    return stdout


async def run_local(command: str, timeout: float, host: str, what: str) -> str:
    """A runtime command on this machine, through the same shell text a remote host gets."""
    proc = await asyncio.create_subprocess_shell(
        command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise HostCommandFailed(host, what, f"no answer within {timeout:g} s") from None
    return checked(host, what, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
