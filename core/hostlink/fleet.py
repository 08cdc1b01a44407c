"""The fleet as loadmaster sees and touches it: one link per host, observations, replica runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import asyncssh

from core.errors import ConfigError, ConfigProblem, HostCommandFailed, HostUnreachable, LoadmasterError
from core.hostlink import scripts
from core.hostlink.frames import FrameError, ReplicaSample
from core.hostlink.keys import HostKeys, host_pattern
from core.hostlink.link import MAX_ANSWER_BYTES, Link, LinkContext
from core.hostlink.local import LocalLink
from core.hostlink.ssh import SshLink
from core.identity import controller_id
from core.model import (
    NO_TOKEN,
    Claim,
    ClusterConfig,
    Host,
    HostObservation,
    HostState,
    ReplicaId,
    ReplicaStatus,
    Service,
    Token,
)

log = logging.getLogger("loadmaster.hostlink")

PORT_RANGE = (20000, 29999)  # `{port}` in a command gets a free port from here
PORT_HOLD = 30.0  # seconds a port just handed out stays reserved while its replica starts listening
RUNTIME_TIMEOUT = 30.0  # seconds for list/start on a host


def status_of(host: str, sample: ReplicaSample, hz: int) -> ReplicaStatus:
    return ReplicaStatus(
        replica=sample.replica,
        host=host,
        pid=sample.pid,
        running=sample.alive,
        generation=sample.generation,
        cpu_seconds=sample.ticks / hz if sample.ticks is not None else None,
        rss=sample.rss_kb * 1024 if sample.rss_kb is not None else None,
        started_at=sample.started_at,
        epoch=sample.epoch,
    )


def _connection_key(host: Host, config: ClusterConfig) -> tuple[object, ...]:
    """What a link's connection depends on; anything else can change under a live link."""
    return (
        host.address, host.port, host.user, host.identity_file, host.jump,
        config.poll_interval, config.failure_timeout, config.state_dir, config.name, config.defaults,
    )  # fmt: skip


