"""`loadmaster run --headless --api`: the daemon serves the API, journals who wrote, logs no token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.sshd import free_port

SCRIPT = Path(sys.executable).parent / "loadmaster"
CLUSTER = """\
[cluster]
name = "api-headless"
poll_interval = 0.2

[[hosts]]
name = "h1"
address = "127.0.0.1"
port = {port}

[[services]]
name = "web"
command = "sleep 100"
replicas = 2   # set through the API
cpu = "100m"
mem = "16MiB"
"""


async def test_headless_serves_the_api(tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    config.write_text(CLUSTER.format(port=free_port("127.0.0.1")), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")} | {"HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        SCRIPT, "run", "--headless", "-c", str(config), "--api", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[dict[str, Any]] = []

    async def line_until(event: str) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                raw = await proc.stdout.readline()
                assert raw, f"the daemon ended before {event}: {[d['event'] for d in lines]}"
                lines.append(json.loads(raw))
                if lines[-1]["event"] == event:
                    return lines[-1]

    try:
        url = (await line_until("api.listening"))["url"]
        token = subprocess.run(
            [SCRIPT, "api-token", "-c", str(config)], capture_output=True, text=True, env=env, timeout=60, check=True
        ).stdout.strip()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            async with session.get(f"{url}/v1/hosts") as resp:
                assert resp.status == 200 and (await resp.json())["hosts"][0]["name"] == "h1"
            async with session.post(f"{url}/v1/services/web/scale", json={"replicas": 3}) as resp:
                assert resp.status == 200, await resp.text()
        write = await line_until("api.write")
        assert write["by"] == "read-write" and write["request"] == "POST /v1/services/web/scale"
        assert "replicas = 3   # set through the API" in config.read_text(encoding="utf-8")
        proc.send_signal(signal.SIGTERM)
        await line_until("daemon.stopped")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        rest, err = await proc.communicate()
        assert token not in json.dumps(lines) + rest.decode() + err.decode()  # no token in any log line
        assert "Traceback" not in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_non_loopback_api_without_tls_warns(tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    config.write_text(CLUSTER.format(port=free_port("127.0.0.1")) + '\n[api]\nlisten = "0.0.0.0:0"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")} | {"HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        SCRIPT, "run", "--headless", "-c", str(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            warning = (await proc.stderr.readline()).decode()
        assert "without TLS" in warning and "0.0.0.0" in warning
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
