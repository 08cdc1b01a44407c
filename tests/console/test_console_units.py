"""The pure parts under the screens: formatting and derived numbers."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from console.derive import (
    Capacities,
    FleetSummary,
    action_counts,
    host_matcher,
    hosts_freed,
    requests_by_host,
    service_views,
    services_touched,
    summarize,
)
from console.formatting import age, bar, sparkline
from console.history import CpuHistory
from core.model import Action, ActionKind, ReplicaId


def test_bar_fills_in_eighths_and_caps_when_over_capacity() -> None:
    assert bar(0, 4, width=4).plain == "░░░░"
    assert bar(2, 4, width=4).plain == "██░░"
    assert bar(1, 16, width=4).plain == "▎░░░"
    over = bar(9, 4, width=4)
    assert over.plain == "████"
    assert "red" in str(over.spans[0].style)
    assert bar(0, 0, width=2).plain == "░░"


def test_sparkline_keeps_the_latest_samples_right_aligned() -> None:
    assert sparkline([0, 50, 100], 5) == "  ▁▅█"
    assert sparkline(list(range(0, 100, 10)), 3) == "▆▇█"


def test_age_picks_one_unit() -> None:
    assert [age(None), age(4.2), age(125), age(7300), age(90000)] == ["—", "4s", "2m", "2h", "1d"]


def test_filter_is_regex_or_plain_substring() -> None:
    assert host_matcher("^node-[ab] ")("node-a zone=eu-1")
    assert not host_matcher("^node-[ab] ")("node-c zone=eu-2")
    assert host_matcher("ZONE=EU")("node-a zone=eu-1")  # case-insensitive
    assert host_matcher("[eu")("x [eu-1")  # not a regex: a substring
    assert not host_matcher("[eu")("eu-1")


def test_requests_and_summary_follow_the_placement(fake: ModuleType) -> None:
    snap = fake.small_snapshot()
    loads = requests_by_host(snap.config, snap.placement)
    # node-c runs web/1, web/4 (0.5 each), api/1 (1), db/0 (2), worker/2 (0.75)
    assert loads["node-c"].cpu == 4750 and loads["node-c"].replicas == 5
    summary = summarize(snap, loads, Capacities())
    assert (summary.up, summary.suspect, summary.down) == (6, 1, 1)
    assert summary.requested.cpu == sum(x.cpu for x in loads.values())
    assert summary.capacity.cpu == (4 + 4 + 8 + 2 + 8 + 4) * 1000  # the six hosts that are up


def test_plan_figures(fake: ModuleType) -> None:
    plan = fake.small_snapshot().pending
    assert services_touched(plan) == ("cache", "web", "worker")
    assert hosts_freed(plan) == ("node-b", "node-g")
    assert action_counts(plan) == "9 moves, 0 starts, 0 stops, 0 restarts"


def test_action_counts_name_every_kind_of_action(fake: ModuleType) -> None:
    actions = tuple(Action(kind, ReplicaId("web", i), "node-a", "node-b") for i, kind in enumerate(ActionKind))
    plan = replace(fake.small_snapshot().pending, actions=actions + actions[-1:])
    assert action_counts(plan) == "1 move, 1 start, 1 stop, 2 restarts"


def test_service_views_explain_unplaced_replicas(fake: ModuleType) -> None:
    views = {v.name: v for v in service_views(fake.small_snapshot())}
    assert views["batch"].unplaced == {
        ReplicaId("batch", 0): 'batch has require={gpu="yes"} but no host has those labels'
    }
    assert views["web"].by_zone == {"eu-1": 2, "eu-2": 2, "eu-3": 2}
    assert views["worker"].running == 8 and views["worker"].healthy == 7  # worker/6 is on suspect node-g


def test_history_takes_one_sample_per_observation(fake: ModuleType) -> None:
    history = CpuHistory(length=3)
    snap = fake.small_snapshot()
    history.record(snap)
    history.record(snap)  # the same observation again: no new sample
    assert len(history.samples("node-a")) == 1
    for tick in range(1, 5):
        history.record(fake.small_snapshot(tick=tick))
    assert len(history.samples("node-a")) == 3
    assert history.samples("node-h") == ()  # down: no cpu figure


def test_the_header_says_which_controller_holds_the_cluster_when_this_one_stands_by(fake: ModuleType) -> None:
    from console.widgets.summary import summary_text
    from core.engine.fencing import ControllerStatus, Role
    from core.model import Resources, Token

    summary = FleetSummary(3, 0, 0, Resources(0, 0), Resources(0, 0))
    holder = Token(7, "123-456@ops\x1b[2J1")
    standby = replace(fake.small_snapshot(), read_only=True,
                      controller=ControllerStatus("9-9@me", Role.STANDBY, None, holder, 0.4))  # fmt: skip
    text = summary_text(standby, summary, read_only=True).plain
    # core.sanitize.printable, like every host-supplied string: the escape shown, never sent
    assert "STANDBY: 123-456@ops\\x1b[2J1 holds the cluster (epoch 7)" in text and "\x1b" not in text
    acting = replace(standby, read_only=False, controller=ControllerStatus("9-9@me", Role.ACTING, holder, holder, 0.1))
    assert "STANDBY" not in summary_text(acting, summary, read_only=False).plain


def test_readme_documents_every_console_key() -> None:
    """README's key table is the registry's: a new action without its README row fails here."""
    from pathlib import Path

    from console.actions import ACTIONS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Console keys", 1)[1].split("\n## ", 1)[0]
    missing = [a.title for a in ACTIONS if a.title not in section]
    assert not missing, f"add these to README's Console keys table: {missing}"