class Fleet:
    """Every host of a config, observed continuously, with the replica runtime on each.

    A host is UNKNOWN until first contact, UP while frames arrive, SUSPECT after missed
    polls, DOWN after `failure_timeout` of silence or at once when its connection is lost
    or refused (it is then reconnected with capped, jittered backoff), KEY_MISMATCH when
    its host key changed, UNSUPPORTED without Linux /proc. `on_change` gets every new
    observation, on the event loop.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        known_hosts: str | None = None,
        client_keys: Sequence[str] | None = None,
        on_change: Callable[[HostObservation], None] | None = None,
        max_handshakes: int = 10,
        own_known_hosts: str | None = None,
        controller: str | None = None,
    ) -> None:
        """`known_hosts` overrides the config's file; `client_keys` replaces the user's keys and agent;
        `own_known_hosts` is where accept-new records keys (default ~/.loadmaster/known_hosts);
        `controller` is this controller's id on the hosts' fences (default: `controller_id()`)."""
        if max_handshakes < 1:
            raise ValueError(f"max_handshakes must be at least 1, got {max_handshakes}")
        self._config = config
        self._known_hosts = known_hosts
        self._own_known_hosts = own_known_hosts
        self._client_key_paths = tuple(client_keys) if client_keys is not None else None
        self._on_change = on_change
        self._max_handshakes = max_handshakes
        self._ctx: LinkContext | None = None
        self._links: dict[str, Link] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # links of removed hosts, closing
        self._held_ports: dict[tuple[str, int], float] = {}  # (address, port) → when handed out
        self.notices: list[str] = []  # things an operator should know (e.g. keys recorded by accept-new)
        # Also logged as warnings (the daemon's and console's only way to say them); a one-shot command that
        # prints `notices` itself turns this off, so that a note is said once, not on stdout and stderr both.
        self.log_notices = True
        self.controller = controller or controller_id()
        # The token every start and stop carries; NO_TOKEN acts only on hosts no controller has claimed.
        self.token = NO_TOKEN

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting to every host in the background; returns at once."""
        if self._ctx is not None:
            return
        self._ctx = LinkContext(
            config=self._config,
            keys=HostKeys(
                self._known_hosts or self._config.defaults.known_hosts,
                self._config.defaults.host_key_policy,
                self._own_known_hosts or self._named_known_hosts(),
            ),
            client_keys=self._load_client_keys(),
            handshakes=asyncio.Semaphore(self._max_handshakes),
            jump=self._jump,
            notice=self._notice,
        )
        for host in self._config.hosts:
            self._add(host)
        self._sweeper = asyncio.create_task(self._sweep(), name="hostlink sweeper")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), *self._closing)
        self._ctx = None

    def update_config(self, config: ClusterConfig) -> None:
        """Follow a new config: connect to added hosts, close removed ones, reconnect changed ones."""
        old, self._config = self._config, config
        if self._ctx is None:
            return
        wanted = {h.name: h for h in config.hosts}
        for name, link in list(self._links.items()):
            host = wanted.get(name)
            if host is None or _connection_key(host, config) != _connection_key(link.host, old):
                task = asyncio.create_task(link.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                del self._links[name]
            else:
                link.reconfigure(host, config)
        for host in config.hosts:
            if host.name not in self._links:
                self._add(host)

    # -- observing ----------------------------------------------------------------------

    def observations(self) -> Mapping[str, HostObservation]:
        """The latest observation of every host in the config, in config order."""
        return {
            h.name: self._links[h.name].observation
            if h.name in self._links
            else HostObservation(host=h.name, state=HostState.UNKNOWN, at=time.time())
            for h in self._config.hosts
        }

    # -- the replica runtime ------------------------------------------------------------

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        """Start `service/index` on `host` unless its record there is alive; idempotent."""
        link = self._link(host)
        replica = ReplicaId(service.name, index)
        what = f"start {replica}"
        async with link.lock:
            command, port = service.command, None
            if scripts.uses_port(service):
                listing = await self._listing(link)
                for sample in listing.samples:
                    if sample.replica == replica and sample.alive:
                        return status_of(host, sample, listing.hz)
                port = self._choose_port(link.host, listing)
                command = scripts.substitute_port(command, port)
            env = scripts.fill_env(service.env, port, index, host)
            out = await link.run(
                scripts.start_command(
                    link.state_dir, self.token, replica, generation, command, port,
                    env=env, workdir=service.workdir, user=service.user,
                    log_max_size=service.log_max_size, log_keep=service.log_keep,
                    limit=service.resources if self._config.enforce_limits else None,
                ),
                RUNTIME_TIMEOUT,
                what,
            )  # fmt: skip
        listing = self._parse(host, what, out)
        for sample in listing.samples:
            if sample.replica == replica:
                return status_of(host, sample, listing.hz)
        raise HostCommandFailed(host, what, f"the host did not report {replica} after starting it")

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        """The service's stop_signal (SIGTERM) to the replica's process group, SIGKILL after its stop_timeout,
        else `grace` s; idempotent. A `grace` of 0 (clean-up of what crashed or left the file) kills at once.
        The record goes with the process: one that outlives SIGKILL keeps it and raises `HostCommandFailed`."""
        link = self._link(host)
        signal = "TERM"
        with contextlib.suppress(KeyError):
            service = self._config.service(replica.service)
            signal = service.stop_signal
            if grace > 0 and service.stop_timeout is not None:
                grace = service.stop_timeout
        async with link.lock:
            await link.run(
                scripts.stop_command(link.state_dir, self.token, replica, grace, signal),
                grace + RUNTIME_TIMEOUT,
                f"stop {replica}",
            )

    def set_token(self, token: Token) -> None:
        """The token the following starts and stops carry (the engine's, once it holds the cluster)."""
        self.token = token

    async def claim(self, host: str, token: Token, live_for: float, force: bool = False) -> Claim:
        """Take `host` for `token` unless another holder renewed it within `live_for` s (or `force`)."""
        link = self._link(host)
        what = "claim the host"
        async with link.lock:
            out = await link.run(scripts.claim_command(link.state_dir, token, live_for, force), RUNTIME_TIMEOUT, what)
        try:
            return scripts.parse_claim(out)
        except FrameError as exc:
            raise HostCommandFailed(host, what, f"unexpected answer: {exc}") from None

    async def list_replicas(self, host: str) -> tuple[ReplicaStatus, ...]:
        """Every replica recorded on `host`, `running` false for those whose process is gone."""
        link = self._link(host)
        listing = await self._listing(link)
        return tuple(sorted((status_of(host, s, listing.hz) for s in listing.samples), key=lambda r: r.replica))

    # -- host keys ------------------------------------------------------------------------

    def trust_host_key(self, host: str, fingerprint: str) -> Path:
        """Trust the refused key `host` presented, which an operator saw as `fingerprint`: recorded where accept-new
        records (see HostKeys.trust), and the host connected again now. The known_hosts file written."""
        link = self._link(host)
        assert self._ctx is not None  # a link exists only once started
        h = link.host
        written = self._ctx.keys.trust(host, host_pattern(h.address, h.port), fingerprint)
        if isinstance(link, SshLink):
            link.retry_now()
        return written

    # -- logs -----------------------------------------------------------------------------

    async def log_age(self, host: str, replica: ReplicaId) -> float | None:
        """Seconds since `replica`'s log on `host` was last written, None when the host has none."""
        link = self._link(host)
        what = f"look for {replica}'s log"
        out = (await link.run(scripts.logs_command(link.state_dir, replica, 0, "age"), RUNTIME_TIMEOUT, what)).split()
        if len(out) == 2 and out[0] == "age":
            try:
                return max(0.0, float(out[1]))
            except ValueError:
                pass
        if out == ["none"]:
            return None
        raise HostCommandFailed(host, what, f"unexpected answer {' '.join(out)[:60]!r}")

    def log_stream(self, host: str, replica: ReplicaId, lines: int, follow: bool = False) -> AsyncIterator[bytes]:
        """`replica`'s log on `host` as written (bytes: a log holds anything): its last `lines` lines, then with
        `follow` whatever the replica writes, through rotations, until the iterator is closed."""
        link = self._link(host)
        mode, what = ("follow", f"follow {replica}'s log") if follow else ("print", f"read {replica}'s log")
        return link.stream(scripts.logs_command(link.state_dir, replica, lines, mode), what)

    async def read_log(self, host: str, replica: ReplicaId, lines: int) -> bytes:
        """The last `lines` lines of `replica`'s log on `host`; at most MAX_ANSWER_BYTES of them."""
        data = bytearray()
        async for chunk in self.log_stream(host, replica, lines):
            data += chunk
            if len(data) > MAX_ANSWER_BYTES:
                raise HostCommandFailed(
                    host, f"read {replica}'s log", f"more than {MAX_ANSWER_BYTES} bytes: ask fewer lines"
                )
        return bytes(data)

    # -- internals ----------------------------------------------------------------------

    def _add(self, host: Host) -> None:
        assert self._ctx is not None
        link: Link = (
            LocalLink(host, self._config, self._emit, self.controller)
            if host.is_local
            else SshLink(host, self._config, self._emit, self.controller, self._ctx)
        )
        self._links[host.name] = link
        link.start()

    def _link(self, host: str) -> Link:
        link = self._links.get(host)
        if link is None:
            if self._ctx is None:
                raise HostUnreachable(host, "the fleet is not started")
            known = ", ".join(h.name for h in self._config.hosts)
            raise LoadmasterError(f'"{host}" is not a host in {self._config.source} (hosts: {known})')
        return link

    async def _listing(self, link: Link) -> scripts.Listing:
        what = "list replicas"
        out = await link.run(scripts.list_command(link.state_dir), RUNTIME_TIMEOUT, what)
        return self._parse(link.host.name, what, out)

    @staticmethod
    def _parse(host: str, what: str, out: str) -> scripts.Listing:
        try:
            return scripts.parse_listing(out)
        except FrameError as exc:
            raise HostCommandFailed(host, what, f"unexpected answer: {exc}") from None

    def _choose_port(self, host: Host, listing: scripts.Listing) -> int:
        now = time.monotonic()
        self._held_ports = {k: t for k, t in self._held_ports.items() if now - t < PORT_HOLD}
        held = {port for (address, port) in self._held_ports if address == host.address}
        first, last = PORT_RANGE
        # Each host scans from its own offset, so hosts sharing an address (demo) rarely race for a port.
        start = first + zlib.crc32(host.name.encode()) % (last - first + 1)
        port = scripts.choose_port(listing.listening | listing.replica_ports | held, first, last, start)
        if port is None:
            raise HostCommandFailed(host.name, "choose a port", f"no free port in {first}-{last}")
        self._held_ports[(host.address, port)] = now
        return port

    def _load_client_keys(self) -> Sequence[asyncssh.SSHKeyPair] | None:
        if self._client_key_paths is None:
            return None
        try:
            return asyncssh.load_keypairs(list(self._client_key_paths))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise ConfigError(
                [ConfigProblem(self._config.source, "defaults", "identity_file", f"cannot be loaded: {exc}")]
            ) from None

    async def _jump(self, name: str) -> asyncssh.SSHClientConnection:
        link = self._links.get(name)
        if not isinstance(link, SshLink):
            raise HostUnreachable(name, "the jump host is not an SSH host of this fleet")
        return await link.connection(self._config.defaults.connect_timeout)

    def _named_known_hosts(self) -> str | None:
        """The known_hosts file the cluster file names: accept-new records keys there, where the operator looks
        (not in ~/.loadmaster/known_hosts); None for the default ~/.ssh/known_hosts, which is never written."""
        return None if self._known_hosts is not None else self._config.defaults.known_hosts

    def _notice(self, message: str) -> None:
        if self.log_notices:
            log.warning("%s", message)
        self.notices.append(message)

    def _emit(self, observation: HostObservation) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(observation)
        except Exception:
            log.exception("on_change failed for %s", observation.host)

    async def _sweep(self) -> None:
        interval = min(0.25, self._config.poll_interval / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for link in list(self._links.values()):
                link.tick(now)
