"""The journal on a full disk, locked by another process, corrupted, and under umask 022 (issue 10 defects 4, 15).

A full disk is SQLite's own SQLITE_FULL (max_page_count caps the file, the same error a full
filesystem gives); a lock is another connection holding the write lock, as another process would.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time

import pytest

from core.engine import journal as journal_mod
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import JournalError
from core.model import Action, ActionKind, HostState, ReplicaId
from tests.engine.test_engine import desired, until
from tests.fake_fleet import FakeFleet


def full(journal: Journal) -> None:
    """Cap the journal at its current size and fill its free room, so that the next write finds the disk full."""
    db = journal._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    for size in (1024, 128, 16, 1):  # the events table's last page, filled with rows at = -1
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                db.execute("INSERT INTO events VALUES (-1, ?)", ("x" * size,))
    with pytest.raises(sqlite3.OperationalError, match="full"):
        db.execute("INSERT INTO events VALUES (-1, '')")


def unfull(journal: Journal) -> None:
    journal._db.execute("PRAGMA max_page_count = 1073741823")


def rows(path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_failed_write_is_kept_in_order_reported_once_and_written_when_the_disk_has_room(tmp_path):
    clock = [0.0]
    journal = Journal(tmp_path / "j.db", clock=lambda: clock[0])
    told: list[tuple[str | None, int, int]] = []
    journal.watch(lambda problem, written, dropped: told.append((problem, written, dropped)))
    full(journal)
    stop = Action(ActionKind.STOP, ReplicaId("web", 0), from_host="a")
    for i in range(300):  # more than a page of events: the first write that needs a page fails
        journal.log_event(float(i), {"event": "x", "message": "m" * 50})
    journal.begin_plan("p", "test", "b", (stop,))  # never raises
    journal.set_action("p", 0, "done")
    assert journal.trouble is not None and "full" in journal.trouble
    assert len(told) == 1 and told[0][0] is not None and str(tmp_path / "j.db") in told[0][0]
    assert journal.backlog > 0
    unfull(journal)
    journal.retry()  # within RETRY_EVERY of the failure: not yet
    assert journal.backlog > 0
    clock[0] += journal_mod.RETRY_EVERY
    journal.retry()
    assert journal.backlog == 0 and journal.trouble is None
    assert told[-1][0] is None and told[-1][1] > 0
    assert [a.state for a in journal.actions("p")] == ["done"]  # in order: begun, then done
    assert len(rows(tmp_path / "j.db", "SELECT at FROM events WHERE at >= 0")) == 300


def test_a_locked_journal_costs_one_wait_not_one_per_write(tmp_path):
    """Defect 4: with the journal locked for 15 s, failover took 14 s instead of 3 (each write waited)."""
    journal = Journal(tmp_path / "j.db")
    other = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        start = time.monotonic()
        for i in range(50):
            journal.log_event(float(i), {"event": "x"})
        took = time.monotonic() - start
        assert journal.trouble is not None and "locked by another process" in journal.trouble
        limit = journal_mod.WRITE_TIMEOUT_MS / 1000 + 0.5  # the first write waits; the others are kept at once
        assert took < limit, f"50 writes to a locked journal took {took:.1f} s"
    finally:
        other.execute("ROLLBACK")
        other.close()
    journal.retry(force=True)
    assert journal.backlog == 0
    assert len(rows(tmp_path / "j.db", "SELECT at FROM events")) == 50


async def test_failover_goes_on_while_the_journal_is_full(tmp_path, small_config):
    """Defect 4: on a full disk the daemon emitted no host.down and failed nothing over."""
    fleet = FakeFleet(small_config)
    journal = Journal(tmp_path / "j.db")
    engine = Engine(small_config, fleet, journal, workers=1, auto_apply=True)
    await engine.start(first_contact_timeout=1)
    try:
        await until(lambda: set(fleet.running()) == desired(small_config))
        await engine.wait_failover()
        victim = fleet.running()[ReplicaId("db", 0)][0]
        full(journal)
        queue = engine.subscribe()
        fleet.states[victim] = HostState.DOWN
        await until(lambda: _failed_over(fleet, victim))
        kinds = []
        while not queue.empty():
            kinds.append(queue.get_nowait().kind)
        assert EventKind.HOST_DOWN in kinds and EventKind.FAILOVER_STARTED in kinds
        assert EventKind.JOURNAL_UNWRITABLE in kinds
        assert journal.backlog > 0
        unfull(journal)
        await until(lambda: journal.backlog == 0, timeout=5)
        await until(lambda: EventKind.JOURNAL_RECOVERED in [e.kind for e in engine.recent_events()])
    finally:
        await engine.close(grace=5)
    journaled = [d for (d,) in rows(tmp_path / "j.db", "SELECT doc FROM events")]
    assert any('"host.down"' in d for d in journaled)  # written late, but written


def _failed_over(fleet: FakeFleet, victim: str) -> bool:
    # web has max_per_host = 1 over 3 hosts, so only db can move: it runs on another host
    return any(h != victim for h in fleet.running().get(ReplicaId("db", 0), []))


def test_a_journal_locked_at_start_names_the_file_and_the_fix(tmp_path, monkeypatch):
    """Defect 4: a daemon started while the journal is locked exited with a traceback."""
    monkeypatch.setattr(journal_mod, "OPEN_TIMEOUT", 0.2)
    path = tmp_path / "j.db"
    Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError) as err:
            Journal(path)
    finally:
        other.close()
    assert str(path) in str(err.value) and "locked by another process" in str(err.value)


@pytest.mark.parametrize("garbage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupted_journal_names_the_file_and_the_fix(tmp_path, garbage):
    """Defect 15: a corrupted journal.db crashed every command with a traceback."""
    path = tmp_path / "j.db"
    path.write_bytes(garbage)
    with pytest.raises(JournalError) as err:
        Journal(path)
    message = str(err.value)
    assert str(path) in message and "loadmaster journal reset" in message


def test_journal_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        home = tmp_path / "home" / ".loadmaster" / "c"
        journal = Journal(home / "journal.db")
        journal.log_event(1.0, {"event": "x"})
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir()}
        assert modes["journal.db"] == 0o600 and modes["journal.db-wal"] == 0o600, modes
        assert all(m == 0o600 for m in modes.values()), modes
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE(home.parent.stat().st_mode) == 0o700
        journal.close()
    finally:
        os.umask(old)
