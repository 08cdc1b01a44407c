from __future__ import annotations

import pytest

from core import config as config_io
from core.engine.engine import Engine
from core.engine.journal import Journal
from core.model import ClusterConfig
from tests.fake_fleet import FakeFleet

SMALL = """
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
replicas = 3
cpu = 1
mem = "1GiB"
max_per_host = 1
min_healthy = 2

[[services]]
name = "db"
command = "sleep 1000"
replicas = 1
cpu = 2
mem = "2GiB"
"""


@pytest.fixture
def small_config() -> ClusterConfig:
    return config_io.parse(SMALL, "small.toml")


@pytest.fixture
async def engine_of(tmp_path):
    """`await engine_of(config, **engine_kwargs)` → (a started Engine over a FakeFleet, the fleet); closed after."""
    engines = []

    async def make(config, **kw):
        fleet = FakeFleet(config)
        engine = Engine(config, fleet, Journal(tmp_path / f"j{len(engines)}.db"), workers=1, **kw)
        engines.append(engine)
        await engine.start(first_contact_timeout=1)
        return engine, fleet

    yield make
    for e in engines:
        await e.close(grace=5)
