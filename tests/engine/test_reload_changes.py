"""Issue 12, item 1 (the engine's half): a reload says what changed, and `auto_apply` in the file takes effect."""

from __future__ import annotations

from core import config as config_io
from core.engine.config_changes import config_changes
from core.engine.events import EventKind
from tests.engine.conftest import SMALL


def edited(text: str) -> str:
    return (
        text.replace(
            'replicas = 3\ncpu = 1\nmem = "1GiB"\nmax_per_host = 1',
            'replicas = 5\ncpu = 1\nmem = "1GiB"\nmax_per_host = 2',
        )
        .replace('settle = "0s"', 'settle = "0s"\nauto_apply = true')
        .replace('[[services]]\nname = "db"', '[[services]]\nname = "cache"\ncommand = "sleep 9"\nreplicas = 1\n'
                 'cpu = 1\nmem = "1GiB"\n\n[[services]]\nname = "db2"')
    )  # fmt: skip


def test_changes_name_services_added_removed_scaled_constraints_and_policy():
    before = config_io.parse(SMALL, "c.toml")
    after = config_io.parse(edited(SMALL), "c.toml")
    assert config_changes(before, after) == [
        "service cache added (1 replicas)",
        "service db2 added (1 replicas)",
        "service db removed",
        "web scaled 3 → 5",
        "web constraints: max_per_host 1 → 2",
        "policy auto_apply false → true",
    ]
    assert config_changes(before, before) == []


async def test_reload_reports_the_changes_and_follows_auto_apply(engine_of, small_config):
    engine, _fleet = await engine_of(small_config)
    assert engine.auto_apply is False
    queue = engine.subscribe()
    changes = engine.reload(config_io.parse(edited(SMALL), "c.toml"))
    assert "web scaled 3 → 5" in changes
    assert engine.auto_apply is True and engine.snapshot().auto_apply is True
    event = next(e for e in iter(queue.get_nowait, None) if e.kind is EventKind.CONFIG_RELOADED)
    assert "web scaled 3 → 5; web constraints: max_per_host 1 → 2" in event.message
    assert event.data["changes"] == changes


async def test_an_auto_apply_flag_wins_over_the_file(engine_of, small_config):
    engine, _fleet = await engine_of(small_config, auto_apply=False)
    engine.reload(config_io.parse(edited(SMALL), "c.toml"))
    assert engine.auto_apply is False
