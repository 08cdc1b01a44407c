"""A fleet of real OpenSSH hosts on this machine, one network namespace each, and faults to inject.

Each host is a network namespace with one veth into a bridge in the root namespace and an
address in a private test range (10.213.N.0/24, N free on this machine) that only the bridge
and the namespaces hold, so no packet leaves the machine. In it runs one `/usr/sbin/sshd`
under `unshare -m -p -f --mount-proc`: the host has its own process list (sshd is its PID 1,
so when sshd dies every process of the host dies with it), its own home directory for the
login user (a bind mount of the host's directory over the user's home) and its own
/proc/loadavg. Logins go to a dedicated unprivileged user with /bin/sh (see NOTES.md: root's
shell start-up costs ~110 ms per command), with a client key and host keys made per run.

Faults are calls: `crash` (every process of the host is killed), `partition` (nftables drops
its traffic, or its link goes down), `hang` (SIGSTOP to every process), `heal` (undo whichever
it is; a crashed host boots again with its disk kept), `small_disk` (a tmpfs of a few hundred
KiB, e.g. under the controller's journal), `hostile` hosts whose probe answers garbage, and
hosts that lie through fake /proc files.

Every name carries the run's prefix `lmf<pid>` (namespaces, bridge, veths, the nftables
table, mounts under the work directory), so parallel runs do not collide and `sweep_stale()`
removes what a killed run left; `leftovers(prefix)` lists anything of a run still present.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.hostlink.probe_shell import PROBE_MARK

SSHD = "/usr/sbin/sshd"  # sshd re-execs itself and insists on an absolute path
FAULT_USER = "lmfault"
PREFIX = "lmf"
RUN_ENV = "LOADMASTER_FAULT_RUN"  # processes of a run outside its namespaces (controllers) carry it
SUBNET = "10.213"  # 10.213.N.0/24 per run; N is picked among the ones no interface here uses
NFT_FAMILY = "inet"

# A hostile host answers its probe with frames that parse as nothing, as fast as it can;
# every other command (start, stop, list) runs normally so the host still looks like a host.
GARBAGE = "F 1\nthis is not a frame\nE"


class NamespaceUnavailable(RuntimeError):
    """This machine cannot host the fleet (not root, a tool missing, namespaces refused)."""


def _run(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def unavailable() -> str | None:
    """Why a fleet cannot be made here, or None. Tries a throwaway namespace: having `ip` is not
    having the right to use it (an unprivileged container has the tools but not the rights)."""
    if os.geteuid() != 0:
        return "network namespaces and a test login user need root"
    for tool, package in (
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("unshare", "util-linux"),
        ("useradd", "passwd"),
        ("setsid", "util-linux"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {package})"
    if not os.path.exists(SSHD):
        return f"{SSHD} is missing (apt-get install openssh-server)"
    probe = f"{run_prefix()}-probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        pid_ns = _run("ip", "netns", "exec", probe, "unshare", "-m", "-p", "-f", "--mount-proc", "true", check=False)
        if pid_ns.returncode != 0:
            return f"cannot create a PID and mount namespace: {pid_ns.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return None


def ensure_user(name: str = FAULT_USER) -> None:
    """The login user: /bin/sh, key-only (unlocked with `usermod -p '*'` since UsePAM is off)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        # Two runs starting at once may both add it: the loser's "already exists" is fine.
        _run("useradd", "-m", "-s", "/bin/sh", name, check=False)
        _run("usermod", "-p", "*", name)


def _home(user: str) -> str:
    return pwd.getpwnam(user).pw_dir


# -- what a run leaves on the machine ------------------------------------------------------


def _netns_names() -> list[str]:
    return [line.split()[0] for line in _run("ip", "netns", "list").stdout.splitlines() if line.strip()]


def _link_names() -> list[str]:
    out = _run("ip", "-o", "link", "show").stdout
    return [m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.MULTILINE)]


def _nft_tables() -> list[str]:
    out = _run("nft", "list", "tables", check=False).stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table ")]


def _mounts() -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f]


