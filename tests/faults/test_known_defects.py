"""Faults today's code gets wrong (issue 10's defect list), run on real hosts and recorded.

Each is marked `xfail(strict=True)`: the suite stays green while the defect stands, and the
test turns red (XPASS) the day a fix makes it pass — whoever lands the fix removes the mark.
What each run showed on today's code is in the test's docstring.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.census import census
from tests.faults.scenario import DESIRED, FAILED_OVER_WITHIN, PLACED_WITHIN, SERVICES, busiest
from tests.faults.settle import count, until_exact

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, USER_HZ


def test_two_controllers_at_once_one_acts_and_nothing_doubles(netns_fleet, controllers, tmp_path):
    """Both daemons started together on one file and one journal; then a host crashes.

    Fixed by fencing (one holds the hosts' fences, the other stands by read-only). Before it
    (2026-12-01, 4 hosts, 8 replicas, 7 runs): both acted at the start in 6 (in the
    other, one found the other's replicas already running); in 2 runs one or two web replicas
    ran twice on one host — two sessions on one log file, one untracked, still there 45 s
    later. START is idempotent on a live record, so most races end in one copy, not all. At a
    crash both saw the host go at once and both failed it over (4 of 4 runs that got there)."""
    fleet = netns_fleet(4)
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES))
    home = tmp_path / "controller"
    pair = [controllers(config, home, name="first"), controllers(config, home, name="second")]

    def acting(since: list[int]) -> list[str]:
        return [c.name for c, m in zip(pair, since, strict=True) if any(
            e["event"] == "action.started" for e in c.events[m:])]  # fmt: skip

    phases: dict[str, list[str]] = {}
    try:
        until_exact(fleet, DESIRED, PLACED_WITHIN, hold=3)
        phases["start"] = acting([0, 0])
        marks = [len(c.events) for c in pair]
        fleet.crash(busiest(fleet))
        until_exact(fleet, DESIRED, FAILED_OVER_WITHIN, hold=3)
        phases["crash"] = acting(marks)
    finally:
        print(f"two controllers: acting {phases}; count {count(fleet, DESIRED)}")
    assert len(acting([0, 0])) == 1, f"controllers that acted: {phases}"


def test_failover_goes_on_with_the_journal_on_a_full_disk(netns_fleet, controllers, tmp_path):
    """The controller's journal directory on a 1 MiB tmpfs, filled to the last byte, then a host crashes.

    Before the fix: no host.down nor any other event within 8 s of the crash, its three replicas
    ran nowhere, and stderr held `sqlite3.OperationalError: database or disk is full` from
    Journal.log_event in the engine's tick. Now: journal.unwritable once, failover from memory."""
    fleet = netns_fleet(4)
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES))
    home = fleet.root / "controller"  # under the run's directory: teardown finds the mount
    with fleet.small_disk(home / ".loadmaster" / fleet.prefix, "1m") as disk:
        controller = controllers(config, home)
        until_exact(fleet, DESIRED, PLACED_WITHIN)
        filler = fleet.fill(disk)
        victim = busiest(fleet)
        mark = len(controller.events)
        fleet.crash(victim)
        try:
            controller.wait_for(lambda e: e["event"] == "host.down" and e.get("host") == victim, 8, after=mark)
            until_exact(fleet, DESIRED, FAILED_OVER_WITHIN)
        finally:
            print(f"disk full: events after the crash {[e['event'] for e in controller.events[mark:]]}; "
                  f"count {count(fleet, DESIRED)}; stderr {controller.stderr_tail(300)!r}")  # fmt: skip
            filler.unlink()
            controller.terminate(timeout=15)


def test_a_hostile_host_is_contained(netns_fleet, controllers, tmp_path):
    """h4's probe answers `F 1 / this is not a frame / E` as fast as `yes` prints it.

    Before the fix (2026-12-01): 7.4–19 MB of stderr in 10 s (a warning per frame), 44–100% of a
    core, no event about h4, and SIGTERM took 9 s or more. With the stream guard
    (core/hostlink/guard.py): 0 bytes of stderr, ~1% of a core, one `host.misbehaving`, exit in
    0.7 s. The other hosts ran every replica once either way."""
    fleet = netns_fleet(4, hostile=("h4",))
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES))
    controller = controllers(config, tmp_path / "controller")
    controller.wait_for("daemon.started", PLACED_WITHIN)
    cpu0, t0 = cpu_seconds(controller.proc.pid), time.monotonic()
    time.sleep(10)
    cpu = (cpu_seconds(controller.proc.pid) - cpu0) / (time.monotonic() - t0)
    stderr = controller.stderr_bytes()
    about_h4 = [e["event"] for e in controller.events if e.get("host") == "h4"]
    on_h4 = [r for r, copies in census(fleet.pids()).items() if any(c.host == "h4" for c in copies)]
    stopped = time.monotonic()
    status = controller.terminate(timeout=10)
    exit_s = time.monotonic() - stopped
    print(f"hostile host: {stderr} bytes of stderr in 10 s, {cpu:.0%} of a core, h4 events {about_h4}, "
          f"SIGTERM → exit {status} in {exit_s:.1f} s; count {count(fleet, DESIRED)}")  # fmt: skip
    assert stderr < 64 * 1024, f"{stderr} bytes of stderr in 10 s"
    assert cpu < 0.5, f"the controller used {cpu:.0%} of a core"
    assert status == 0, "SIGTERM did not stop the controller within 10 s"
    assert len(about_h4) == 1, f"h4 should be reported once as misbehaving, got {about_h4}"
    assert not on_h4 and not count(fleet, DESIRED, without=["h4"])


def test_a_host_lying_about_its_memory_blocks_only_itself(netns_fleet, controllers, tmp_path):
    """h4 (capacity probed) reads a fake /proc/meminfo with a negative MemTotal.

    Before the fix (2026-12-01): nothing was placed anywhere in 45 s; stderr held `InvalidProblem:
    cannot plan: host "h4": reserve is larger than its capacity in mem` (no reserve is set) and no
    event said so. Now the frame is refused where it is read: one `host.misbehaving` event for h4
    (`MemTotal kB -4194304 is impossible`), and the other hosts run everything."""
    lie = "MemTotal:       -4194304 kB\nMemFree:        -1 kB\nMemAvailable:   -1 kB\n"
    fleet = netns_fleet(4, fake_proc={"h4": {"meminfo": lie}})
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES, probed=("h4",)))
    controller = controllers(config, tmp_path / "controller")
    try:
        until_exact(fleet, DESIRED, 25, without=["h4"])  # placing takes ~5 s; today it never happens
        assert not count(fleet, DESIRED), "nothing may run on h4"
    finally:
        print(f"lying host: events {[(e['event'], e.get('host')) for e in controller.events][:20]}; "
              f"count {count(fleet, DESIRED)}; stderr {controller.stderr_tail(300)!r}")  # fmt: skip
