"""The embedded demo fleet: one in-process asyncssh server per demo host, on loopback.

Each demo host has its own port, host key, home and state directory, and runs
commands as real local processes. Its probe frames report the capacity the
file declares and the usage of its own replicas, not of the whole machine.
A plain OpenSSH client reaches it with `DemoFleet.ssh_command(host)`.

Faults, for tests, benchmarks and the console's demo keys:
  crash    the server and its replicas' processes end, as when a machine dies;
  cut_off  the server stops answering (reads paused, nothing written) while its
           replicas keep running, as in a partition: clients only notice by silence
           and keepalive, and new connections hang in the handshake;
  power_off  silent as in cut_off, and its replicas' processes end, as when a machine
           loses power: clients only notice by silence;
  restore  the host is back on the same port, host key and state directory;
  wedge    a replica running the demo replica server answers 503 from then on (core.hostlink.demo_wedge).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import asyncssh
import psutil

from core.config import is_demo_address
from core.errors import ConfigError, ConfigProblem, LoadmasterError
from core.hostlink import demo_wedge, demoload, limits, probe_shell, records, scripts
from core.hostlink.health import CheckRunner
from core.hostlink.keys import host_pattern
from core.model import ClusterConfig, HealthCheck, Host, ReplicaId, Resources

DEFAULT_CAPACITY = Resources(4000, 8 << 30)
HOME_MARK = "LOADMASTER_DEMO_HOME"  # in the environment of every process a demo host starts
_PIPE = asyncio.subprocess.PIPE


def demo_config(config: ClusterConfig, extra_hosts: int = 0) -> ClusterConfig:
    """The config as a demo fleet serves it: `extra_hosts` more demo hosts after the file's own,
    on the following ports, with capacities and labels taken in turn from the file's demo hosts."""
    if extra_hosts < 0:
        raise ValueError(f"extra_hosts must not be negative, got {extra_hosts}")
    problems = []
    if config.state_dir and not config.state_dir.startswith("~"):
        problems.append(
            ConfigProblem(config.source, "cluster", "state_dir", "must start with ~/ in a demo fleet (one per host)")
        )
    demo = [h for h in config.hosts if h.demo]
    for h in demo:
        if not is_demo_address(h.address):
            problems.append(
                ConfigProblem(
                    config.source, f'hosts "{h.name}"', "address", f"{h.address} is not IPv4 loopback (demo host)"
                )
            )
    if problems:
        raise ConfigError(problems)
    if not extra_hosts:
        return config
    templates = demo or [Host(name="demo", address="127.0.0.1", port=22200, capacity=DEFAULT_CAPACITY, demo=True)]
    names = {h.name for h in config.hosts}
    port = max(h.port for h in templates)
    added = []
    for i in range(extra_hosts):
        template = templates[i % len(templates)]
        port += 1
        name = f"demo-{len(demo) + i + 1:04d}"
        while name in names:
            name += "x"
        added.append(dataclasses.replace(template, name=name, port=port, jump=None))
    return dataclasses.replace(config, hosts=(*config.hosts, *added))


def default_workdir(cluster: str) -> Path:
    return Path(os.path.expanduser(f"~/.loadmaster/demo/{cluster}"))


def _load_or_make_key(path: Path) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    os.chmod(path, 0o600)
    return key


def _pause(conn: asyncssh.SSHServerConnection, paused: bool) -> None:
    # asyncssh has no public way to stop reading a connection; its transport is `_transport`.
    transport = getattr(conn, "_transport", None)
    if transport is not None and not transport.is_closing():
        (transport.pause_reading if paused else transport.resume_reading)()


async def _pump(reader: asyncio.StreamReader | None, write: Callable[[bytes], object]) -> None:
    assert reader is not None
    while data := await reader.read(65536):
        write(data)


