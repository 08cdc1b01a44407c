"""The autoscaler beside a front end's engine (headless or console), writing decisions to the cluster file."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.autoscale import Autoscaler
    from core.desired import Editor
    from core.engine.engine import Engine


@contextlib.asynccontextmanager
async def autoscaling(
    engine: Engine, path: Path | Editor | None, *, read_only: bool
) -> AsyncIterator[Autoscaler | None]:
    """Services with `autoscale` follow their measured cpu while the block runs; never under --read-only, and
    not without the desired state the engine's config came from (`path`: the cluster file, or clustered the
    stored document's editor)."""
    if read_only or path is None:
        yield None
        return
    from core.autoscale import Autoscaler

    scaler = Autoscaler(engine, path, time.time)
    task = asyncio.create_task(scaler.run(engine.snapshot().config.poll_interval), name="autoscaler")
    try:
        yield scaler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
