"""The fault harness itself: its faults are real, and it leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.census import census
from tests.faults.netns import NetnsFleet, leftovers, sweep_stale, unavailable
from tests.sshd import missing, require_tool

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


def start_replica(fleet: NetnsFleet, host: str, name: str) -> None:
    """A process shaped like a replica (a setsid session whose stdout is its log file)."""
    log = f"~/.loadmaster/x/logs/{name.encode().hex()}.0.log"
    out = fleet.ssh(host, f"mkdir -p ~/.loadmaster/x/logs && setsid sh -c 'exec sleep 3600' >{log} 2>&1 </dev/null &")
    assert out.returncode == 0, out.stderr


def test_hosts_are_apart_and_faults_do_what_they_say(netns_fleet):
    require_tool("ssh")
    fleet = netns_fleet(3, hostile=("h3",))
    # Each host has its own process list, home and load; the login user is not root.
    out = fleet.ssh("h1", "id -u; echo $HOME; cat /proc/loadavg; ls /proc | grep -c '^[0-9]'")
    uid, home, load, nprocs = out.stdout.split("\n")[:4]
    assert uid != "0" and home == "/home/lmfault" and load.startswith("0.10 ") and int(nprocs) < 10, out
    start_replica(fleet, "h1", "a")
    start_replica(fleet, "h2", "b")
    assert fleet.ssh("h2", "ls ~/.loadmaster/x/logs").stdout.split() == ["62.0.log"]  # h2's disk only
    assert [(c.host, c.stopped) for cs in census(fleet.pids()).values() for c in cs] == [("h1", False), ("h2", False)]
    # A hostile host's probe is garbage; its other commands run as sent.
    assert fleet.ssh("h3", "echo plain").stdout == "plain\n"

    fleet.partition("h1", "nft")
    assert not fleet.answers("h1") and fleet.answers("h2")
    assert len(census(fleet.pids())) == 2  # cut off, not dead
    fleet.heal("h1")
    assert fleet.answers("h1")

    fleet.partition("h1", "link")
    assert not fleet.answers("h1")
    fleet.heal("h1")
    assert fleet.answers("h1")

    fleet.hang("h2")
    assert not fleet.answers("h2")
    assert all(c.stopped for cs in census(fleet.pids()).values() for c in cs if c.host == "h2")
    fleet.heal("h2")
    assert fleet.answers("h2", timeout=3)

    fleet.crash("h1")
    assert fleet.pids()["h1"] == [] and not fleet.answers("h1")
    fleet.heal("h1")  # boots with its disk kept, its processes gone
    assert fleet.answers("h1")
    assert fleet.ssh("h1", "ls ~/.loadmaster/x/logs").stdout.split() == ["61.0.log"]
    assert [c.host for cs in census(fleet.pids()).values() for c in cs] == ["h2"]


def test_a_small_disk_fills_and_frees(netns_fleet, tmp_path):
    fleet = netns_fleet(1)
    with fleet.small_disk(fleet.root / "disk", "256k") as disk:
        filler = fleet.fill(disk)
        with pytest.raises(OSError):
            (disk / "more").write_bytes(b"x" * 8192)
        filler.unlink()
        (disk / "more").write_bytes(b"x" * 8192)
    assert f" {disk} " not in Path("/proc/self/mounts").read_text()


def test_teardown_leaves_nothing_even_mid_fault(netns_fleet):
    fleet = netns_fleet(3)
    start_replica(fleet, "h1", "a")
    fleet.partition("h1", "nft")
    fleet.partition("h2", "link")
    fleet.hang("h3")
    with fleet.small_disk(fleet.root / "disk"):
        assert leftovers(fleet.prefix)  # the check sees a live run
        fleet.close()  # inside the mount's block: teardown takes the mount too
    assert leftovers(fleet.prefix) == []


def test_a_killed_run_is_swept_by_the_next(tmp_path):
    """A run killed with -9 leaves its namespaces, processes, table and controllers; the next run
    removes them."""
    if (problem := unavailable()) is not None:
        missing(problem)
    script = (
        "import sys, time; from pathlib import Path; from tests.faults.netns import NetnsFleet\n"
        "import os, subprocess; from tests.faults.netns import run_env\n"
        "f = NetnsFleet(Path(sys.argv[1]) / f'lmf{os.getpid()}', 2); f.start()\n"
        "subprocess.Popen(['sleep', '600'], env={**os.environ, **run_env()})  # as a controller would be\n"
        "f.partition('h1'); print(f.prefix, flush=True); time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    prefix = proc.stdout.readline().strip()
    assert prefix == f"lmf{proc.pid}", prefix
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    assert any(item.startswith("process ") for item in leftovers(prefix))
    assert any(item.startswith("nft table ") for item in leftovers(prefix))
    assert any("marked" in item for item in leftovers(prefix))
    assert prefix in sweep_stale()
    assert leftovers(prefix) == []
    assert prefix != f"lmf{os.getpid()}"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("false", "1 skipped")])
def test_where_namespaces_cannot_be_made_ci_fails_with_the_reason(ci, outcome):
    """Run as an unprivileged user, a fault test fails under CI=true saying why, and skips elsewhere."""
    if os.geteuid() != 0:
        missing("this test drops root to show the rule; it runs as root")  # fails under CI=true, which runs as root
    setpriv = require_tool("setpriv", "util-linux")
    root = Path(__file__).resolve().parents[2]
    test = f"{root}/tests/faults/test_harness.py::test_a_small_disk_fills_and_frees"
    out = subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "pytest", "-q", "-rs",
         "-p", "no:cacheprovider", "--rootdir", str(root), "-c", str(root / "pyproject.toml"), test],
        cwd=root, env={**os.environ, "CI": ci}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert outcome in out.stdout, out.stdout[-2000:]
    assert "network namespaces and a test login user need root" in out.stdout
    assert (out.returncode != 0) == (ci == "true")
