"""A host reached over SSH: asyncssh with known_hosts checked, one probe session streaming frames, runtime
commands each on their own channel with their output bounded, and reconnects with capped backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence

import asyncssh

from core.errors import HostCommandFailed, HostKeyMismatch, HostKeyUnknown, HostUnreachable
from core.hostlink import scripts
from core.hostlink.frames import Unsupported
from core.hostlink.guard import Misbehaving, StreamGuard
from core.hostlink.link import BACKOFF_CAP, MAX_ANSWER_BYTES, Link, LinkContext, backoff, checked
from core.model import ClusterConfig, Host, HostObservation, HostState

log = logging.getLogger("loadmaster.hostlink")

MISBEHAVING_BACKOFF_CAP = 60.0  # a host whose stream was cut off: 4-8 s before the first retry, then doubling
MISBEHAVING_ATTEMPT = 4  # the backoff attempt a first misbehaving verdict starts from
PROBATION_POLLS = 2.0  # a misbehaving host is up again once its stream has looked like a probe's this long
KEEPALIVE_COUNT = 3


def describe(exc: BaseException) -> str:
    """An error as an operator reads it, without a traceback."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "authentication refused (check user, identity_file and the host's authorized_keys)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no SSH server on that port?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def usable_key(host: str, path: str) -> str:
    """`path` when it holds a private key asyncssh can use; else HostUnreachable naming the file.

    Read here so that a missing, invalid or passphrase-protected key is the host's error (an
    event), not a KeyImportError that ends the link's task and surfaces as a traceback.
    """
    try:
        asyncssh.read_private_key(path)
    except FileNotFoundError:
        raise HostUnreachable(host, f"identity_file {path} does not exist") from None
    except OSError as exc:
        raise HostUnreachable(host, f"identity_file {path} cannot be read: {exc.strerror or exc}") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        hint = f"; load it into ssh-agent (ssh-add {path}) and remove identity_file" if "assphrase" in str(exc) else ""
        raise HostUnreachable(host, f"identity_file {path} is not a usable private key: {exc}{hint}") from None
    return path


class _Client(asyncssh.SSHClient):
    def __init__(self, link: SshLink) -> None:
        self.link = link
        self.key_error: Exception | None = None
        self.lost: Exception | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        verdict = self.link.ctx.keys.check(self.link.host.name, host, addr, port, key)
        self.key_error = verdict.error
        if verdict.recorded:
            self.link.ctx.notice(
                f"{self.link.host.name}: recorded new host key {key.get_fingerprint()} "
                f"in {self.link.ctx.keys.own_file} (accept-new)"
            )
        return verdict.trusted

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


class _ProbeSession(asyncssh.SSHClientSession[bytes]):
    """The probe channel, read through a `StreamGuard`: a host past what a probe sends is cut off at once,
    reported once (the link's state), and nothing it sends after that is read."""

    def __init__(self, link: SshLink) -> None:
        self.link = link
        self.guard = StreamGuard(link.config.poll_interval)
        self.unsupported: str | None = None
        self.stderr = b""
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._probation: float | None = None  # when a host marked misbehaving first sent a good frame again
        self._warned = False

    @property
    def verdict(self) -> Misbehaving | None:
        return self.guard.verdict

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self._chan = chan

    def itself(self) -> _ProbeSession:
        """The session factory asyncssh wants, for this session."""
        return self

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.guard.verdict is not None:
            return
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.stderr = (self.stderr + data)[-500:]
            self.guard.errors(len(data))
        else:
            for item in self.guard.feed(data):
                if isinstance(item, Unsupported):
                    self.unsupported = item.reason
                elif self._past_probation():
                    self.link._frame(item)
        if self.guard.verdict is not None:
            self._cut_off()
        elif self.guard.skipped is not None and not self._warned:
            # Once per connection, and not from a host already cut off once: a stream of bad frames ends in
            # a verdict (one event), not in a line per frame.
            self._warned = True
            if self.link.observation.state is not HostState.MISBEHAVING:
                log.warning("%s: skipped a frame: %s", self.link.host.name, self.guard.skipped)

    def _past_probation(self) -> bool:
        if self.link.observation.state is not HostState.MISBEHAVING:
            return True
        now = time.monotonic()
        if self._probation is None:
            self._probation = now
        # A flood would have met the guard's rate limit within this time; so it is not one.
        return now - self._probation >= PROBATION_POLLS * self.link.config.poll_interval

    def _cut_off(self) -> None:
        if self._chan is not None:
            self._chan.close()


class SshLink(Link):
    """A host over one persistent asyncssh connection with one long-lived probe channel."""

    def __init__(
        self, host: Host, config: ClusterConfig, emit: Callable[[HostObservation], None], holder: str, ctx: LinkContext
    ):
        super().__init__(host, config, emit, holder)
        self.ctx = ctx
        self.conn: asyncssh.SSHClientConnection | None = None
        self._connected = asyncio.Event()
        self._rng = random.Random(host.name)
        self._retry = asyncio.Event()  # set: connect again now, not after the backoff (a key was just trusted)

    def retry_now(self) -> None:
        self._retry.set()

    async def close(self) -> None:
        await super().close()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def connection(self, timeout: float) -> asyncssh.SSHClientConnection:
        """The live connection, waiting up to `timeout` while a first connect is in progress;
        HostUnreachable when there is none or the host is down."""
        if self.conn is None and self.observation.state is HostState.UNKNOWN:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._connected.wait(), timeout)
        # A host gone silent may keep a half-dead connection: refuse at once rather than hang on it.
        if self.conn is None or self.observation.state is HostState.DOWN:
            raise HostUnreachable(self.host.name, self.observation.error or "not connected")
        return self.conn

    async def _main(self) -> None:
        attempt = 0
        strikes = 0  # misbehaving verdicts in a row: each doubles the wait before the next try
        while True:
            client = _Client(self)
            cap = BACKOFF_CAP
            try:
                conn = await self._connect(client)
            except (TimeoutError, OSError, asyncssh.Error, HostUnreachable) as exc:
                if isinstance(client.key_error, HostKeyMismatch):
                    self._lost(str(client.key_error), HostState.KEY_MISMATCH, client.key_error.presented)
                    attempt = 16  # a changed key does not fix itself: retry rarely
                else:
                    reason = str(client.key_error) if client.key_error else describe(exc)
                    unknown = client.key_error.presented if isinstance(client.key_error, HostKeyUnknown) else None
                    self._lost(reason.removeprefix(f"{self.host.name}: "), host_key=unknown)
            else:
                attempt = 0
                self.conn = conn
                self._connected.set()
                try:
                    outcome = await self._probe(conn)
                finally:
                    self.conn = None
                    self._connected.clear()
                    conn.close()
                if isinstance(outcome, Misbehaving):
                    self._lost(f"misbehaving: {outcome.reason}", HostState.MISBEHAVING)
                    attempt, cap = MISBEHAVING_ATTEMPT + strikes, MISBEHAVING_BACKOFF_CAP
                    strikes += 1
                elif isinstance(outcome, Unsupported):
                    self._lost(f"not supported: {outcome.reason}", HostState.UNSUPPORTED)
                    attempt = 16
                else:
                    strikes = 0
                    self._lost("connection lost" + (f": {describe(client.lost)}" if client.lost else ""))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), backoff(attempt, self._rng, cap))
            self._retry.clear()
            attempt += 1

    async def _connect(self, client: _Client) -> asyncssh.SSHClientConnection:
        host, defaults = self.host, self.config.defaults
        tunnel = await self.ctx.jump(host.jump) if host.jump else ()
        keys: Sequence[asyncssh.SSHKeyPair | str] | None = self.ctx.client_keys
        if keys is None and host.identity_file:
            keys = [usable_key(host.name, os.path.expanduser(host.identity_file))]
        keepalive = max(1.0, 2 * self.config.poll_interval)  # frames reset it: no keepalive traffic while they flow
        target = {"host": host.address, "port": host.port if host.port != 22 else (), "tunnel": tunnel}
        options = await asyncssh.SSHClientConnectionOptions.construct(
            config=(),  # the user's ~/.ssh/config
            username=host.user or (),
            client_factory=lambda: client,
            known_hosts=([], [], []),  # every key goes through validate_host_public_key
            client_keys=keys if keys is not None else (),
            connect_timeout=defaults.connect_timeout,
            login_timeout=defaults.connect_timeout,
            keepalive_interval=keepalive,
            keepalive_count_max=KEEPALIVE_COUNT,
            compression_algs=None,  # frames are small; compression only costs cpu
            **target,
        )
        sock = None
        if not options.tunnel and not options.proxy_command:
            sock = await _answering(options.host, options.port, defaults.connect_timeout)
        try:
            async with self.ctx.handshakes:
                return await asyncssh.connect(**target, sock=sock, options=options)
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def _probe(self, conn: asyncssh.SSHClientConnection) -> Misbehaving | Unsupported | None:
        """Stream frames until the channel or connection ends; why, if the host misbehaved or cannot run the probe."""
        while True:
            self._checks_changed.clear()
            command = scripts.probe_command(
                self.state_dir, self.config.poll_interval, self.holder, self.config.services
            )
            session = _ProbeSession(self)
            try:
                chan, _ = await conn.create_session(session.itself, command, encoding=None)
            except asyncssh.ChannelOpenError as exc:
                # The host refused the probe's channel: it cannot run it (retried rarely, reported once), rather
                # than a "connection lost" and a warning every half second.
                return Unsupported(f"the probe did not start: {describe(exc)}")
            except (OSError, asyncssh.Error) as exc:
                log.warning("%s: probe did not start: %s", self.host.name, describe(exc))
                return None
            closed = asyncio.ensure_future(chan.wait_closed())
            changed = asyncio.ensure_future(self._checks_changed.wait())
            try:
                await asyncio.wait((closed, changed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                ended = closed.done()
                if not ended:
                    # New checks (or closing): this probe ends at its next write, and with new checks a new
                    # one starts on the same connection, so the host never looks lost for a config change.
                    chan.close()
                    await closed
            if ended:
                break
        if session.verdict is not None:
            return session.verdict
        if session.unsupported is not None:
            return Unsupported(session.unsupported)
        if self._prev is None and chan.get_exit_status() not in (None, 0):
            detail = session.stderr.decode("utf-8", "replace").strip() or f"exit status {chan.get_exit_status()}"
            return Unsupported(f"the probe (POSIX sh and /proc) did not run: {detail}")
        return None

    async def run(self, command: str, timeout: float, what: str) -> str:
        conn = await self.connection(self.config.defaults.connect_timeout)
        try:
            async with asyncio.timeout(timeout):
                process = await conn.create_process(command, encoding=None)
                # Both streams at once (they share the channel's window); either one too long ends both.
                reads = [
                    asyncio.ensure_future(_bounded(process.stdout)),
                    asyncio.ensure_future(_bounded(process.stderr)),
                ]
                try:
                    out, err = await asyncio.gather(*reads)
                    await process.wait_closed()
                finally:
                    for read in reads:
                        read.cancel()
                    process.close()
        except TimeoutError:
            raise HostCommandFailed(self.host.name, what, f"no answer within {timeout:g} s") from None
        except _TooLong:
            raise HostCommandFailed(self.host.name, what, f"answered more than {MAX_ANSWER_BYTES} bytes") from None
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachable(self.host.name, describe(exc)) from None
        status = process.exit_status
        return checked(self.host.name, what, status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    async def stream(self, command: str, what: str) -> AsyncIterator[bytes]:
        conn = await self.connection(self.config.defaults.connect_timeout)
        try:
            async with conn.create_process(command, encoding=None) as proc:
                while data := await proc.stdout.read(65536):
                    yield data
                await proc.wait()
                err = await _bounded(proc.stderr)
        except _TooLong:
            raise HostCommandFailed(
                self.host.name, what, f"wrote more than {MAX_ANSWER_BYTES} bytes of errors"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachable(self.host.name, describe(exc)) from None
        checked(self.host.name, what, proc.exit_status, "", err.decode("utf-8", "replace"))


class _TooLong(Exception):
    pass


async def _bounded(stream: asyncssh.SSHReader[bytes]) -> bytes:
    """All of a command's output stream, or _TooLong past MAX_ANSWER_BYTES: a hostile host that answers
    without end must not fill the controller's memory for the `timeout` its command has."""
    data = bytearray()
    while chunk := await stream.read(1 << 16):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            raise _TooLong
    return bytes(data)


async def _answering(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection whose server has begun to talk (its SSH banner is waiting to be read).

    Waiting for that outside the handshake limit keeps hung and partitioned hosts, which
    never answer, from holding the handshake slots that reachable hosts need."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, target = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, target)
            readable = loop.create_future()

            def banner_waiting() -> None:
                if not readable.done():
                    readable.set_result(None)

            loop.add_reader(sock.fileno(), banner_waiting)
            try:
                await readable
            finally:
                loop.remove_reader(sock.fileno())
    except BaseException:
        sock.close()
        raise
    return sock
