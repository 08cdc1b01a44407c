"""A write-ahead journal of plans and action states, in SQLite (WAL).

Every state change is committed before the step it describes runs, so that a
console killed mid-apply can be restarted and roll the plan forward. The hosts
remain the truth of what runs; the journal says what was intended.

Bookkeeping never stops the engine: a write that fails (disk full, the file locked
by another process, I/O error) is kept in memory, in order, and the journal reports
the trouble once through `watch`; the engine goes on observing and failing over, and
calls `retry` each tick, which writes the backlog (in one transaction, at most once a
second) as soon as the file can take it. Opening a journal that is locked or corrupted
raises a JournalError that names the file and the fix.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import JournalError
from core.model import Action, ActionKind, ReplicaId
from core.private import FILE_MODE, private_file
from core.store.base import JournaledAction, Watcher
from core.store.shared_map import FileMap

__all__ = ["Journal", "JournaledAction", "diagnose"]

EVENTS_KEPT = 100_000
BACKLOG_EVENTS = 10_000  # events kept in memory while the file cannot be written; plans and actions always are
RETRY_EVERY = 1.0  # seconds between two attempts to write the backlog
OPEN_TIMEOUT = 5.0  # how long opening waits for another process's lock
# How long a write waits for another process's lock: long enough for a console and a daemon to take
# turns; once writes are failing, a retry waits only RETRY_TIMEOUT_MS (the engine's loop must not stall).
WRITE_TIMEOUT_MS = 1000
RETRY_TIMEOUT_MS = 50

CHECK_FIX = "run `loadmaster journal check`, then `loadmaster journal reset` (it keeps a backup) to start a new one"

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
CREATE TABLE IF NOT EXISTS events (
    at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fencing (
    epoch INTEGER PRIMARY KEY,    -- every fencing epoch this journal handed out (or took a host over from)
    holder TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS placed (
    replica TEXT NOT NULL,        -- a replica this cluster's controller started on a host, until it stopped it there
    host TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (replica, host)
);
"""

# One write: statements run in one transaction; a list of parameter tuples means executemany.
Statement = tuple[str, Sequence[Any] | list[Sequence[Any]]]


