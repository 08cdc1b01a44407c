"""core.engine.config_watch: what every front end uses to follow the cluster file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from core import config as config_io
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


H1 = '[[hosts]]\nname = "h1"\naddress = "10.0.0.1"\n'
TWO_HOSTS = GOOD.replace(H1, H1 + '\n[[hosts]]\nname = "h2"\naddress = "10.0.0.2"\n')


async def test_a_half_written_file_is_not_read_until_it_is_stable(tmp_path: Path) -> None:
    """Issue 10 defect 5: the first bytes of a file being written parsed as 2 hosts and 0 services, and
    the daemon adopted them within 2 s (then applied a plan of 15 stops)."""
    path = tmp_path / "cluster.toml"
    full = TWO_HOSTS.format(replicas=3)
    prefix = full[: full.index("[[services]]")]
    alone = config_io.parse(prefix)
    assert len(alone.hosts) == 2 and alone.services == ()  # the prefix alone is a valid file
    path.write_text(full)
    os.utime(path, (0, 0))  # an old, settled file
    seen = Recorder()
    watch = ConfigWatch(path, seen.adopt, seen.on_invalid, interval=0.02)  # the default settle
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        with path.open("w") as out:  # a writer that stops for a moment mid-file
            out.write(prefix)
            out.flush()
            await asyncio.sleep(0.4)
            out.write(full[len(prefix) :])
        await seen.next()
        assert [len(c.services) for c in seen.adopted] == [1], "a half-written file was adopted"
        assert seen.invalid == []
    finally:
        task.cancel()


async def test_nothing_a_file_holds_ends_the_watch(tmp_path: Path) -> None:
    """Issue 10 defect 9: a deeply nested file raised RecursionError in the reloader, and no edit or
    SIGHUP was seen after it."""
    path = tmp_path / "cluster.toml"
    path.write_text(GOOD.format(replicas=1))
    seen = Recorder()
    watch = ConfigWatch(path, seen.adopt, seen.on_invalid, interval=0.02, settle=0.05)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        touch(path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n", 1)
        await seen.next()
        assert "nests arrays or tables more than" in str(seen.invalid[0])
        touch(path, GOOD.format(replicas=4), 2)
        await seen.next()
        assert [c.service("web").replicas for c in seen.adopted] == [4] and not task.done()
    finally:
        task.cancel()
