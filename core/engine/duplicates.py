"""Two [[hosts]] entries that are one machine (issue 12, item 13).

Three entries naming one machine with the same SSH user share its state directory (`~/.loadmaster/<cluster>`),
so each reports every replica there: the engine counted them three times and `status` put them all on one host.
Each probe's first frame says which boot of which kernel it runs under and which directory (device and inode) it
uses (core.model.MachineIdentity); two hosts with the same pair are one. The first in the file's order is kept;
each other one is excluded (no plan uses it, and what it reports is not counted: it is the first host's) until
the file is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.model import ClusterConfig, HostObservation


def duplicate_hosts(config: ClusterConfig, observations: Mapping[str, HostObservation]) -> dict[str, str]:
    """Each host that is an earlier host of `config` over again → why, in `validate`'s words."""
    first: dict[tuple[str, str], str] = {}
    out = {}
    for host in config.hosts:
        obs = observations.get(host.name)
        identity = obs.identity if obs is not None else None
        if identity is None:
            continue
        earlier = first.setdefault(identity.key, host.name)
        if earlier == host.name:
            continue
        machine = f"machine id {identity.machine_id[:12]}…, " if identity.machine_id else ""
        out[host.name] = (
            f'the same machine as "{earlier}" ({machine}state directory {identity.state_dir}, '
            f"device:inode {identity.directory}): two [[hosts]] entries for one machine and user share its "
            f"replicas; remove one from {config.source}, or log in to it as another user"
        )
    return out
