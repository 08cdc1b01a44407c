"""Wedging a demo replica: its demo replica server (core/hostlink/demo_replica.py) answers 503 from then on.

Demo hosts offer that server to their replicas as `$LOADMASTER_DEMO_REPLICA`; the demo's cluster file runs
it for `api`. A wedged replica still runs, so only its http check tells it apart — which is what the demo
shows (`loadmaster demo --wedge api/0`, or the console's demo key): unhealthy, restarted in place, healthy.
The demo's replicas are local processes, so another process (the CLI beside a running console) can wedge
them too: their records are found under the fleet's workdir, as each demo host keeps them.
"""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from core.errors import LoadmasterError
from core.hostlink import records, scripts
from core.model import ClusterConfig, ReplicaId

DEMO_REPLICA = Path(__file__).with_name("demo_replica.py")  # run by the system's python3: stdlib only
ENV = "LOADMASTER_DEMO_REPLICA"


def on_host(home: Path, directory: str) -> Path:
    """A directory as a demo host's shell sees it (`~` is its home)."""
    if directory == "~" or directory.startswith("~/"):
        return home / directory[2:]
    return Path(directory)


def wedge(config: ClusterConfig, workdir: Path, replica: ReplicaId) -> tuple[str, int]:
    """SIGUSR1 to the demo replica server of `replica`, on whichever demo host of the fleet in `workdir` runs it.
    Returns (host, pid); LoadmasterError says why not."""
    state = scripts.state_dir(config.state_dir, config.name)
    for host in sorted(p.name for p in (workdir / "hosts").glob("*")):
        directory = on_host(workdir / "hosts" / host / "home", state)
        for record in records.read_records(directory):
            if record.replica != replica:
                continue
            servers = [p for p in records.Sessions().of(record.pid) if _cmdline(p)[1:2] == [str(DEMO_REPLICA)]]
            if not servers:
                continue  # a dead record, or not the demo server: another host may run the replica
            for p in servers:
                try:
                    p.send_signal(signal.SIGUSR1)
                except psutil.Error:
                    continue
                return host, p.pid
    can = ", ".join(sorted(s.name for s in config.services if ENV in s.command)) or "none in this file"
    raise LoadmasterError(
        f"{replica} runs the demo replica server on no demo host in {workdir} (is the demo running?); "
        f"the services that run it: {can}"
    )


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []
