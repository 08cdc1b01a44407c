"""The API on the embedded demo fleet (SSH hosts on loopback running real processes): scale up and down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import psutil

from core import config as config_io
from core.api.bind import parse_bind
from core.api.server import ApiServer
from core.api.tokens import Access, TokenStore
from core.engine.engine import Engine
from core.engine.journal import Journal
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from tests.sshd import free_port

CLUSTER = """\
# a demo cluster served by the test
[cluster]
name = "api-demo"
demo = true
poll_interval = "500ms"
failure_timeout = "1500ms"

[policy]
auto_apply = true
cooldown = 0
settle = 0

[[hosts]]
name = "h1"
address = "127.0.0.1"
port = {p1}
capacity = {{ cpu = 2, mem = "1GiB" }}

[[hosts]]
name = "h2"
address = "127.0.0.1"
port = {p2}
capacity = {{ cpu = 2, mem = "1GiB" }}

[[services]]
name = "web"
command = "sleep 300"
replicas = 1   # scaled through the API
cpu = "100m"
mem = "16MiB"
"""


async def test_scale_through_the_api_runs_real_processes(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(CLUSTER.format(p1=free_port("127.0.0.1"), p2=free_port("127.0.0.1")), encoding="utf-8")
    config = config_io.load(path)
    demo = DemoFleet(config, tmp_path / "demo")
    await demo.start()
    fleet = Fleet(config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1, demo=demo)
    tokens = TokenStore(tmp_path / "state" / "api-tokens.json", env={})
    server = ApiServer(engine, path, tokens)
    try:
        await engine.start(first_contact_timeout=10)
        url = await server.start(parse_bind("127.0.0.1:0"), print)
        headers = {"Authorization": f"Bearer {tokens.token(Access.READ_WRITE).secret}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def web() -> dict:
                async with session.get(url + "/v1/services/web") as resp:
                    assert resp.status == 200
                    return await resp.json()

            async def running(n: int) -> dict:
                for _ in range(300):
                    doc = await web()
                    if doc["running"] == n and len(doc["where"]) == n:
                        return doc
                    await asyncio.sleep(0.1)
                raise AssertionError(f"web never ran {n} replicas: {doc}")

            await running(1)
            async with session.post(url + "/v1/services/web/scale", json={"replicas": 3}) as resp:
                assert resp.status == 200, await resp.text()
            assert "replicas = 3   # scaled through the API" in path.read_text(encoding="utf-8")
            await running(3)
            async with session.get(url + "/v1/hosts") as resp:
                hosts = (await resp.json())["hosts"]
            pids = [r["pid"] for h in hosts for r in h["replicas"] if r["health"] == "running"]
            assert len(pids) == 3 and all(psutil.pid_exists(p) for p in pids)  # real processes
            async with session.post(url + "/v1/services/web/scale", json={"replicas": 1}) as resp:
                assert resp.status == 200
            kept = (await running(1))["where"]
            for _ in range(100):  # the two replicas scaled away are stopped on their hosts
                if sum(psutil.pid_exists(p) for p in pids) == 1:
                    break
                await asyncio.sleep(0.1)
            assert sum(psutil.pid_exists(p) for p in pids) == 1 and list(kept) == ["web/0"]
    finally:
        await server.close()
        await engine.close(grace=10)
        await demo.stop()
