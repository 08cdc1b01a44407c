"""One reload per write: the API (or the autoscaler) reloads the engine at once, and the file watch that then
sees the same bytes does not reload them again. A person's edit, and SIGHUP, still reload."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from core.engine.config_watch import ConfigWatch
from core.engine.events import EventKind
from core.errors import ConfigError
from tests.api.conftest import Served, until


def reloads(api: Served) -> list[str]:
    return [e.message for e in api.engine.recent_events() if e.kind is EventKind.CONFIG_RELOADED]


async def test_an_api_write_reloads_the_engine_once(serve: Callable[..., Any]) -> None:
    api: Served = await serve()
    invalid: list[ConfigError] = []
    # the daemon's watch (console/daemon.py), quicker: a change is read after 50 ms of quiet
    engine = api.engine
    watch = ConfigWatch(api.path, engine.reload, invalid.append, interval=0.02, settle=0.05,
                        adopted=lambda: engine.revision)  # fmt: skip
    task = asyncio.create_task(watch.run())
    try:
        before = len(reloads(api))
        status, body, _ = await api.call("POST", "/v1/services/web/scale", json={"replicas": 4})
        assert status == 200, body
        await asyncio.sleep(1.0)  # many turns of the watch, well past its settle time
        after = reloads(api)[before:]
        assert len(after) == 1, after  # before: the API's reload, then the watch's "nothing that matters changed"
        assert "web scaled 3 → 4" in after[0], after

        text = api.path.read_text(encoding="utf-8").replace("replicas = 1", "replicas = 2")  # db, by hand
        api.path.write_text(text, encoding="utf-8")
        await until(lambda: len(reloads(api)) == before + 2, 5)  # a person's edit is still adopted
        assert api.engine.snapshot().config.service("db").replicas == 2

        watch.request()  # SIGHUP: read again, same bytes or not
        await until(lambda: len(reloads(api)) == before + 3, 5)
        await asyncio.sleep(0.3)
        assert len(reloads(api)) == before + 3 and not invalid
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