def _pids_in_netns(names: list[str]) -> dict[str, list[int]]:
    """Processes per named network namespace, found by the inode of /proc/PID/ns/net."""
    inodes: dict[int, str] = {}
    for name in names:
        with contextlib.suppress(OSError):
            inodes[os.stat(f"/run/netns/{name}").st_ino] = name
    found: dict[str, list[int]] = {name: [] for name in names}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            inode = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue  # gone meanwhile
        if inode in inodes:
            found[inodes[inode]].append(int(entry))
    return found


def run_prefix() -> str:
    """This process's run: the prefix of everything it creates."""
    return f"{PREFIX}{os.getpid()}"


def run_env(prefix: str | None = None) -> dict[str, str]:
    """The environment marking a process as part of a run, so a sweep finds it if the run dies."""
    return {RUN_ENV: prefix or run_prefix()}


def _tagged(prefix: str | None = None) -> dict[int, str]:
    """pid → run, for processes marked with RUN_ENV (all runs, or only `prefix`)."""
    found: dict[int, str] = {}
    mark = f"{RUN_ENV}=".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(mark):
                run = item[len(mark) :].decode(errors="replace")
                if prefix is None or run == prefix:
                    found[int(entry)] = run
    return found


def _owned(name: str, prefix: str) -> bool:
    """`name` belongs to run `prefix` (lmf123 owns lmf123-h1 and lmf123br, not lmf1234-h1)."""
    return re.match(rf"{re.escape(prefix)}(?!\d)", name) is not None


def _mounted_by(mount: str, prefix: str) -> bool:
    """A mount of run `prefix`: its path has a component named for the run (…/lmf123/…)."""
    return any(_owned(part, prefix) for part in mount.split("/"))


def leftovers(prefix: str) -> list[str]:
    """Everything of run `prefix` still on this machine: namespaces, interfaces, nftables tables,
    mounts, processes in its namespaces. Empty after a clean teardown."""
    found: list[str] = []
    namespaces = [n for n in _netns_names() if _owned(n, prefix)]
    found += [f"netns {n}" for n in namespaces]
    found += [f"link {n}" for n in _link_names() if _owned(n, prefix)]
    found += [f"nft table {t}" for t in _nft_tables() if _owned(t, prefix)]
    found += [f"mount {m}" for m in _mounts() if _mounted_by(m, prefix)]
    for name, pids in _pids_in_netns(namespaces).items():
        found += [f"process {pid} in {name}" for pid in pids]
    found += [f"process {pid} marked {RUN_ENV}={prefix}" for pid in _tagged(prefix)]
    return found


