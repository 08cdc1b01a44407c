"""Clustered mode: the daemon's HTTP API writes the desired-state document stored in etcd (not the local file,
which a clustered daemon does not follow), with the same revisions and conflicts as on a file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from core.desired import revision_of
from core.store.localetcd import LocalEtcd
from tests.api.test_headless import CLUSTER, SCRIPT
from tests.sshd import free_port


async def test_the_api_of_a_clustered_daemon_writes_the_stored_document(etcd: LocalEtcd, tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    # the headless API test's cluster, made clustered
    clustered = f'name = "capi{os.getpid()}"\nstore = "{etcd.url}"'
    written = CLUSTER.format(port=free_port("127.0.0.1")).replace('name = "api-headless"', clustered)
    config.write_text(written, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")} | {"HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60)

    proc = await asyncio.create_subprocess_exec(
        SCRIPT, "run", "--headless", "-c", str(config), "--api", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []

    async def line_until(event: str, saying: str = "") -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                raw = await proc.stdout.readline()  # type: ignore[union-attr]
                assert raw, f"the daemon ended before {event}: {[d['event'] for d in lines]}"
                lines.append(json.loads(raw))
                if lines[-1]["event"] == event and saying in lines[-1].get("message", ""):
                    return lines[-1]

    try:
        url = (await line_until("api.listening"))["url"]
        token = cli("api-token", "-c", str(config)).stdout.strip()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            async with session.get(f"{url}/v1/services") as resp:
                assert resp.status == 200 and resp.headers["ETag"] == f'"{revision_of(written.encode())}"'
            async with session.post(f"{url}/v1/services/web/scale", json={"replicas": 3}) as resp:
                assert resp.status == 200, await resp.text()
                revision = (await resp.json())["revision"]
            # a writer that read an older revision is refused, naming the one stored now
            stale = {"If-Match": f'"{revision_of(written.encode())}"'}
            async with session.post(f"{url}/v1/services/web/scale", json={"replicas": 4}, headers=stale) as resp:
                assert resp.status == 409 and (await resp.json())["revision"] == revision
            async with session.get(f"{url}/v1/services/web") as resp:
                assert (await resp.json())["replicas"] == 3
        pulled = tmp_path / "pulled.toml"
        assert cli("config", "pull", str(pulled), "-c", str(config)).returncode == 0
        assert "replicas = 3   # set through the API" in pulled.read_text(encoding="utf-8")  # comments kept
        assert revision_of(pulled.read_bytes()) == revision
        await line_until("api.write")
        # `loadmaster scale` on a clustered cluster changes the stored document too, and the daemon adopts it
        scaled = cli("scale", "web", "5", "-c", str(config))
        assert scaled.returncode == 0 and "every daemon" in scaled.stdout, scaled.stdout + scaled.stderr
        await line_until("config.reloaded", "web scaled 3 → 5")
        assert cli("config", "pull", str(pulled), "-c", str(config)).returncode == 0
        assert "replicas = 5   # set through the API" in pulled.read_text(encoding="utf-8")
        assert config.read_text(encoding="utf-8") == written  # the local file only names the cluster and store
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
