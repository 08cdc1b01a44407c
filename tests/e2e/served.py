"""A demo fleet served by `loadmaster demo --serve` in its own process, and the CLI run against it.

Everything runs as real processes: the SSH servers, the replicas (`sleep N`
with an N unique to the test, so they can be counted with pgrep), and each
`loadmaster` command under test, with HOME in the test's directory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.sshd import free_port

LOADMASTER = [sys.executable, "-m", "console.cli"]


def cluster_toml(ports: list[int], tag: int, *, web: int = 4, db: int = 2, extra: str = "") -> str:
    zones = ["z1", "z2"]
    hosts = "".join(
        f'[[hosts]]\nname = "h{i + 1}"\naddress = "127.0.0.1"\nport = {p}\n'
        f'labels = {{ zone = "{zones[i % 2]}" }}\ncapacity = {{ cpu = 2, mem = "4GiB" }}\n\n'
        for i, p in enumerate(ports)
    )
    return f"""
[cluster]
name = "e2e{tag}"
demo = true
poll_interval = "500ms"
failure_timeout = "1500ms"

[policy]
solver_time_limit = "2s"
settle = "1s"
{extra}
{hosts}
[[services]]
name = "web"
command = "sleep {tag}1"
replicas = {web}
cpu = "500m"
mem = "256MiB"
max_per_host = 2
min_healthy = 2

[[services]]
name = "db"
command = "sleep {tag}2"
replicas = {db}
cpu = 1
mem = "1GiB"
max_per_host = 1
spread_over = "zone"
"""


class ServedFleet:
    def __init__(self, root: Path, hosts: int = 4, **toml: int):
        self.root = root
        self.tag = random.randint(10_000, 99_999)
        self.ports = [free_port("127.0.0.1") for _ in range(hosts)]
        self.config = root / "cluster.toml"
        self.config.write_text(cluster_toml(self.ports, self.tag, **toml))
        self.env = {**os.environ, "HOME": str(root), "PYTHONUNBUFFERED": "1"}
        self.server: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServedFleet:
        self.server = subprocess.Popen(
            [*LOADMASTER, "demo", "--serve", "-c", str(self.config)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.server.stdout is not None
        for line in self.server.stdout:
            if line.startswith("serving"):
                return self
        raise AssertionError(f"demo --serve did not start (exit {self.server.wait()})")

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=20)
        subprocess.run(["pkill", "-f", f"^sleep {self.tag}"], check=False)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LOADMASTER, *args, "-c", str(self.config)],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def popen(self, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*LOADMASTER, *args, "-c", str(self.config)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,  # type: ignore[call-overload]
        )  # fmt: skip

    def processes(self, service: str) -> int:
        """Live replica processes of a service on the whole machine (exact command match)."""
        number = {"web": 1, "db": 2}[service]
        out = subprocess.run(["pgrep", "-xf", f"sleep {self.tag}{number}"], capture_output=True, text=True)
        return len(out.stdout.split())

    def wait_processes(self, web: int, db: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.processes("web"), self.processes("db")) == (web, db):
                return
            time.sleep(0.2)
        raise AssertionError(f"processes web={self.processes('web')} db={self.processes('db')}, wanted {web}/{db}")
