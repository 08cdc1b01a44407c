"""Plans that read right when hosts are down (issue 12, item 12): the plan screen and `loadmaster plan` words.

INFEASIBLE is never shown next to "nothing to change"; OPTIMAL with a host gap says the bound is for any
placement (moves or not), not a contradiction; replicas on unreachable hosts wait, each with its reason."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from textual.widgets import Static

from console.app import LoadmasterApp
from console.plan_words import solver_words
from console.screens.plan import plan_line
from core.model import Plan, ReplicaId, SolverStatus
from tests.console.test_console_app import text_of

WAITS = "c is suspect (missed its polls): waits until it answers or is declared down"


def _plan(fake: ModuleType) -> Plan:
    pending = fake.small_snapshot().pending
    assert pending is not None
    return pending


def test_infeasible_with_no_action_never_says_nothing_to_change(fake: ModuleType) -> None:
    """Every host down: the plan screen said `nothing to change` next to `solver INFEASIBLE`."""
    plan = replace(_plan(fake), actions=(), status=SolverStatus.INFEASIBLE,
                   unplaced={ReplicaId("web", 0): "no host is up", ReplicaId("web", 1): "no host is up"})  # fmt: skip
    line = plan_line(plan).plain
    assert "nothing to change" not in line and "no action can help: 2 unplaced" in line
    assert solver_words(plan, "-").startswith(": 2 replicas cannot be placed")


def test_optimal_with_a_gap_says_what_it_is_optimal_for(fake: ModuleType) -> None:
    """`solver OPTIMAL, lower bound 2, gap 33.3%`: optimal for fewest moves; the bound is for any placement."""
    plan = replace(_plan(fake), status=SolverStatus.OPTIMAL, hosts_used=3, lower_bound=2, gap=1 / 3,
                   unplaced={}, reason="rebalance")  # fmt: skip
    words = solver_words(plan, "Shift+R repacks")
    assert words == " for fewest moves · uses 3 hosts; 2 could hold it all if replicas moved (Shift+R repacks)"
    assert "gap" not in words and "above optimal" not in words
    tight = replace(plan, hosts_used=2, gap=0.0)
    assert solver_words(tight, "-") == " · uses 2 hosts, the fewest possible"
    feasible = replace(plan, status=SolverStatus.FEASIBLE)
    assert "not proven" in solver_words(feasible, "-") and "at most 1 above 2" in solver_words(feasible, "-")


def test_nothing_to_do_while_replicas_wait_for_their_host(fake: ModuleType) -> None:
    waiting = {ReplicaId("web", 1): WAITS}
    plan = replace(_plan(fake), actions=(), unplaced={}, status=SolverStatus.OPTIMAL, waiting=waiting)
    line = plan_line(plan).plain
    host = plan.current.host_of(ReplicaId("web", 1))
    assert line == f"1 wait for unreachable {host}" and "nothing to change" not in line


async def test_the_plan_screen_lists_the_waiting_replicas_and_cuts_its_lines_at_80_columns(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    plan = replace(_plan(fake), waiting={ReplicaId("web", 1): WAITS})
    engine.publish(replace(engine.snapshot(), pending=plan))
    app = LoadmasterApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        listed = text_of(app.screen.query_one("#plan-unplaced", Static))
        assert f"1 replica wait for their host (no action touches them):\n  web/1: {WAITS}" in listed
        summary = app.screen.query_one("#plan-summary", Static)
        third = summary.render_line(2).text.rstrip()  # the solver's line, longer than 80 columns
        assert third.startswith("solver INFEASIBLE: 1 replica cannot be placed") and third.endswith("…")
