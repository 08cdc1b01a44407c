"""A local etcd cluster on loopback, from Debian's `etcd-server`: for the tests and benchmarks/ha.py.

Each member is our own child process (no systemd) with its own data directory and its own client and
peer ports, so several clusters (two test sessions, a benchmark) can run side by side on one machine.
Members can be stopped and started again one by one (member loss: 1 of 3 keeps quorum, 2 of 3 lose it);
`close` kills them all and removes their data.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ETCD = "etcd"
READY_TIMEOUT = 30.0


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; a member binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str | None:
    return shutil.which(ETCD)


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalEtcd:
    """`size` members on loopback under `root` (a fresh temporary directory when None)."""

    size: int = 3
    root: Path | None = None
    members: list[Member] = field(default_factory=list)
    token: str = ""

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="loadmaster-etcd-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = f"lm-{os.getpid()}-{time.monotonic_ns()}"
        for i in range(self.size):
            name = f"m{i}"
            self.members.append(Member(name, free_port(), free_port(), self.root / name, self.root / f"{name}.log"))

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def url(self) -> str:
        """The `[cluster] store` value naming every member."""
        return "etcd://" + ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)

    def _command(self, m: Member, state: str) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [
            etcd_binary() or ETCD,
            "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.token,
            # Short raft timings: loopback is fast, and a test of member loss should not wait 10 s.
            "--heartbeat-interval", "100",
            "--election-timeout", "1000",
            # Keep the history small: the events and action states are rewritten often.
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", "10000",
            "--quota-backend-bytes", str(512 * 1024 * 1024),
            "--log-level", "warn",
        ]  # fmt: skip

    def start(self) -> None:
        """Start every member and wait until the cluster answers (raises RuntimeError with the logs if not)."""
        for m in self.members:
            self.start_member(m.name, new=True)
        self.wait_ready()

    def start_member(self, name: str, *, new: bool = False) -> None:
        m = self.member(name)
        if m.running:
            return
        log = open(m.log, "ab")  # noqa: SIM115 - the child holds it; closed with our copy below
        try:
            m.process = subprocess.Popen(
                self._command(m, "new" if new or not m.data_dir.exists() else "existing"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a test's Ctrl-C does not reach it; close() does
                preexec_fn=_die_with_parent,  # and a test run killed by a timeout leaves no member behind
            )
        finally:
            log.close()

    def stop_member(self, name: str) -> None:
        """kill -9 one member (its data stays: start_member brings it back)."""
        m = self.member(name)
        if m.process is not None and m.process.poll() is None:
            m.process.send_signal(signal.SIGKILL)
            m.process.wait(10)
        m.process = None

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def healthy(self, m: Member) -> bool:
        try:
            with urllib.request.urlopen(m.client_url + "/health", timeout=1.0) as r:
                return b'"true"' in r.read()
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.healthy(m) for m in self.members if m.running):
                return
            for m in self.members:
                if m.process is not None and m.process.poll() is not None:
                    raise RuntimeError(f"etcd member {m.name} exited: {self.tail(m)}")
            time.sleep(0.1)
        raise RuntimeError("etcd cluster not healthy in time: " + "; ".join(self.tail(m) for m in self.members))

    def tail(self, m: Member) -> str:
        with contextlib.suppress(OSError):
            return m.log.read_text(errors="replace")[-600:]
        return "(no log)"

    def close(self) -> None:
        for m in self.members:
            self.stop_member(m.name)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalEtcd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it ends (Linux prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