def _live_run(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _teardown(prefix: str) -> None:
    """Remove everything of run `prefix`, in the order that lets each step succeed."""
    namespaces = [n for n in _netns_names() if _owned(n, prefix)]
    for pid in _tagged(prefix):  # controllers first: they would only reconnect
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _kill_all(namespaces)
    for name in namespaces:
        _run("ip", "netns", "del", name, check=False)  # its mount in /run/netns, and its veths
    for mount in sorted((m for m in _mounts() if _mounted_by(m, prefix)), key=len, reverse=True):
        _run("umount", "-l", mount, check=False)
    for link in _link_names():
        if _owned(link, prefix):
            _run("ip", "link", "del", link, check=False)
    for table in _nft_tables():
        if _owned(table, prefix):
            _run("nft", "delete", "table", NFT_FAMILY, table, check=False)


def _kill_all(namespaces: list[str], timeout: float = 10) -> None:
    """SIGKILL every process in the namespaces until none is left (a stopped one dies too)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for ps in _pids_in_netns(namespaces).values() for p in ps]
        if not pids:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} outlived SIGKILL in {namespaces}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def sweep_stale() -> list[str]:
    """Tear down what runs that are no longer alive left behind; the prefixes swept."""
    names = _netns_names() + _link_names() + _nft_tables() + [p for m in _mounts() for p in m.split("/")]
    names += list(_tagged().values())
    prefixes = {m.group(0) for n in names if (m := re.match(rf"{PREFIX}\d+", n))}
    stale = sorted(p for p in prefixes if not _live_run(int(p[len(PREFIX) :])))
    for prefix in stale:
        _teardown(prefix)
    return stale


# -- the fleet ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetHost:
    name: str
    address: str
    netns: str
    veth: str  # the root namespace's end, on the bridge
    directory: Path  # sshd config, host key, log, and `home/`: the login user's home on this host
    alias: str | None = None  # a second address of the host, its sshd listening there too (one machine, two names)

    @property
    def home(self) -> Path:
        return self.directory / "home"


class NetnsFleet:
    """`hosts` real sshd hosts h1…hN in their own namespaces; `start()`, faults, `close()`.

    `hostile` names hosts whose probe streams garbage (their other commands work); `fake_proc`
    gives hosts files that replace theirs under /proc (a host that lies about its memory, say:
    `{"h4": {"meminfo": "MemTotal: -4 kB\\n"}}`); `aliases` names hosts with a second address (`NetHost.alias`),
    so that a file can name one machine twice."""

    def __init__(
        self,
        root: Path,
        hosts: int,
        *,
        hostile: tuple[str, ...] = (),
        fake_proc: Mapping[str, Mapping[str, str]] | None = None,
        user: str = FAULT_USER,
        aliases: tuple[str, ...] = (),
    ):
        if not 1 <= hosts <= 240 - len(aliases):
            raise ValueError(f"hosts must be 1..{240 - len(aliases)}, got {hosts}")
        self.prefix = run_prefix()
        self.root = root
        self.user = user
        self.hostile = frozenset(hostile)
        self.fake_proc = {h: dict(files) for h, files in (fake_proc or {}).items()}
        self.bridge = f"{self.prefix}br"
        self.table = self.prefix
        self.net = self._free_subnet()
        self.hosts = tuple(
            NetHost(
                name=f"h{i}",
                address=f"{self.net}.{10 + i}",
                netns=f"{self.prefix}-h{i}",
                veth=f"{self.prefix}v{i}",
                directory=root / f"h{i}",
                # after the last host's address: .11 … .250 hold them all
                alias=f"{self.net}.{11 + hosts + aliases.index(f'h{i}')}" if f"h{i}" in aliases else None,
            )
            for i in range(1, hosts + 1)
        )
        self.client_key = root / "client_key"
        self.known_hosts = root / "known_hosts"
        self._sshd: dict[str, subprocess.Popen[bytes]] = {}
        self._partitioned: set[str] = set()
        self._hung: set[str] = set()
        self._crashed: set[str] = set()
        self._started = False

    def __enter__(self) -> NetnsFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, name: str) -> NetHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        problem = unavailable()
        if problem is not None:
            raise NamespaceUnavailable(problem)
        sweep_stale()
        ensure_user(self.user)
        os.makedirs("/run/sshd", exist_ok=True)
        self._started = True
        try:
            self._keys()
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.net}.1/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            # One partition table per run, empty until a host is cut off.
            self._nft(
                f"table {NFT_FAMILY} {self.table} {{\n"
                "  set cut { type ipv4_addr; }\n"
                "  chain in { type filter hook input priority -10; ip saddr @cut drop; }\n"
                "  chain out { type filter hook output priority -10; ip daddr @cut drop; }\n"
                "}\n"
            )
            for host in self.hosts:
                self._network(host)
            for host in self.hosts:
                self._boot(host)
            for host in self.hosts:
                self._wait_listening(host)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill every host process, remove namespaces, bridge, veths, nftables table, mounts."""
        if not self._started:
            return
        self._started = False
        _teardown(self.prefix)
        for proc in self._sshd.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._sshd.clear()

    # -- faults -------------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Every process of the host dies at once (its sshd, sessions, replicas): the kernel
        closes its sockets, so the controller's connection ends at once."""
        host = self.host(name)
        self._hung.discard(name)
        _kill_all([host.netns])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._sshd.pop(name).wait(timeout=5)
        self._crashed.add(name)

    def partition(self, name: str, how: str = "nft") -> None:
        """Cut the host off: its processes run on, unseen. `nft` drops its packets in the run's
        table; `link` takes its veth down."""
        host = self.host(name)
        if how == "nft":
            _run("nft", "add", "element", NFT_FAMILY, self.table, "cut", f"{{ {host.address} }}")
        elif how == "link":
            _run("ip", "link", "set", host.veth, "down")
        else:
            raise ValueError(f"partition how must be 'nft' or 'link', got {how!r}")
        self._partitioned.add(name)

    def hang(self, name: str) -> None:
        """SIGSTOP every process of the host: its connections stay open and silent."""
        host = self.host(name)
        stopped: set[int] = set()
        for _ in range(3):  # a process forked while we went through the list is caught next round
            for pid in _pids_in_netns([host.netns])[host.netns]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
            time.sleep(0.05)
        self._hung.add(name)

    def heal(self, name: str) -> None:
        """Undo the host's faults: continue its processes, reconnect it, boot it if it crashed
        (with its disk — home and state directory — as it was, its processes gone); returns
        once its sshd answers."""
        host = self.host(name)
        if name in self._hung:
            for pid in _pids_in_netns([host.netns])[host.netns]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            self._hung.discard(name)
        if name in self._partitioned:
            _run("nft", "delete", "element", NFT_FAMILY, self.table, "cut", f"{{ {host.address} }}", check=False)
            _run("ip", "link", "set", host.veth, "up")
            self._partitioned.discard(name)
        if name in self._crashed:
            self._boot(host)
            self._crashed.discard(name)
        self._wait_listening(host)  # a veth that comes up takes a moment to carry again

    @contextlib.contextmanager
    def small_disk(self, path: Path, size: str = "512k") -> Iterator[Path]:
        """A tmpfs of `size` mounted at `path` (created) for the duration; `fill(path)` fills it."""
        if not _mounted_by(str(path.resolve()), self.prefix):
            raise ValueError(f"{path}: mounts must lie under a directory named {self.prefix} (teardown finds them so)")
        path.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", f"{self.prefix}-disk", str(path))
        try:
            yield path
        finally:
            _run("umount", "-l", str(path), check=False)

    @staticmethod
    def fill(path: Path) -> Path:
        """Fill the filesystem under `path` to the last byte; the filler file (delete it to free)."""
        filler = path / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 4096, 1):  # big blocks, then the last few bytes
                with contextlib.suppress(OSError):  # ENOSPC is the point
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)
        return filler

    # -- looking at the hosts -----------------------------------------------------------------

    def pids(self) -> dict[str, list[int]]:
        """host → the processes it runs (all of them: sshd, sessions, replicas)."""
        by_ns = _pids_in_netns([h.netns for h in self.hosts])
        return {h.name: by_ns[h.netns] for h in self.hosts}

    def answers(self, name: str, timeout: float = 1.0) -> bool:
        """The host's sshd sends its banner to a new connection within `timeout`."""
        try:
            with socket.create_connection((self.host(name).address, 22), timeout=timeout) as s:
                s.settimeout(timeout)
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def ssh(self, name: str, command: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a command on the host over SSH as the login user, with the OpenSSH client."""
        host = self.host(name)
        return subprocess.run(
            ["ssh", "-i", str(self.client_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
             f"{self.user}@{host.address}", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def cluster_toml(
        self,
        services: str,
        *,
        name: str | None = None,
        poll_interval: str = "500ms",
        failure_timeout: str = "1500ms",
        policy: str = 'solver_time_limit = "2s"\nsettle = "1s"',
        capacity: str = '{ cpu = 2, mem = "4GiB" }',
        probed: tuple[str, ...] = (),
        zones: int = 2,
    ) -> str:
        """A cluster file for this fleet with `services` (TOML [[services]] tables) appended.
        Every host's capacity is pinned to `capacity` but those in `probed`, which are probed."""
        hosts = "".join(
            f'[[hosts]]\nname = "{h.name}"\naddress = "{h.address}"\n'
            f'labels = {{ zone = "z{i % zones + 1}" }}\n'
            + ("" if h.name in probed else f"capacity = {capacity}\n")
            + "\n"
            for i, h in enumerate(self.hosts)
        )
        return (
            f'[cluster]\nname = "{name or self.prefix}"\npoll_interval = "{poll_interval}"\n'
            f'failure_timeout = "{failure_timeout}"\n\n'
            f'[defaults]\nuser = "{self.user}"\nidentity_file = "{self.client_key}"\n'
            f'known_hosts = "{self.known_hosts}"\nhost_key_policy = "strict"\nconnect_timeout = "2s"\n\n'
            f"[policy]\n{policy}\n\n{hosts}{services}"
        )

    # -- internals -------------------------------------------------------------------------------

    def _nft(self, ruleset: str) -> None:
        proc = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True, timeout=20)
        if proc.returncode != 0:
            raise NamespaceUnavailable(f"nftables refused the partition table: {proc.stderr.strip()}")

    def _free_subnet(self) -> str:
        used = set(re.findall(rf"inet {re.escape(SUBNET)}\.(\d+)\.", _run("ip", "-o", "-4", "addr").stdout))
        first = os.getpid() % 250 + 1
        for step in range(250):
            n = (first - 1 + step) % 250 + 1
            if str(n) not in used:
                return f"{SUBNET}.{n}"
        raise NamespaceUnavailable(f"every {SUBNET}.N.0/24 is in use on this machine")

    def _keys(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        client = asyncssh.generate_private_key("ssh-ed25519")
        client.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        known: list[str] = []
        account = pwd.getpwnam(self.user)
        uid, gid = account.pw_uid, account.pw_gid
        for host in self.hosts:
            host.directory.mkdir(parents=True, exist_ok=True)
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(host.directory / "host_key"))
            (host.directory / "host_key").chmod(0o600)
            public = key.export_public_key().decode().strip()
            known += [f"{address} {public}" for address in (host.address, host.alias) if address]
            ssh_dir = host.home / ".ssh"
            ssh_dir.mkdir(parents=True, exist_ok=True)
            (ssh_dir / "authorized_keys").write_bytes(client.export_public_key())
            for path in (host.home, ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(path, uid, gid)
            (host.directory / "loadavg").write_text("0.10 0.10 0.10 1/50 1\n")
            forced: tuple[str, ...] = ()
            if host.name in self.hostile:
                # In the home, which the user can reach (the run's directory is root's alone).
                script = host.home / ".hostile.sh"
                script.write_text(
                    "#!/bin/sh\n# a host whose probe streams garbage; every other command runs as sent\n"
                    f"case $SSH_ORIGINAL_COMMAND in *{shlex.quote(PROBE_MARK)}*)\n"
                    f"  exec yes {shlex.quote(GARBAGE)};;\nesac\n"
                    'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
                )
                script.chmod(0o755)
                forced = (f"ForceCommand {_home(self.user)}/{script.name}",)
            (host.directory / "sshd_config").write_text(
                "\n".join([
                    f"ListenAddress {host.address}:22",
                    *([f"ListenAddress {host.alias}:22"] if host.alias else []),
                    f"HostKey {host.directory / 'host_key'}",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    f"PidFile {host.directory / 'sshd.pid'}",
                    "UsePAM no", "StrictModes no", "UseDNS no",
                    "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                    "MaxStartups 200", "MaxSessions 100", f"AllowUsers {self.user}",
                    *forced,
                ]) + "\n"
            )  # fmt: skip
        self.known_hosts.write_text("\n".join(known) + "\n")

    def _network(self, host: NetHost) -> None:
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _run("ip", "link", "set", host.veth, "master", self.bridge, "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        if host.alias:
            _run("ip", "-n", host.netns, "addr", "add", f"{host.alias}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")

    def _boot(self, host: NetHost) -> None:
        # In the host's own mount namespace: its directory becomes the user's home, its
        # loadavg file /proc/loadavg (and fake /proc files); then sshd replaces the shell as PID 1.
        binds = [(host.home, _home(self.user)), (host.directory / "loadavg", "/proc/loadavg")]
        for name, text in self.fake_proc.get(host.name, {}).items():
            fake = host.directory / f"proc-{name}"
            fake.write_text(text)
            binds.append((fake, f"/proc/{name}"))
        boot = "".join(f"mount --bind {shlex.quote(str(a))} {shlex.quote(b)} && " for a, b in binds)
        boot += f"exec {SSHD} -D -e -f {shlex.quote(str(host.directory / 'sshd_config'))}"
        with open(host.directory / "sshd.log", "ab") as log:
            self._sshd[host.name] = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "unshare", "-m", "-p", "-f", "--mount-proc", "/bin/sh", "-c", boot],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip

    def _wait_listening(self, host: NetHost, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        proc = self._sshd[host.name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = (host.directory / "sshd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{host.name}: sshd exited with {proc.returncode}: {log}")
            try:
                with socket.create_connection((host.address, 22), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{host.name}: sshd did not answer on {host.address}:22 within {timeout:g} s")
