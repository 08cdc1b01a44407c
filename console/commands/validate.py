"""`loadmaster validate`: check cluster.toml and summarise what it declares."""

from __future__ import annotations

import argparse

from console.commands.options import add_config, load_config
from core.model import total
from core.units import human_cpu, human_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check cluster.toml and exit non-zero with the errors")
    add_config(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    requested = total(s.resources * s.replicas for s in cfg.services)
    pinned = [h for h in cfg.hosts if h.capacity is not None]
    capacity = total(h.usable() for h in pinned)
    replicas = sum(s.replicas for s in cfg.services)
    kind = "demo fleet" if cfg.demo else "fleet"
    print(f"{cfg.source}: valid — cluster {cfg.name!r} ({kind})")
    print(f"  hosts:    {len(cfg.hosts)} ({len(pinned)} with pinned capacity)")
    print(f"  services: {len(cfg.services)} ({replicas} replicas)")
    print(f"  cpu:      {human_cpu(requested.cpu)} cores requested / {human_cpu(capacity.cpu)} declared")
    print(f"  mem:      {human_size(requested.mem)} requested / {human_size(capacity.mem)} declared")
    for dim in sorted(set(requested.extra) | set(capacity.extra)):
        print(f"  {dim + ':':<9} {requested.get(dim)} requested / {capacity.get(dim)} declared")
    if pinned and len(pinned) == len(cfg.hosts) and not requested.fits(capacity):
        short = [d for d in requested.dimensions if requested.get(d) > capacity.get(d)]
        print(f"  warning: requests exceed declared capacity in {', '.join(short)}; some replicas will stay unplaced")
    return 0