class _Server(asyncssh.SSHServer):
    def __init__(self, host: _DemoHost) -> None:
        self.host = host
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.host.conns.add(conn)
        if self.host.cut:
            _pause(conn, True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.host.conns.discard(self.conn)


class _DemoHost:
    def __init__(self, host: Host, root: Path, authorized: asyncssh.SSHAuthorizedKeys, env: Mapping[str, str]) -> None:
        self.host = host
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.key = _load_or_make_key(root / "host_key")
        self.authorized = authorized
        self.capacity = host.capacity or DEFAULT_CAPACITY
        self.server: asyncssh.SSHAcceptor | None = None
        self.conns: set[asyncssh.SSHServerConnection] = set()
        self.cut = False
        self.booted = time.monotonic()
        self.busy_ticks = 0
        self._ticks: dict[tuple[int, float], int] = {}
        self._env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "SHELL": "/bin/sh",
            HOME_MARK: str(self.home),
            "LOADMASTER_DEMO_REPLICA": str(demo_wedge.DEMO_REPLICA),
            **env,  # `demo-load` on the PATH, and where its load file is
        }

    @property
    def running(self) -> bool:
        return self.server is not None

    async def up(self) -> None:
        self.cut = False
        self.booted = time.monotonic()
        self.busy_ticks, self._ticks = 0, {}
        try:
            self.server = await asyncssh.listen(
                self.host.address,
                self.host.port,
                server_host_keys=[self.key],
                authorized_client_keys=self.authorized,
                server_factory=lambda: _Server(self),
                process_factory=self._serve,
                encoding=None,
                compression_algs=None,
                password_auth=False,
                kbdint_auth=False,
                allow_scp=False,
            )
        except OSError as exc:
            raise LoadmasterError(
                f"demo host {self.host.name}: cannot listen on {self.host.address}:{self.host.port}: {exc.strerror}"
            ) from None

    async def crash(self) -> None:
        """The machine dies: no server, no connections, no processes (records stay on its disk)."""
        self.halt()
        _kill(_processes_of({str(self.home)}).get(str(self.home), []))

    def halt(self) -> None:
        """Close the server and drop every connection at once."""
        self.cut = False
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.conns):
            conn.abort()
        self.conns.clear()

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        for conn in list(self.conns):
            _pause(conn, cut)

    # -- serving sessions ---------------------------------------------------------------

    async def _serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        probe = _probe_args(process.command)
        try:
            if probe is not None:
                await self._stream_frames(process, self.path(probe[0]), probe[1], probe[2], probe[3])
            else:
                process.exit(await self._run(process))
        except (OSError, asyncssh.Error):
            process.close()

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> int:
        argv = ["/bin/sh", "-c", process.command] if process.command else ["/bin/sh", "-i"]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=_PIPE, stdout=_PIPE, stderr=_PIPE, cwd=self.home, env=self._env, start_new_session=True
        )
        feed = asyncio.create_task(self._feed(process, proc))
        try:
            await asyncio.gather(_pump(proc.stdout, process.stdout.write), _pump(proc.stderr, process.stderr.write))
            return await proc.wait()
        finally:
            feed.cancel()

    @staticmethod
    async def _feed(process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError, asyncssh.Error, ConnectionError):
            while data := await process.stdin.read(65536):
                proc.stdin.write(data)
                await proc.stdin.drain()
        # however the client's side ended (EOF, or the channel closed under the read): the command's stdin
        # ends too, as sshd's pipe does (`logs -f` stops on it)
        proc.stdin.close()

    def path(self, directory: str) -> Path:
        """A directory as this host's shell sees it (`~` is its home)."""
        return demo_wedge.on_host(self.home, directory)

    async def _stream_frames(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        directory: Path,
        interval: float,
        holder: str,
        checks: Mapping[str, HealthCheck],
    ) -> None:
        seq = 0
        runner = CheckRunner()
        try:
            while not process.is_closing():
                if not self.cut:
                    seq += 1
                    process.stdout.write(self.frame(seq, directory, holder, checks, runner).encode())
                await asyncio.sleep(interval)
        finally:
            runner.close()

    def frame(
        self,
        seq: int,
        directory: Path,
        holder: str,
        checks: Mapping[str, HealthCheck] | None = None,
        runner: CheckRunner | None = None,
    ) -> str:
        """A probe frame for this host: declared capacity, usage of its own replicas only, health checks;
        renews the fence for `holder` as the shell probe does."""
        hz = records.HZ
        found = records.read_records(directory)
        sessions = records.Sessions()
        samples = [records.sample(r, sessions) for r in found]
        fence = records.fence(directory, holder)
        rss_kb = 0
        for s in samples:
            if s.alive and s.ticks is not None:
                key = (s.pid, s.started_at)
                self.busy_ticks += max(0, s.ticks - self._ticks.get(key, 0))
                self._ticks[key] = s.ticks
                rss_kb += s.rss_kb or 0
        uptime = time.monotonic() - self.booted
        total = int(uptime * hz * self.capacity.cpu / 1000)
        mem_kb = self.capacity.mem // 1024
        cores = self.busy_ticks / hz / uptime if uptime > 0 else 0.0
        lines = [
            f"F {seq}",
            f"cpu  {self.busy_ticks} 0 0 {max(0, total - self.busy_ticks)} 0 0 0 0 0 0",
            f"mem {mem_kb} {max(0, mem_kb - rss_kb)}",
            f"load {cores:.2f} {cores:.2f} {cores:.2f} 0/0 0",
            f"up {uptime:.2f} 0.00",
            f"ncpu {max(1, math.ceil(self.capacity.cpu / 1000))} {hz}",
            f"cap {self.capacity.cpu} {self.capacity.mem}",
            f"t {fence.token.epoch} {fence.token.holder} {'-' if fence.age is None else round(fence.age * 100)}",
            f"lim {limits.detect()}",  # its replicas are started by the real START: this machine's cgroups
        ]
        for s in samples:
            lines.append(
                f"r {scripts.hexed(s.replica.service)} {s.replica.index} {scripts.hexed(s.generation) or '-'} "
                f"{s.pid} {s.started_at:.0f} {int(s.alive)} {'-' if s.ticks is None else s.ticks} "
                f"{'-' if s.rss_kb is None else s.rss_kb} {'-' if s.epoch is None else s.epoch}"
            )
            if not s.alive and limits.oom_killed(str(directory), scripts.hexed(s.replica.service), s.replica.index):
                lines.append(f"o {scripts.hexed(s.replica.service)} {s.replica.index} {s.pid}")
            if not s.alive and (status := records.exit_status(directory, s.replica, s.pid)) is not None:
                lines.append(f"x {scripts.hexed(s.replica.service)} {s.replica.index} {s.pid} {status}")
        if checks and runner is not None:
            live = [r for r, s in zip(found, samples, strict=True) if s.alive]
            for c in runner.step(checks, live):
                lines.append(
                    f"h {scripts.hexed(c.replica.service)} {c.replica.index} {c.pid} {c.health.value[0]} "
                    f"{c.passes} {c.failures} {c.detail}"
                )
        return "\n".join(lines) + "\nE\n"


