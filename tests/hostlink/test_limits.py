"""Enforced limits (issue 11, build 5) on real processes: cgroup v1 as root here (a demo host runs START
as the test's user), and the `none` path through a real sshd's unprivileged login."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

import psutil

from core.hostlink import limits
from core.model import ReplicaId, Resources
from tests.hostlink import test_runtime
from tests.hostlink.helpers import alive, cluster, fleet_for, service, until
from tests.hostlink.test_runtime import Target
from tests.sshd import missing

target, name = test_runtime.target, test_runtime.name

HOG = "exec python3 -c 'import time; b = bytearray(200 << 20); time.sleep(60)'"
SPIN = "exec sh -c 'while :; do :; done'"


def _root_here(target: Target) -> bool:
    return target.user is None  # a demo host runs commands as this process's user


async def test_memory_and_cpu_are_enforced_where_the_host_can_and_none_is_reported_where_not(
    target: Target, name: str
) -> None:
    cfg = dataclasses.replace(cluster(name, target.host("a")), enforce_limits=True)
    hog = dataclasses.replace(service("hog", HOG), resources=Resources(500, 64 << 20))
    spin = dataclasses.replace(service("spin", SPIN), resources=Resources(250, 64 << 20))
    fleet = fleet_for(target, dataclasses.replace(cfg, services=(hog, spin)))
    await fleet.start()
    try:
        await until(lambda: fleet.observations()["a"].enforcement is not None, 5, "the host's enforcement")
        enforcement = fleet.observations()["a"].enforcement
        if not _root_here(target):
            assert enforcement == "none"  # the sshd's login is not root: nothing may be limited, and it says so
            status = await fleet.start_replica("a", hog, 0, "g")  # runs all the same, unlimited
            await asyncio.sleep(1.5)
            assert alive(status.pid) and psutil.Process(status.pid).memory_info().rss > 150 << 20
            return
        if os.geteuid() != 0 or limits.detect() == "none":
            missing("enforcement needs root and writable cgroups (cgroup v1 or v2)")
        assert enforcement == limits.detect() != "none"
        # memory: the kernel kills it, and the host reports why it is gone
        status = await fleet.start_replica("a", hog, 0, "g")
        await until(lambda: not alive(status.pid), 10, "the hog killed by the kernel")
        await until(
            lambda: any(r.replica == ReplicaId("hog", 0) and r.oom_killed for r in fleet.observations()["a"].replicas),
            5, "hog/0 reported oom-killed",
        )  # fmt: skip
        # cpu: 250m holds a spinning replica to about a quarter of a core
        status = await fleet.start_replica("a", spin, 0, "g")
        proc = psutil.Process(status.pid)
        await asyncio.sleep(0.5)
        before, start = sum(proc.cpu_times()[:2]), time.monotonic()
        await asyncio.sleep(3)
        share = (sum(proc.cpu_times()[:2]) - before) / (time.monotonic() - start)
        print(f"spin at 250m: {share:.3f} of a core over 3 s")
        assert 0.15 <= share <= 0.32, share
        # stopping removes the replica's cgroups
        state = target.home / ".loadmaster" / name
        cid = (state / "cgroup.id").read_text().strip()
        made = [p for p in Path("/sys/fs/cgroup").glob(f"**/loadmaster/{cid}/*") if p.is_dir()]
        assert len(made) == 2 * (2 if limits.detect() == "cgroup1" else 1), made  # hog's stays until cleaned
        await fleet.stop_replica("a", ReplicaId("spin", 0), grace=1)
        await fleet.stop_replica("a", ReplicaId("hog", 0), grace=0)
        assert not list(Path("/sys/fs/cgroup").glob(f"**/loadmaster/{cid}"))  # the cluster's own went with its last
    finally:
        await fleet.close()
