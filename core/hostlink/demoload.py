"""Load for the demo fleet: a demo service's replicas burn a chosen share of the cpu they request.

A service opts in by running its command under `demo-load SERVICE -- ...` (the demo cluster's
`web` does). Demo hosts put `demo-load` (core/hostlink/loadgen.py) on the PATH of what they run
and tell it where the load file is; `loadmaster demo --load web=0.9` or the console's load control
writes that file (`load.json` in the fleet's workdir, replaced atomically), and every replica of the
service, running or started later, burns `share × its cpu request` within a second. The burn is
real: the autoscaler measures it from /proc like any replica's cpu.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadLoad
from core.model import ClusterConfig, Service
from core.units import format_cpu

COMMAND = "demo-load"
ENV = "LOADMASTER_DEMO_LOAD"
FILE = "load.json"
MAX_MILLICORES = 1000  # one replica burns on one core (one thread)
_LOADGEN = Path(__file__).with_name("loadgen.py")


@dataclass(frozen=True, slots=True)
class Load:
    service: str
    share: float  # of the cpu each replica requests
    millicores: int  # what each replica burns: share × its request, when set

    def __str__(self) -> str:
        return f"{self.service}: each replica burns {self.share:g} of its request ({format_cpu(self.millicores)} cpu)"


def loadable(service: Service) -> bool:
    """Whether the service's replicas burn a load: its command runs `demo-load <its name>`."""
    try:
        argv = shlex.split(service.command)
    except ValueError:
        return False
    return argv[:2] == [COMMAND, service.name] or argv[:3] == ["exec", COMMAND, service.name]


def parse(items: list[str]) -> dict[str, float]:
    """`web=0.9` items → {service: share}; a share is a number from 0 (idle) to 1 (all it requests) or more."""
    shares: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadLoad(item, "write SERVICE=SHARE, e.g. web=0.9 (its replicas burn 0.9 of their cpu request)")
        try:
            share = float(value)
        except ValueError:
            raise BadLoad(item, f"{value!r} is not a number; give a share of the cpu request, e.g. 0.9") from None
        if not math.isfinite(share) or share < 0:
            raise BadLoad(item, "the share must be a number ≥ 0 (0 = idle, 1 = all the cpu it requests)")
        shares[name] = share
    return shares


def load_of(config: ClusterConfig, name: str, share: float) -> Load:
    """The load `share` means for service `name` of `config`, or BadLoad saying why it cannot be set."""
    given = f"{name}={share:g}"
    service = next((s for s in config.services if s.name == name), None)
    if service is None:
        known = ", ".join(s.name for s in config.services if loadable(s)) or "none"
        raise BadLoad(given, f"{config.source} has no service {name!r} (services that take a load: {known})")
    if not loadable(service):
        raise BadLoad(
            given,
            f"{name}'s command does not run under `{COMMAND} {name} -- ...`, so its replicas cannot burn cpu "
            f'(e.g. command = "{COMMAND} {name} -- {service.command}")',
        )
    millicores = round(share * service.resources.cpu)
    if millicores > MAX_MILLICORES:
        raise BadLoad(
            given,
            f"{share:g} × {format_cpu(service.resources.cpu)} requested = {format_cpu(millicores)} cpu, more than "
            f"the one core a demo replica burns; give at most {MAX_MILLICORES / service.resources.cpu:.2f}",
        )
    return Load(name, share, millicores)


def path(workdir: Path) -> Path:
    return Path(workdir) / FILE


def read(workdir: Path) -> dict[str, Load]:
    """The loads set in the fleet's workdir ({} when none was)."""
    try:
        raw = json.loads(path(workdir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    loads = {}
    for name, entry in raw.items() if isinstance(raw, dict) else ():
        try:
            loads[name] = Load(name, float(entry["share"]), int(entry["millicores"]))
        except (KeyError, TypeError, ValueError):
            continue
    return loads


def write(workdir: Path, config: ClusterConfig, shares: Mapping[str, float]) -> list[Load]:
    """Set the load of each named service (all checked before any is written); the others keep theirs."""
    loads = [load_of(config, name, share) for name, share in shares.items()]
    current = read(workdir)
    current.update({load.service: load for load in loads})
    target = path(workdir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{FILE}.{os.getpid()}.tmp")
    body = {n: {"share": ld.share, "millicores": ld.millicores} for n, ld in sorted(current.items())}
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, target)  # a burner reads the old file or the new one, never half of one
    return loads


def install(workdir: Path) -> dict[str, str]:
    """Write the `demo-load` command into the workdir; the environment demo hosts give what they run."""
    bin_dir = Path(workdir) / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / COMMAND
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(_LOADGEN))} "$@"\n'
    if not script.exists() or script.read_text(encoding="utf-8") != text:
        tmp = script.with_name(f".{COMMAND}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, script)
    search = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {"PATH": f"{bin_dir}{os.pathsep}{search}", ENV: str(path(workdir))}