def _probe_args(command: str | None) -> tuple[str, float, str, dict[str, HealthCheck]] | None:
    """(state directory, poll interval, holder, checks) if `command` is loadmaster's probe (served natively),
    else None."""
    if not command or probe_shell.PROBE_MARK not in command:
        return None
    try:
        parts = shlex.split(command)
    except ValueError:
        return None
    if len(parts) >= 7 and parts[:2] == ["sh", "-c"] and parts[2] == probe_shell.PROBE:
        with contextlib.suppress(ValueError):
            table = parts[7] if len(parts) > 7 else ""
            checks = scripts.parse_check_table(table, tuple(parts[8:]))
            return parts[4], max(0.05, float(parts[5])), parts[6], checks
    return None


def _processes_of(homes: set[str]) -> dict[str, list[psutil.Process]]:
    """The live processes each demo host (by home) started, found by the marker in their environment;
    replicas leave their parent's session and process group, but keep its environment."""
    found: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            home = proc.environ().get(HOME_MARK)
            if home in homes:
                found.setdefault(home, []).append(proc)
    return found


def _kill(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.kill()


class DemoFleet:
    def __init__(self, config: ClusterConfig, workdir: Path, *, extra_hosts: int = 0) -> None:
        self.config = demo_config(config, extra_hosts)
        self.workdir = Path(workdir)
        self.known_hosts = str(self.workdir / "known_hosts")
        self.client_key = str(self.workdir / "client_key")
        self._hosts: dict[str, _DemoHost] = {}

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.config.hosts if h.demo)

    async def start(self) -> None:
        """Start a server for every demo host; keys in the workdir are reused, else generated.

        Starting is a boot: processes left running by an earlier run that ended without `stop`
        (killed, say) are ended, as a machine's processes are by a reboot; replica records stay."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        client = _load_or_make_key(Path(self.client_key))
        authorized = asyncssh.import_authorized_keys(client.export_public_key().decode())
        env = demoload.install(self.workdir)
        for host in self.hosts:
            self._hosts[host.name] = _DemoHost(host, self.workdir / "hosts" / host.name, authorized, env)
        for leftovers in _processes_of({str(d.home) for d in self._hosts.values()}).values():
            _kill(leftovers)
        lines = [
            f"{host_pattern(d.host.address, d.host.port)} {d.key.export_public_key().decode().strip()}\n"
            for d in self._hosts.values()
        ]
        Path(self.known_hosts).write_text("".join(lines), encoding="utf-8")
        try:
            await asyncio.gather(*(d.up() for d in self._hosts.values()))
        except LoadmasterError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every server and end every process the demo hosts started."""
        for demo in self._hosts.values():
            demo.halt()
        for processes in _processes_of({str(d.home) for d in self._hosts.values()}).values():
            _kill(processes)

    def _host(self, host: str) -> _DemoHost:
        try:
            return self._hosts[host]
        except KeyError:
            known = ", ".join(self._hosts) or "none (is the fleet started?)"
            raise LoadmasterError(f'"{host}" is not a demo host (demo hosts: {known})') from None

    async def crash(self, host: str) -> None:
        await self._host(host).crash()

    def set_load(self, config: ClusterConfig, shares: Mapping[str, float]) -> list[demoload.Load]:
        """Replicas of each named service burn that share of their cpu request (see core.hostlink.demoload)."""
        return demoload.write(self.workdir, config, shares)

    async def wedge(self, replica: ReplicaId) -> tuple[str, int]:
        return demo_wedge.wedge(self.config, self.workdir, replica)

    async def cut_off(self, host: str) -> None:
        self._host(host).set_cut(True)

    async def power_off(self, host: str) -> None:
        """The machine loses power: it goes silent (no reset reaches the client) and its processes end."""
        demo = self._host(host)
        demo.set_cut(True)
        _kill(_processes_of({str(demo.home)}).get(str(demo.home), []))

    async def restore(self, host: str) -> None:
        demo = self._host(host)
        if demo.running:
            demo.set_cut(False)
        else:
            await demo.up()

    def ssh_command(self, host: str) -> str:
        demo = self._host(host).host
        return " ".join(
            [
                "ssh", "-p", str(demo.port), "-i", shlex.quote(self.client_key),
                "-o", shlex.quote(f"UserKnownHostsFile={self.known_hosts}"),
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", demo.address,
            ]
        )  # fmt: skip
