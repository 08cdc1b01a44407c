"""A write-ahead journal of plans and action states, in SQLite (WAL).

Every state change is committed before the step it describes runs, so that a
console killed mid-apply can be restarted and roll the plan forward. The hosts
remain the truth of what runs; the journal says what was intended.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from core.model import Action, ActionKind, ReplicaId

EVENTS_KEPT = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    reason TEXT NOT NULL,
    basis TEXT NOT NULL,
    status TEXT NOT NULL          -- applying | done | failed | rejected
);
CREATE TABLE IF NOT EXISTS actions (
    plan_id TEXT NOT NULL REFERENCES plans(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    replica TEXT NOT NULL,
    from_host TEXT,
    to_host TEXT,
    state TEXT NOT NULL,          -- pending | running | done | failed
    error TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
CREATE TABLE IF NOT EXISTS fencing (
    epoch INTEGER PRIMARY KEY,    -- every fencing epoch this journal handed out, never reused
    holder TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    at REAL NOT NULL,
    doc TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class JournaledAction:
    plan_id: str
    seq: int
    action: Action
    state: str
    error: str | None


class Journal:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed step must survive power loss, not only a process kill.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def begin_plan(self, plan_id: str, reason: str, basis: str, actions: tuple[Action, ...]) -> None:
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, 'applying')", (plan_id, now, reason, basis)
            )
            self._db.execute("DELETE FROM actions WHERE plan_id = ?", (plan_id,))
            self._db.executemany(
                "INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, ?)",
                [
                    (plan_id, seq, a.kind.value, str(a.replica), a.from_host, a.to_host, now)
                    for seq, a in enumerate(actions)
                ],
            )

    def set_action(self, plan_id: str, seq: int, state: str, error: str | None = None) -> None:
        with self._db:
            self._db.execute(
                "UPDATE actions SET state = ?, error = ?, updated = ? WHERE plan_id = ? AND seq = ?",
                (state, error, time.time(), plan_id, seq),
            )

    def finish_plan(self, plan_id: str, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE plans SET status = ? WHERE id = ?", (status, plan_id))

    def record_rejected(self, plan_id: str, reason: str, basis: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, 'rejected')", (plan_id, time.time(), reason, basis)
            )

    def unfinished(self) -> list[tuple[str, list[JournaledAction]]]:
        """Plans that were being applied when the process stopped, with every action's last state."""
        plans = self._db.execute("SELECT id FROM plans WHERE status = 'applying' ORDER BY created").fetchall()
        return [(pid, self.actions(pid)) for (pid,) in plans]

    def actions(self, plan_id: str) -> list[JournaledAction]:
        rows = self._db.execute(
            "SELECT seq, kind, replica, from_host, to_host, state, error FROM actions WHERE plan_id = ? ORDER BY seq",
            (plan_id,),
        ).fetchall()
        return [
            JournaledAction(plan_id, seq, Action(ActionKind(kind), ReplicaId.parse(rep), src, dst), state, err)
            for seq, kind, rep, src, dst, state, err in rows
        ]

    def plan_status(self, plan_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM plans WHERE id = ?", (plan_id,)).fetchone()
        return row[0] if row else None

    def allocate_epoch(self, holder: str, above: int = 0) -> int:
        """A fencing epoch higher than any this journal handed out and than `above` (the highest a host
        has seen); controllers sharing the journal never get the same one (one write transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            (top,) = self._db.execute("SELECT COALESCE(MAX(epoch), 0) FROM fencing").fetchone()
            epoch = max(int(top), above) + 1
            self._db.execute("INSERT INTO fencing VALUES (?, ?, ?)", (epoch, holder, time.time()))
        return epoch

    def log_event(self, at: float, doc: dict[str, object]) -> None:
        with self._db:
            cursor = self._db.execute("INSERT INTO events VALUES (?, ?)", (at, json.dumps(doc)))
            # A daemon runs for months: keep the newest events only, pruning now and then.
            if cursor.lastrowid and cursor.lastrowid % 1000 == 0:
                self._db.execute("DELETE FROM events WHERE rowid <= ?", (cursor.lastrowid - EVENTS_KEPT,))
