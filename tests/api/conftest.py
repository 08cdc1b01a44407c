"""A real API server on loopback over the real engine and an in-memory fleet, and a real HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core import config as config_io
from core.api.bind import parse_bind
from core.api.server import ApiServer
from core.api.tokens import Access, TokenStore
from core.engine.engine import Engine
from core.engine.journal import Journal
from tests.fake_fleet import FakeFleet

CLUSTER = """\
# The API test cluster: this comment must survive every write.
[cluster]
name = "t"
poll_interval = "100ms"
failure_timeout = "300ms"

[policy]
solver_time_limit = "2s"
settle = "0s"

[[hosts]]
name = "a"
address = "10.0.0.1"
labels = { zone = "z1" }
capacity = { cpu = 4, mem = "8GiB" }

[[hosts]]
name = "b"
address = "10.0.0.2"
labels = { zone = "z1" }
capacity = { cpu = 4, mem = "8GiB" }

[[hosts]]
name = "c"
address = "10.0.0.3"
labels = { zone = "z2" }
capacity = { cpu = 4, mem = "8GiB" }

[[services]]
name = "web"
command = "sleep 1000"
replicas = 3   # the front end
cpu = "100m"
mem = "64MiB"
min_healthy = 1

[[services]]
name = "db"
command = "sleep 1000"
replicas = 1
cpu = 2
mem = "2GiB"
"""


@dataclass
class Served:
    url: str
    path: Path
    engine: Engine
    fleet: FakeFleet
    server: ApiServer
    rw: str  # the read-write token's secret
    ro: str
    session: aiohttp.ClientSession
    warnings: list[str] = field(default_factory=list)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.rw}", **extra}

    async def call(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> tuple[int, Any, Any]:
        headers = {**self.headers(token), **kw.pop("headers", {})}
        async with self.session.request(method, self.url + path, headers=headers, **kw) as resp:
            assert resp.content_type == "application/json", (resp.status, await resp.text())
            return resp.status, await resp.json(), resp.headers


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[Engine, ApiServer, aiohttp.ClientSession]] = []

    async def make(
        text: str = CLUSTER, *, read_only: bool = False, env: dict[str, str] | None = None, bind: str = "127.0.0.1:0",
        tls: Any = None, **engine_kw: Any,
    ) -> Served:  # fmt: skip
        path = tmp_path / f"cluster{len(made)}.toml"
        path.write_text(text, encoding="utf-8")
        config = config_io.load(path)
        fleet = FakeFleet(config)
        engine = Engine(config, fleet, Journal(tmp_path / f"journal{len(made)}.db"), workers=1,
                        read_only=read_only, **engine_kw)  # fmt: skip
        await engine.start(first_contact_timeout=1)
        tokens = TokenStore(tmp_path / f"state{len(made)}" / "api-tokens.json", env={} if env is None else env)
        server = ApiServer(engine, path, tokens, read_only=read_only, tls=tls)
        warnings: list[str] = []
        url = await server.start(parse_bind(bind), warnings.append)
        session = aiohttp.ClientSession()
        made.append((engine, server, session))
        tokens.ensure()
        secrets = {t.access: t.secret for t in tokens.tokens()}
        rw, ro = secrets.get(Access.READ_WRITE, ""), secrets.get(Access.READ_ONLY, "")
        return Served(url, path, engine, fleet, server, rw, ro, session, warnings)

    yield make
    for engine, server, session in made:
        await session.close()
        await server.close()
        await engine.close(grace=5)


@pytest.fixture
async def api(serve: Callable[..., Any]) -> Served:
    return await serve()
