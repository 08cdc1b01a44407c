"""A hostile host against the daemon: its cpu, stderr, events and SIGTERM time while one host floods it.

    flock /tmp/loadmaster-bench.lock python benchmarks/hostile.py --mode garbage --seconds 10
    flock /tmp/loadmaster-bench.lock python benchmarks/hostile.py --mode valid --root /path/to/old/checkout

One host, `evil`, is an asyncssh server in a child process (its cpu is not the daemon's) whose
probe answers as fast as it can:
--mode garbage  `F 1 / this is not a frame / E`, as `yes` would print it (issue 10, defect 11);
--mode valid    well-formed frames, each a little different, ~300 to a write.
The daemon (`loadmaster run --headless`, from `--root`, default this checkout) watches it for
`--seconds` after it started; then SIGTERM. Prints a JSON summary on its last line: mode,
seconds, cpu_core (the daemon's cpu time / wall time), stderr_bytes, events (about evil),
sigterm_exit_s (None: still running after 15 s, then killed), probe_connections.
Targets (issue 10, build 7): cpu_core < 0.05, stderr_bytes < 1 KiB, one host.misbehaving event,
exit within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE_MARK = "# loadmaster probe v1"  # what probe_shell.PROBE starts with (kept literal: --root may be older code)
GARBAGE = b"F 1\nthis is not a frame\nE\n"


def _frames(seq: int, count: int) -> bytes:
    return b"".join(
        f"F {s}\ncpu  100 0 50 {1000 + s} 0 0 0 0\nmem 8388608 4000000\nload 0.5 0.4 0.3 1/100 42\n"
        f"up {100 + s} 10\nncpu 2 100\nE\n".encode()
        for s in range(seq, seq + count)
    )


async def _serve(port: int, mode: str, directory: Path, ready: Path) -> None:
    import asyncssh

    connections = directory / "probes"

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        if PROBE_MARK not in (process.command or ""):
            process.exit(1)
            return
        with connections.open("a") as f:
            f.write(f"{time.time()}\n")
        seq = 1
        with contextlib.suppress(OSError, asyncssh.Error):
            while True:
                chunk = GARBAGE * 2000 if mode == "garbage" else _frames(seq, 300)
                seq += 300
                process.stdout.write(chunk)
                await process.stdout.drain()
        process.exit(0)

    await asyncssh.listen(
        "127.0.0.1", port, server_host_keys=[str(directory / "host_key")], process_factory=handle, encoding=None,
        authorized_client_keys=str(directory / "client_key.pub"),
    )  # fmt: skip
    ready.touch()
    await asyncio.Event().wait()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"hostile benchmark: {what} not within {timeout} s")
        time.sleep(0.1)


def run(mode: str, seconds: float, root: Path) -> dict[str, object]:
    import asyncssh

    with tempfile.TemporaryDirectory(prefix="lm-hostile-") as tmp:
        directory = Path(tmp)
        host_key, client_key = (
            asyncssh.generate_private_key("ssh-ed25519"),
            asyncssh.generate_private_key("ssh-ed25519"),
        )
        host_key.write_private_key(str(directory / "host_key"))
        client_key.write_private_key(str(directory / "client_key"))
        client_key.write_public_key(str(directory / "client_key.pub"))
        port = _free_port()
        (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
        (directory / "cluster.toml").write_text(
            f'[cluster]\nname = "hostile"\npoll_interval = "500ms"\nfailure_timeout = "2s"\n\n'
            f'[defaults]\nknown_hosts = "{directory / "known_hosts"}"\nidentity_file = "{directory / "client_key"}"\n\n'
            f'[[hosts]]\nname = "evil"\naddress = "127.0.0.1"\nport = {port}\n'
        )
        ready = directory / "ready"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--mode", mode, "--dir", str(directory)],
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_for(ready.exists, 20, "the hostile host")
            env = {**os.environ, "HOME": str(directory), "PYTHONPATH": str(root)}
            out, err = (directory / "daemon.out").open("wb"), (directory / "daemon.err").open("wb")
            daemon = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "run", "--headless", "-c", str(directory / "cluster.toml")],
                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip
            _wait_for(lambda: b"daemon.started" in (directory / "daemon.out").read_bytes(), 30, "daemon.started")
            cpu0, t0 = _cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(seconds)
            cpu = (_cpu_seconds(daemon.pid) - cpu0) / (time.monotonic() - t0)
            stderr_bytes = (directory / "daemon.err").stat().st_size
            stopped = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(15)
                exit_s: float | None = round(time.monotonic() - stopped, 2)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
                exit_s = None
            events = []
            for line in (directory / "daemon.out").read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    if doc.get("host") == "evil":
                        events.append(doc["event"])
            probes = directory / "probes"
            return {
                "mode": mode,
                "seconds": seconds,
                "root": str(root),
                "cpu_core": round(cpu, 3),
                "stderr_bytes": stderr_bytes,
                "events": events,
                "sigterm_exit_s": exit_s,
                "probe_connections": len(probes.read_text().split()) if probes.exists() else 0,
            }
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("garbage", "valid"), default="garbage")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="the loadmaster checkout whose daemon runs")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the hostile host's own process
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.mode, args.dir, args.dir / "ready"))
        return
    print(json.dumps(run(args.mode, args.seconds, args.root.resolve())))


if __name__ == "__main__":
    main()