def diagnose(path: str, exc: BaseException) -> JournalError:
    """What went wrong with the journal at `path`, and what to do about it."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return JournalError(
            path, "is locked by another process",
            "another loadmaster (a daemon, a console or an apply) is using it: stop that one, or wait and retry",
        )  # fmt: skip
    if isinstance(exc, OSError) or any(w in lowered for w in ("unable to open", "readonly", "full", "i/o")):
        where = Path(path).parent
        return JournalError(
            path, f"cannot be opened or written ({text})", f"check the free space and permissions of {where}"
        )
    return JournalError(path, f"is corrupted ({text})", CHECK_FIX)


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)


class Journal:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.monotonic):
        self.path = str(path)
        self._clock = clock
        self._backlog: list[tuple[bool, list[Statement]]] = []  # (is an event, statements), oldest first
        self._backlog_events = 0
        self._dropped = 0
        self._logged = 0
        self._next_retry = 0.0
        self._watch: Watcher | None = None
        self.trouble: str | None = None  # why the last write failed, while the backlog is not written
        try:
            if self.path != ":memory:":
                private_file(Path(path))  # 0600 in a 0700 directory, before SQLite creates it (and -wal, -shm)
            self._db = _connect(self.path, OPEN_TIMEOUT)
        except (OSError, sqlite3.Error) as exc:
            raise diagnose(self.path, exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed step must survive power loss, not only a process kill.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM plans").fetchone()
        except sqlite3.Error as exc:
            self._db.close()
            raise diagnose(self.path, exc) from None
        self._db.execute(f"PRAGMA busy_timeout = {WRITE_TIMEOUT_MS}")
        self._private_sidecars()

    def _private_sidecars(self) -> None:
        # SQLite gives -wal and -shm the main file's mode; older versions made them world-readable.
        for suffix in ("-wal", "-shm"):
            side = Path(self.path + suffix)
            if side.exists():
                side.chmod(FILE_MODE)

    def watch(self, watcher: Watcher) -> None:
        """Told once when writes start failing, and once when the backlog has been written."""
        self._watch = watcher

    def close(self) -> int:
        """Write what can be written and close; returns how many entries could not be written."""
        self.retry(force=True)
        left = len(self._backlog)
        self._db.close()
        return left

    @property
    def backlog(self) -> int:
        """Entries kept in memory because the file could not take them (yet)."""
        return len(self._backlog)

    # -- writes: never raise; kept in order until the file takes them ----------------

    def _write(self, statements: list[Statement], *, event: bool = False) -> None:
        if self._backlog:
            self._keep(statements, event)
            self.retry()
            return
        try:
            self._run(statements)
        except sqlite3.Error as exc:
            self._keep(statements, event)
            self._failing(exc)

    def _keep(self, statements: list[Statement], event: bool) -> None:
        if event and self._backlog_events >= BACKLOG_EVENTS:
            self._dropped += 1  # events only: a plan's and its actions' states are always kept
            return
        self._backlog.append((event, statements))
        self._backlog_events += event

    def _run(self, statements: list[Statement]) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                if isinstance(params, list):
                    db.executemany(sql, params)
                else:
                    db.execute(sql, params)
            db.execute("COMMIT")
        except sqlite3.Error:
            if db.in_transaction:
                # SQLite rolls back on its own when the ROLLBACK itself cannot be done.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def _failing(self, exc: sqlite3.Error) -> None:
        self._next_retry = self._clock() + RETRY_EVERY
        problem = diagnose(self.path, exc)
        first = self.trouble is None
        self.trouble = f"{problem.problem}; {problem.fix}"
        if first and self._watch is not None:
            self._watch(str(problem), 0, 0)

    async def flush(self) -> None:
        """Nothing to wait for: a write is committed (or kept in the backlog) before it returns."""

    async def refresh(self) -> None:
        """Nothing to re-read: every reader reads the file itself."""

    def retry(self, *, force: bool = False) -> None:
        """Write the backlog in one transaction, at most once per RETRY_EVERY unless `force`."""
        if not self._backlog:
            return
        now = self._clock()
        if not force and now < self._next_retry:
            return
        self._next_retry = now + RETRY_EVERY
        self._db.execute(f"PRAGMA busy_timeout = {RETRY_TIMEOUT_MS}")
        try:
            self._run([s for _, statements in self._backlog for s in statements])
        except sqlite3.Error as exc:
            self._failing(exc)
            return
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {WRITE_TIMEOUT_MS}")
        written, dropped = len(self._backlog), self._dropped
        self._backlog.clear()
        self._backlog_events = self._dropped = 0
        self.trouble = None
        if self._watch is not None:
            self._watch(None, written, dropped)

    def begin_plan(self, plan_id: str, reason: str, basis: str, actions: tuple[Action, ...]) -> None:
        now = time.time()
        self._write([
            ("INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, 'applying')", (plan_id, now, reason, basis)),
            ("DELETE FROM actions WHERE plan_id = ?", (plan_id,)),
            (
                "INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, ?)",
                [
                    (plan_id, seq, a.kind.value, str(a.replica), a.from_host, a.to_host, now)
                    for seq, a in enumerate(actions)
                ],
            ),
        ])  # fmt: skip

    def set_action(self, plan_id: str, seq: int, state: str, error: str | None = None) -> None:
        self._write([(
            "UPDATE actions SET state = ?, error = ?, updated = ? WHERE plan_id = ? AND seq = ?",
            (state, error, time.time(), plan_id, seq),
        )])  # fmt: skip

    def finish_plan(self, plan_id: str, status: str) -> None:
        self._write([("UPDATE plans SET status = ? WHERE id = ?", (status, plan_id))])

    def record_rejected(self, plan_id: str, reason: str, basis: str) -> None:
        self._write([
            ("INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, 'rejected')", (plan_id, time.time(), reason, basis))
        ])  # fmt: skip

    def log_event(self, at: float, doc: dict[str, object]) -> None:
        statements: list[Statement] = [("INSERT INTO events VALUES (?, ?)", (at, json.dumps(doc)))]
        self._logged += 1
        if self._logged % 1000 == 0:  # a daemon runs for months: keep the newest events only
            statements.append(("DELETE FROM events WHERE rowid <= (SELECT max(rowid) FROM events) - ?", (EVENTS_KEPT,)))
        self._write(statements, event=True)

    def allocate_epoch(self, holder: str, above: int = 0) -> int:
        """A fencing epoch higher than any this journal handed out and than `above` (the highest a host
        has seen); controllers sharing the journal never get the same one (one write transaction).

        Unlike the bookkeeping above, an epoch must be on disk before it is used: a write that fails
        is a JournalError (file and fix), never an epoch from memory another controller could repeat.
        """
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                (top,) = db.execute("SELECT COALESCE(MAX(epoch), 0) FROM fencing").fetchone()
                epoch = max(int(top), above) + 1
                db.execute("INSERT INTO fencing VALUES (?, ?, ?)", (epoch, holder, time.time()))
                db.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise diagnose(self.path, exc) from None
        return epoch

    def record_placed(self, replica: ReplicaId, host: str, epoch: int) -> None:
        """Written before a start runs: from then on a copy of `replica` on `host` is ours (core.engine.ledger)."""
        self._write([("INSERT OR REPLACE INTO placed VALUES (?, ?, ?, ?)", (str(replica), host, epoch, time.time()))])

    def record_removed(self, replica: ReplicaId, host: str) -> None:
        self._write([("DELETE FROM placed WHERE replica = ? AND host = ?", (str(replica), host))])

    def trust_epoch(self, epoch: int, holder: str) -> None:
        """`epoch` was a controller's this one took the cluster over from: replicas started under it are ours."""
        self._write([("INSERT OR IGNORE INTO fencing VALUES (?, ?, ?)", (epoch, holder, time.time()))])

    # -- reads ---------------------------------------------------------------------

    def placed(self) -> set[tuple[ReplicaId, str]]:
        return {(ReplicaId.parse(r), h) for r, h in self._read("SELECT replica, host FROM placed")}

    def epochs(self) -> set[int]:
        """Every fencing epoch this journal handed out or took a host over from."""
        return {e for (e,) in self._read("SELECT epoch FROM fencing")}

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise diagnose(self.path, exc) from None

    def unfinished(self) -> list[tuple[str, list[JournaledAction]]]:
        """Plans that were being applied when the process stopped, with every action's last state."""
        plans = self._read("SELECT id FROM plans WHERE status = 'applying' ORDER BY created")
        return [(pid, self.actions(pid)) for (pid,) in plans]

    def actions(self, plan_id: str) -> list[JournaledAction]:
        rows = self._read(
            "SELECT seq, kind, replica, from_host, to_host, state, error FROM actions WHERE plan_id = ? ORDER BY seq",
            (plan_id,),
        )
        return [
            JournaledAction(plan_id, seq, Action(ActionKind(kind), ReplicaId.parse(rep), src, dst), state, err)
            for seq, kind, rep, src, dst, state, err in rows
        ]

    def plan_status(self, plan_id: str) -> str | None:
        rows = self._read("SELECT status FROM plans WHERE id = ?", (plan_id,))
        return rows[0][0] if rows else None

    def shared_map(self, name: str) -> FileMap:
        """A file beside the journal (`journal.holds.json`); in memory for a `:memory:` journal."""
        return FileMap(None if self.path == ":memory:" else Path(self.path).with_suffix(f".{name}.json"))
