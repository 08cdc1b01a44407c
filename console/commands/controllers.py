"""Every controller of a clustered cluster, as `loadmaster status` shows them (read from etcd: the daemons'
heartbeats under `controllers/`, the leader from the election key)."""

from __future__ import annotations

import time
from typing import Any

from core.errors import StoreError
from core.model import ClusterConfig
from core.sanitize import printable


async def controllers_document(config: ClusterConfig) -> dict[str, Any]:
    """{"leader": id or None, "controllers": [...]} or {"error": why} when etcd does not answer."""
    from console.clustered import client_for, prefix_of
    from core.store.election import controllers

    client = client_for(config)
    try:
        found = await controllers(client, prefix_of(config))
    except StoreError as exc:
        return {"error": str(exc)}
    finally:
        await client.close()
    now = time.time()
    leader = next((c.id for c in found if c.role == "leader"), None)
    return {
        "leader": leader,
        "controllers": [
            {"id": c.id, "host": c.host, "role": c.role, "leader": c.leader,
             "heartbeat_s_ago": round(max(0.0, now - c.heartbeat), 1)}
            for c in found
        ],
    }  # fmt: skip


def role_words(role: str, leader: str | None) -> str:
    """`leader`, or `standby (leader: <id>)` as every front end says it."""
    if role == "leader":
        return "leader"
    return f"standby (leader: {leader})" if leader else "standby (no leader)"


def render_controllers(doc: dict[str, Any]) -> list[str]:
    if "error" in doc:
        return [f"controllers: unknown — {printable(doc['error'])}"]
    rows = doc["controllers"]
    if not rows:
        return ["controllers: none running (no daemon holds a lease)"]
    lines = [f"controllers ({len(rows)}):"]
    for c in rows:
        words = role_words(c["role"], c["leader"])
        lines.append(f"  {printable(c['id']):<28} {printable(c['host']):<16} {printable(words)}, "
                     f"heartbeat {c['heartbeat_s_ago']} s ago")  # fmt: skip
    return lines
