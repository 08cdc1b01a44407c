"""`loadmaster logs` against a real OpenSSH sshd: from the host that runs the replica, and after it stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from console.cli import main
from core.hostlink import scripts
from core.model import ClusterConfig, ReplicaId, Service
from tests.hostlink.helpers import cluster, fleet_for, fresh_cluster, service
from tests.sshd import Sshd

pytestmark = pytest.mark.sshd

CMD = "i=0; while [ $i -lt 5 ]; do i=$((i + 1)); printf 'line %s \\033[31mred\\033[0m\\n' $i; done; exec sleep 60"


def _file(tmp_path: Path, sshd: Sshd, name: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(
        f'[cluster]\nname = "{name}"\npoll_interval = "0.5s"\n'
        f'[defaults]\nknown_hosts = "{sshd.known_hosts}"\nidentity_file = "{sshd.client_key}"\n'
        f'[[hosts]]\nname = "a"\naddress = "{sshd.address}"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'[[services]]\nname = "talk"\ncommand = "sleep 1"\ncpu = "100m"\nmem = "16MiB"\n'
    )
    return path


def test_logs_prints_the_last_lines_from_where_the_replica_runs_and_after_it_stopped(
    sshd: Sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in fresh_cluster(sshd):
        path = _file(tmp_path, sshd, name)
        svc = service("talk", CMD)
        cfg = dataclasses.replace(cluster(name, sshd.host("a")), services=(svc,))
        _logs_of(sshd, path, cfg, svc, capsys)


def _logs_of(sshd: Sshd, path: Path, cfg: ClusterConfig, svc: Service, capsys: pytest.CaptureFixture[str]) -> None:
    async def act(stop: bool) -> None:
        fleet = fleet_for(sshd, cfg)
        await fleet.start()
        try:
            if stop:
                await fleet.stop_replica("a", ReplicaId("talk", 0), grace=1)
            else:
                await fleet.start_replica("a", svc, 0, "g")
                await asyncio.sleep(0.5)
        finally:
            await fleet.close()

    asyncio.run(act(stop=False))
    assert main(["logs", "-c", str(path), "talk/0", "-n", "2"]) == 0
    out, err = capsys.readouterr()
    # the host's bytes, with the escape shown rather than obeyed
    assert out == "line 4 \\x1b[31mred\\x1b[0m\nline 5 \\x1b[31mred\\x1b[0m\n", out
    assert "talk/0 on a" in err
    asyncio.run(act(stop=True))
    assert main(["logs", "-c", str(path), "talk/0", "-n", "1"]) == 0  # stopped: its last host's log
    assert capsys.readouterr().out == "line 5 \\x1b[31mred\\x1b[0m\n"
    assert main(["logs", "-c", str(path), "nope/0"]) == 1
    assert '"nope" is not a service' in capsys.readouterr().err
    assert main(["logs", "-c", str(path), "talk/7"]) == 1
    assert "talk/7 is not running and no reachable host has its log" in capsys.readouterr().err


# ticks for 8 s, then quiet: at Ctrl-C the follower on the host cannot be ended by a failed write
TICK = "i=0; while [ $i -lt 40 ]; do i=$((i + 1)); echo tick $i; sleep 0.2; done; exec sleep 60"


def _started(sshd: Sshd, cfg: ClusterConfig, svc: Service) -> None:
    async def start() -> None:
        fleet = fleet_for(sshd, cfg)
        await fleet.start()
        try:
            await fleet.start_replica("a", svc, 0, "g")
        finally:
            await fleet.close()

    asyncio.run(start())


@pytest.mark.timeout(60)
def test_logs_follow_prints_new_lines_as_written_and_ctrl_c_ends_it_on_both_sides(sshd: Sshd, tmp_path: Path) -> None:
    for name in fresh_cluster(sshd):
        path = _file(tmp_path, sshd, name)
        svc = service("talk", TICK)
        _started(sshd, dataclasses.replace(cluster(name, sshd.host("a")), services=(svc,)), svc)
        log = str(sshd.home / ".loadmaster" / name / "logs" / f"{scripts.hexed('talk')}.0.log")
        cmd = [sys.executable, "-m", "console.cli", "logs", "-c", str(path), "talk/0", "-f", "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ticks = [int(proc.stdout.readline().split()[1])]
            while ticks[-1] < 40:
                ticks.append(int(proc.stdout.readline().split()[1]))
            # the last line written, then each new one as it is written, none lost or repeated
            assert ticks[0] <= 35 and ticks == list(range(ticks[0], 41)), ticks
            followers = [p for p in psutil.process_iter(["cmdline"]) if log in (p.info["cmdline"] or [])]
            assert followers, "tail -F runs on the host while following"
            time.sleep(0.5)  # quiet now
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
        _, left = psutil.wait_procs(followers, timeout=5)
        assert not left, f"still following on the host after Ctrl-C: {left}"
