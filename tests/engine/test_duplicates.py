"""Two [[hosts]] entries that are one machine (issue 12, item 13).

On a real sshd both entries name the same server and user, so they share one state directory and each reports
every replica: the second is excluded with the reason, what it reports is not counted again, and nothing is
started or stopped through it. What makes two entries one machine is one boot of one kernel and one directory
(device and inode): not the directory's path, which hosts in network namespaces share without sharing the
directory (tests/faults/test_duplicates.py runs that on namespaced sshd hosts)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from console.derive import down_reason
from core.engine.duplicates import duplicate_hosts
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.hostlink.fleet import Fleet
from core.hostlink.frames import parse_frame
from core.model import Host, HostObservation, HostState, MachineIdentity, ReplicaId, Resources, Service
from tests.hostlink.helpers import cluster, until

BOOT = "45897791-748e-4299-98be-9fce08fa4a00"
MACHINE = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def processes(command: str) -> int:
    out = subprocess.run(["pgrep", "-xf", command], capture_output=True, text=True)
    return len(out.stdout.split())


def seen(name: str, identity: MachineIdentity | None) -> HostObservation:
    return HostObservation(name, HostState.UP, 0.0, identity=identity)


def test_one_boot_and_one_directory_is_one_machine_whatever_the_path() -> None:
    config = cluster("c", *(Host(n, f"10.0.0.{i}") for i, n in enumerate(("a", "b", "c", "d", "e"), 1)))
    path = "/home/u/.loadmaster/c"
    observations = {
        "a": seen("a", MachineIdentity(MACHINE, BOOT, "2049:100", path)),
        # another namespace (or machine) with the same path, its own directory: not a duplicate
        "b": seen("b", MachineIdentity(MACHINE, BOOT, "2049:200", path)),
        # a VM cloned from a's image: same machine id, same inode, another boot: not a duplicate
        "c": seen("c", MachineIdentity(MACHINE, "0" * 8 + BOOT[8:], "2049:100", path)),
        # a's directory under another name (a symlink, another address of one host): one machine
        "d": seen("d", MachineIdentity(MACHINE, BOOT, "2049:100", "/srv/state")),
        "e": seen("e", None),  # an older probe, or nothing known: never taken for another's
    }
    found = duplicate_hosts(config, observations)
    assert list(found) == ["d"]
    assert found["d"].startswith('the same machine as "a" (machine id 3d1219c7c4c5…, state directory /srv/state')
    assert "device:inode 2049:100" in found["d"] and "remove one from cluster.toml" in found["d"]


def test_the_probe_frame_says_which_boot_and_directory() -> None:
    frame = "F 1\ncpu 1 2 3 4\nmem 100 50\nload 0.1\nup 5.0 1.0\nncpu 2 100\nid {}\nE\n"
    got = parse_frame(frame.format(f"{MACHINE} {BOOT} 2049:1234 /home/u/my dir")).identity
    assert got == MachineIdentity(MACHINE, BOOT, "2049:1234", "/home/u/my dir")
    no_machine_id = MachineIdentity(None, BOOT, "2049:1234", "/x")
    assert parse_frame(frame.format(f"- {BOOT} 2049:1234 /x")).identity == no_machine_id
    assert parse_frame(frame.format(f"{MACHINE} - 2049:1234 /x")).identity is None  # no boot id: not compared
    assert parse_frame(frame.format(f"{MACHINE} {BOOT} - /x")).identity is None  # no directory: not compared
    assert parse_frame(frame.format(f"{MACHINE} /x")).identity is None  # the probe of d86d461: not compared
    assert parse_frame(frame.replace("id {}\n", "")).identity is None  # an older probe


def test_the_row_says_duplicate() -> None:
    why = 'excluded from planning: the same machine as "a" (machine id 3d1219c7c4c5…, state directory /x)'
    assert down_reason(HostObservation("b", HostState.UP, 0.0, error=why)) == "duplicate"


async def test_the_shell_probe_reports_this_boot_and_the_directory_itself(sshd) -> None:
    name = f"d{random.randint(10_000, 99_999)}"
    config = cluster(name, sshd.host("a"))
    fleet = Fleet(config, known_hosts=sshd.known_hosts, client_keys=[sshd.client_key])
    await fleet.start()
    try:
        await until(lambda: fleet.observations()["a"].identity is not None, 15, lambda: str(fleet.observations()))
        identity = fleet.observations()["a"].identity
    finally:
        await fleet.close()
    state = sshd.home / ".loadmaster" / name
    try:
        st = os.stat(state)  # made by the probe if it was not there (the first start would make it)
        assert identity == MachineIdentity(
            Path("/etc/machine-id").read_text().strip() if Path("/etc/machine-id").exists() else None,
            Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            f"{st.st_dev}:{st.st_ino}",
            str(state),
        )
    finally:
        subprocess.run(["rm", "-rf", str(state)], check=False)


async def test_a_second_entry_for_one_machine_is_excluded_and_its_reports_not_counted(sshd, tmp_path) -> None:
    command = f"sleep {random.randint(100_000, 999_999)}"
    # the case: one machine under two names (two addresses of one sshd would be the same)
    base = cluster(f"d{random.randint(10_000, 99_999)}", sshd.host("a"), sshd.host("b"))
    caps = Resources(2000, 2 << 30)
    config = replace(
        base,
        hosts=tuple(replace(h, capacity=caps) for h in base.hosts),
        services=(Service("web", command, 2, Resources(100, 64 << 20)),),
    )
    fleet = Fleet(config, known_hosts=sshd.known_hosts, client_keys=[sshd.client_key])
    engine = Engine(config, fleet, Journal(tmp_path / "j.db"), auto_apply=True, workers=1)
    queue = engine.subscribe()
    await engine.start(first_contact_timeout=10)
    try:
        deadline = time.monotonic() + 30
        while engine.snapshot().running() != {ReplicaId("web", 0): ["a"], ReplicaId("web", 1): ["a"]}:
            assert time.monotonic() < deadline, f"not placed once on a: {engine.snapshot().running()}"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # a few more ticks: nothing starts a third copy or stops one
        assert processes(command) == 2
        assert engine.snapshot().running() == {ReplicaId("web", 0): ["a"], ReplicaId("web", 1): ["a"]}
        row = engine.snapshot().hosts["b"]
        assert row.state is HostState.UP and row.error is not None
        assert 'the same machine as "a"' in row.error and "remove one from" in row.error
        assert down_reason(row) == "duplicate"
        events = []
        while not queue.empty():
            events.append(queue.get_nowait())
        assert any(e.kind is EventKind.HOST_EXCLUDED and e.host == "b" for e in events)
        assert not any(e.kind is EventKind.REPLICA_CRASHED for e in events)
    finally:
        await engine.close(grace=10)
        subprocess.run(["pkill", "-xf", command], check=False)
