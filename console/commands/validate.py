"""`loadmaster validate`: check cluster.toml and summarise what it declares."""

from __future__ import annotations

import argparse

from console.commands.options import add_config, load_config
from core.model import ClusterConfig, total
from core.units import format_cpu, format_size, human_cpu, human_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check cluster.toml and exit non-zero with the errors")
    add_config(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    print("\n".join(summary(cfg)))
    return 0


def summary(cfg: ClusterConfig) -> list[str]:
    """What the file declares, with requests against declared capacity, and warnings that do not block it."""
    requested = total(s.resources * s.replicas for s in cfg.services)
    pinned = [h for h in cfg.hosts if h.capacity is not None]
    capacity = total(h.usable() for h in pinned)
    replicas = sum(s.replicas for s in cfg.services)
    kind = "demo fleet" if cfg.demo else "fleet"
    lines = [
        f"{cfg.source}: valid — cluster {cfg.name!r} ({kind})",
        f"  hosts:    {len(cfg.hosts)} ({len(pinned)} with pinned capacity)",
        f"  services: {len(cfg.services)} ({replicas} replicas)",
        f"  cpu:      {human_cpu(requested.cpu)} cores requested / {human_cpu(capacity.cpu)} declared",
        f"  mem:      {human_size(requested.mem)} requested / {human_size(capacity.mem)} declared",
    ]
    for dim in sorted(set(requested.extra) | set(capacity.extra)):
        lines.append(f"  {dim + ':':<9} {requested.get(dim)} requested / {capacity.get(dim)} declared")
    if len(pinned) < len(cfg.hosts):
        # Probed hosts may hold more than the file says: nothing more to judge offline.
        lines.append(f"  note: hosts without a capacity pin ({len(cfg.hosts) - len(pinned)}) are probed when connected")
        return lines
    if not requested.fits(capacity):
        short = [d for d in requested.dimensions if requested.get(d) > capacity.get(d)]
        lines.append(f"  warning: requests exceed declared capacity in {', '.join(short)}; some replicas stay unplaced")
    for s in cfg.services:
        if s.replicas and not any(s.matches(h) and s.resources.fits(h.usable()) for h in cfg.hosts):
            need = f"{format_cpu(s.resources.cpu)} cpu, {format_size(s.resources.mem)}"
            lines.append(f'  warning: services "{s.name}": one replica ({need}) fits on no host it may use')
    return lines
