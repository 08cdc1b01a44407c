"""Faults on real OpenSSH hosts, with the real daemon: each ends by counting real processes.

A fleet of namespaced sshd hosts (tests/faults/netns.py), `loadmaster run --headless
--auto-apply` as a process, and the end state checked on the hosts themselves: every
declared replica runs exactly once, counted as sessions per replica log file
(tests/faults/census.py), and stays so for a few seconds.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from core.model import ReplicaId
from tests.faults.census import census
from tests.faults.scenario import DESIRED, FAILED_OVER_WITHIN, PLACED_WITHIN, SERVICES, busiest, placed
from tests.faults.settle import count, until_exact

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


def test_crashed_host_fails_over_and_its_reboot_doubles_nothing(netns_fleet, controllers, tmp_path):
    fleet, controller = placed(netns_fleet, controllers, tmp_path)
    victim = busiest(fleet)
    mark = len(controller.events)
    fleet.crash(victim)
    assert fleet.pids()[victim] == [] and not fleet.answers(victim)
    mttr = until_exact(fleet, DESIRED, FAILED_OVER_WITHIN)
    controller.wait_for(lambda e: e["event"] == "host.down" and e.get("host") == victim, 5, after=mark)

    # The host boots with its disk as it was: the records of its dead replicas must start nothing.
    fleet.heal(victim)
    controller.wait_for(lambda e: e["event"] == "host.up" and e.get("host") == victim, 20, after=mark)
    until_exact(fleet, DESIRED, 10, hold=4)
    print(f"crash: {victim} failed over in {mttr:.2f} s")


@pytest.mark.parametrize("how", ["nft", "link"])
def test_partitioned_host_fails_over_and_heals_to_one_copy_each(netns_fleet, controllers, tmp_path, how):
    fleet, controller = placed(netns_fleet, controllers, tmp_path)
    victim = busiest(fleet)
    mark = len(controller.events)
    fleet.partition(victim, how)
    assert not fleet.answers(victim)
    # Cut off, its copies run on unseen: the rest of the fleet must run every replica once.
    mttr = until_exact(fleet, DESIRED, FAILED_OVER_WITHIN, without=[victim])
    assert fleet.pids()[victim], "a partition must not kill the host's processes"
    controller.wait_for(lambda e: e["event"] == "host.down" and e.get("host") == victim, 5, after=mark)

    fleet.heal(victim)
    controller.wait_for(lambda e: e["event"] == "host.up" and e.get("host") == victim, 30, after=mark)
    # Back, its stale copies duplicate the failed-over ones until the controller stops them.
    until_exact(fleet, DESIRED, 15, hold=4)
    print(f"partition ({how}): {victim} failed over in {mttr:.2f} s")


def test_hung_host_fails_over_and_its_frozen_copies_are_stopped_when_it_wakes(netns_fleet, controllers, tmp_path):
    fleet, controller = placed(netns_fleet, controllers, tmp_path)
    victim = busiest(fleet)
    mark = len(controller.events)
    fleet.hang(victim)
    assert any(c.stopped for copies in census(fleet.pids()).values() for c in copies if c.host == victim)
    # Frozen copies are alive but not running: failover must run every replica on a live host.
    mttr = until_exact(fleet, DESIRED, FAILED_OVER_WITHIN)
    controller.wait_for(lambda e: e["event"] == "host.down" and e.get("host") == victim, 5, after=mark)

    fleet.heal(victim)
    controller.wait_for(lambda e: e["event"] == "host.up" and e.get("host") == victim, 30, after=mark)
    until_exact(fleet, DESIRED, 15, hold=4)
    print(f"hang: {victim} failed over in {mttr:.2f} s")


def test_controller_killed_mid_apply_restarts_and_rolls_forward_exactly_once(netns_fleet, controllers, tmp_path):
    fleet = netns_fleet(4)
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES))
    home = tmp_path / "controller"
    first = controllers(config, home, name="first")
    first.wait_for("action.done", PLACED_WITHIN)
    first.kill9()
    at_kill = census(fleet.pids())
    assert len(at_kill) < len(DESIRED), f"the kill came after the apply: {len(at_kill)} replicas already ran"

    # Same HOME, so the same journal: the unfinished plan is rolled forward, nothing started twice.
    second = controllers(config, home, name="second")
    until_exact(fleet, DESIRED, PLACED_WITHIN, hold=5)
    assert second.proc.poll() is None
    print(f"kill -9 mid-apply: {len(at_kill)}/{len(DESIRED)} ran at the kill")


def test_controller_killed_mid_failover_restarts_and_finishes_it_exactly_once(netns_fleet, controllers, tmp_path):
    fleet, first = placed(netns_fleet, controllers, tmp_path)
    victim = busiest(fleet)
    mark = len(first.events)
    fleet.crash(victim)
    first.wait_for("failover.started", FAILED_OVER_WITHIN, after=mark)
    first.kill9()
    missing = count(fleet, DESIRED)
    assert missing, "the kill came after the failover had finished"

    second = controllers(tmp_path / "cluster.toml", tmp_path / "controller", name="second")
    until_exact(fleet, DESIRED, PLACED_WITHIN, hold=3)
    fleet.heal(victim)  # it boots with the records of replicas that now run elsewhere
    second.wait_for(lambda e: e["event"] == "host.up" and e.get("host") == victim, 20)
    until_exact(fleet, DESIRED, 10, hold=4)
    assert second.proc.poll() is None
    print(f"kill -9 mid-failover: at the kill {missing}")


def test_controller_restarted_during_a_partition_stops_the_stale_copies_when_it_heals(
    netns_fleet, controllers, tmp_path
):
    """The new controller never saw the cut-off host: it places that host's replicas elsewhere,
    and when the host is back its copies (still running all along) must go, not the new ones."""
    fleet, first = placed(netns_fleet, controllers, tmp_path)
    victim = busiest(fleet)
    assert first.terminate() == 0
    fleet.partition(victim)
    second = controllers(tmp_path / "cluster.toml", tmp_path / "controller", name="second")
    until_exact(fleet, DESIRED, PLACED_WITHIN, without=[victim])
    fleet.heal(victim)
    second.wait_for(lambda e: e["event"] == "host.up" and e.get("host") == victim, 30)
    until_exact(fleet, DESIRED, 15, hold=4)


def test_controller_cut_off_from_every_host_doubles_nothing_when_the_network_returns(
    netns_fleet, controllers, tmp_path
):
    """Every host down at once (the controller's own network failed): nothing can be placed;
    when the network returns every replica is still running exactly once."""
    fleet, controller = placed(netns_fleet, controllers, tmp_path)
    mark = len(controller.events)
    for host in fleet.hosts:
        fleet.partition(host.name, "link")
    for host in fleet.hosts:
        controller.wait_for(lambda e, h=host.name: e["event"] == "host.down" and e.get("host") == h, 10, after=mark)
    assert not count(fleet, DESIRED)  # cut off, not dead
    for host in fleet.hosts:
        fleet.heal(host.name)
    for host in fleet.hosts:
        controller.wait_for(lambda e, h=host.name: e["event"] == "host.up" and e.get("host") == h, 30, after=mark)
    until_exact(fleet, DESIRED, 15, hold=4)


def test_a_replica_killed_on_its_host_is_restarted_once(netns_fleet, controllers, tmp_path):
    """The census sees what the controller must: a replica whose processes died runs again, once."""
    fleet, _controller = placed(netns_fleet, controllers, tmp_path)
    copies = census(fleet.pids())
    replica = ReplicaId("db", 0)
    (copy,) = copies[replica]
    started = time.monotonic()
    os.killpg(copy.session, signal.SIGKILL)  # its session leader leads its process group too
    deadline = time.monotonic() + 5
    while any(c.session == copy.session for c in census(fleet.pids()).get(replica, [])):
        assert time.monotonic() < deadline, f"{replica} outlived SIGKILL"
        time.sleep(0.05)
    until_exact(fleet, DESIRED, 15, hold=3)
    print(f"replica killed: back in {time.monotonic() - started:.2f} s")
