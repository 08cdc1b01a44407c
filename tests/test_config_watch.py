"""core.engine.config_watch: what every front end uses to follow the cluster file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from core.engine.config_watch import ConfigWatch
from core.errors import ConfigError
from core.model import ClusterConfig

GOOD = """\
[cluster]
name = "w"

[[hosts]]
name = "h1"
address = "10.0.0.1"

[[services]]
name = "web"
command = "sleep 100"
replicas = {replicas}
cpu = "100m"
mem = "16MiB"
"""


class Recorder:
    def __init__(self) -> None:
        self.adopted: list[ClusterConfig] = []
        self.invalid: list[ConfigError] = []
        self.changed = asyncio.Event()

    def adopt(self, config: ClusterConfig) -> None:
        self.adopted.append(config)
        self.changed.set()

    def on_invalid(self, exc: ConfigError) -> None:
        self.invalid.append(exc)
        self.changed.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.changed.wait(), 5)
        self.changed.clear()


def touch(path: Path, text: str, bump: int) -> None:
    """Write and move the mtime on by whole seconds: a coarse filesystem clock must still see a change."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + bump))


async def test_an_edit_is_adopted_and_a_bad_one_is_reported_not_adopted(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(GOOD.format(replicas=1))
    seen = Recorder()
    watch = ConfigWatch(path, seen.adopt, seen.on_invalid, interval=0.02)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        assert seen.adopted == [] and seen.invalid == []  # nothing changed: nothing read
        touch(path, GOOD.format(replicas=3), 1)
        await seen.next()
        assert [c.service("web").replicas for c in seen.adopted] == [3]
        touch(path, GOOD.format(replicas=3).replace('"100m"', '"lots"'), 2)
        await seen.next()
        assert len(seen.adopted) == 1
        assert any('services "web": cpu' in str(p) for p in seen.invalid[0].problems)
    finally:
        task.cancel()


async def test_a_request_rereads_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(GOOD.format(replicas=2))
    seen = Recorder()
    watch = ConfigWatch(path, seen.adopt, seen.on_invalid, interval=60)  # only the request can wake it
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0)
        watch.request()
        await seen.next()
        assert [c.service("web").replicas for c in seen.adopted] == [2]
    finally:
        task.cancel()


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    seen = Recorder()
    watch = ConfigWatch(tmp_path / "gone.toml", seen.adopt, seen.on_invalid)
    assert watch.reload() is False
    assert seen.adopted == [] and "not found" in str(seen.invalid[0].problems[0])
