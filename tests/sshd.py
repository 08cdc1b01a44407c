"""Real OpenSSH sshd servers on loopback for integration tests (see NOTES.md).

Each `Sshd` is a child `/usr/sbin/sshd -D` with its own temporary config, a
per-run host key, an authorized client key and a known_hosts line, listening on
its own 127.0.0.x address. Logins go to a non-root user with /bin/sh (root's
shell start-up costs ~110 ms per command), created once with `useradd` and
unlocked with `usermod -p '*'` because `UsePAM no` refuses locked accounts.

    server = start_sshd(address="127.0.0.2")
    host = server.host("a")               # a core.model.Host pointing at it
    ... Fleet(config, known_hosts=server.known_hosts, client_keys=[server.client_key]) ...
    server.stop()

When sshd cannot run here, `require_sshd()` fails the test under CI=true and skips it elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import asyncssh
import pytest

from core.model import Host

SSHD = "/usr/sbin/sshd"  # sshd re-execs itself and insists on an absolute path
TEST_USER = "lmtest"


def require_sshd() -> None:
    """Skip (fail under CI=true) when OpenSSH's sshd or the rights to run it are missing."""
    problem = None
    if not os.path.exists(SSHD):
        problem = f"{SSHD} is missing (apt-get install openssh-server)"
    elif os.geteuid() != 0:
        problem = "sshd tests create a test user and need root"
    elif shutil.which("useradd") is None:
        problem = "useradd is missing"
    if problem is not None:
        missing(problem)


def missing(problem: str) -> NoReturn:
    """A part the test needs is not here: fail under CI=true (where .ci/run must provide it), else skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def require_tool(name: str, package: str = "openssh-client") -> str:
    """The path of a tool (ssh, ssh-agent, tmux, …); missing fails under CI=true, else skips."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is missing (apt-get install {package})")
    return path


def ensure_user(name: str = TEST_USER) -> pwd.struct_passwd:
    """The login user for tests: created once with /bin/sh and unlocked for key-only login."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def free_port_block(address: str, count: int) -> int:
    """The first of `count` consecutive free ports, below the kernel's ephemeral range (32768+, where any
    outgoing connection may take the port after us) and the demo replicas' ports (20000-29999): a demo fleet
    started with extra hosts puts them on the ports after the file's."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, 20000 - count)
        try:
            with contextlib.ExitStack() as held:
                for port in range(base, base + count):
                    s = held.enter_context(socket.socket())
                    s.bind((address, port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports on {address} in 10000-19999")


def _wait_listening(address: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"sshd did not listen on {address}:{port}: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class Sshd:
    address: str
    port: int
    user: str
    directory: Path
    client_key: str  # private key file authorized for `user`
    known_hosts: str  # a known_hosts file holding this server's host key
    host_key: asyncssh.SSHKey
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(self.user).pw_dir)

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint()

    def host(self, name: str, **overrides: object) -> Host:
        fields: dict[str, object] = {"name": name, "address": self.address, "port": self.port, "user": self.user}
        fields.update(overrides)
        return Host(**fields)  # type: ignore[arg-type]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_sshd(address: str = "127.0.0.2", *, user: str = TEST_USER, extra_config: tuple[str, ...] = ()) -> Sshd:
    """Start an sshd on `address` (a free port) that lets `user` in with a fresh client key."""
    require_sshd()
    ensure_user(user)
    os.makedirs("/run/sshd", exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="lm-sshd-"))
    directory.chmod(0o755)  # sshd reads AuthorizedKeysFile as the user
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(directory / "host_key"))
    (directory / "host_key").chmod(0o600)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(directory / "client_key"))
    (directory / "client_key").chmod(0o600)
    authorized = directory / "authorized_keys"
    authorized.write_bytes(client_key.export_public_key())
    authorized.chmod(0o644)
    port = free_port(address)
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[{address}]:{port} {host_key.export_public_key().decode().strip()}\n")
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {address}:{port}",
                f"HostKey {directory / 'host_key'}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {directory / 'sshd.pid'}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "MaxStartups 200",
                f"AllowUsers {user}",
                *extra_config,
            ]
        )
        + "\n"
    )
    log = directory / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL)
    server = Sshd(address, port, user, directory, str(directory / "client_key"), str(known_hosts), host_key, log, proc)
    try:
        _wait_listening(address, port, proc, log)
    except RuntimeError:
        server.cleanup()
        raise
    return server
