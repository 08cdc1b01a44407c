"""`loadmaster journal check|reset`: look into the controller's journal, or set a broken one aside.

`check` reads the journal without changing it and says whether it is sound and what it holds
(unfinished plans are rolled forward by the next controller that starts). `reset` moves the
journal (with its -wal and -shm) aside as a backup named after the time, and starts an empty one;
it refuses while another loadmaster holds the journal.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from console.commands.options import add_config, load_config
from console.commands.runtime import journal_path
from core.engine.journal import CHECK_FIX, Journal, diagnose
from core.errors import JournalError

SIDECARS = ("-wal", "-shm")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("journal", help="check the controller's journal, or reset it (keeping a backup)")
    add_config(p)
    p.add_argument("action", choices=("check", "reset"), help="check: is it sound, what does it hold; "
                   "reset: move it aside as a backup and start an empty one")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = journal_path(load_config(args))
    if args.action == "check":
        return check(path)
    return reset(path)


def _summary(db: sqlite3.Connection) -> list[str]:
    by_status = dict(db.execute("SELECT status, count(*) FROM plans GROUP BY status").fetchall())
    unfinished = db.execute(
        "SELECT count(*) FROM actions a JOIN plans p ON a.plan_id = p.id "
        "WHERE p.status = 'applying' AND a.state != 'done'"
    ).fetchone()[0]
    events, newest = db.execute("SELECT count(*), max(at) FROM events").fetchone()
    plans = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
    lines = [f"  plans:  {plans}", f"  events: {events}"]
    if newest is not None:
        lines[-1] += f" (newest {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(newest))})"
    if by_status.get("applying"):
        lines.append(
            f"  unfinished: {by_status['applying']} plans with {unfinished} actions left; "
            "the next controller to start rolls them forward"
        )
    return lines


def _open(path: Path) -> sqlite3.Connection:
    # Read-only: a check changes nothing, not even the file's mode or its WAL.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)


def check(path: Path) -> int:
    if not path.exists():
        print(f"journal {path}: none yet (it is created when a controller first starts)")
        return 0
    try:
        db = _open(path)
        try:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise JournalError(str(path), "is corrupted (" + "; ".join(problems[:5]) + ")", CHECK_FIX)
            lines = _summary(db)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise diagnose(str(path), exc) from None
    print(f"journal {path}: ok")
    print("\n".join(lines))
    return 0


def reset(path: Path) -> int:
    if path.exists():
        _refuse_if_in_use(path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        unfinished = _unfinished(path)
        for suffix in ("", *SIDECARS):  # the WAL keeps committed steps: it goes with its database
            src = Path(f"{path}{suffix}")
            if src.exists():
                src.rename(f"{backup}{suffix}")
        print(f"journal {path}: moved aside to {backup}")
        if unfinished:
            print(f"  it held {unfinished} unfinished plans, which will not be rolled forward: "
                  "check the fleet with `loadmaster status` and re-plan")  # fmt: skip
    Journal(path).close()
    print(f"journal {path}: new and empty")
    return 0


def _refuse_if_in_use(path: Path) -> None:
    """A journal another loadmaster has open is not pulled from under it.

    Leaving WAL mode needs the only connection to the file, so it fails while anyone else has it
    open (a daemon holds no lock between writes); when it succeeds the backup is one self-contained file.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=0.5)
        try:
            db.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise diagnose(str(path), exc) from None
        # Corrupted or unreadable: exactly what a reset is for.


def _unfinished(path: Path) -> int:
    try:
        db = _open(path)
        try:
            return int(db.execute("SELECT count(*) FROM plans WHERE status = 'applying'").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0  # unreadable: nothing can be said about what it held
