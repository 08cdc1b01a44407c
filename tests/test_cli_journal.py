"""A locked or corrupted journal from the command line: `status` goes on, acting commands name the
file and the fix, `loadmaster journal check|reset` (issue 10 defects 4 and 15)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from console.cli import main
from core.engine import journal as journal_mod
from tests.sshd import free_port


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(journal_mod, "OPEN_TIMEOUT", 0.2)
    return tmp_path


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "cluster.toml"
    path.write_text(f"""\
[cluster]
name = "jt"
poll_interval = "100ms"

[defaults]
connect_timeout = "300ms"

[[hosts]]
name = "h1"
address = "127.0.0.1"
port = {free_port("127.0.0.1")}

[[services]]
name = "web"
command = "sleep 100"
cpu = "100m"
mem = "16MiB"
""")
    return path


def journal_of(home: Path) -> Path:
    return home / ".loadmaster" / "jt" / "journal.db"


def corrupt(home: Path) -> Path:
    path = journal_of(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    return path


def test_status_goes_on_with_a_corrupted_journal(home: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 15: a corrupted journal.db crashed every command, `status` included."""
    path = corrupt(home)
    code = main(["status", "-c", str(config)])
    out, err = capsys.readouterr()
    assert code == 1  # h1 is down: status says so, it does not crash
    assert "h1" in out and "web" in out
    assert f"journal {path}: is corrupted" in err and "loadmaster journal reset" in err


def test_an_acting_command_names_the_corrupted_journal_and_the_fix(
    home: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = corrupt(home)
    code = main(["run", "--headless", "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 1 and f"loadmaster: journal {path}: is corrupted" in err and "Traceback" not in err


def test_a_daemon_started_on_a_locked_journal_says_who_to_stop(
    home: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 4: a daemon started while the journal was locked exited with a traceback."""
    path = journal_of(home)
    journal_mod.Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        code = main(["run", "--headless", "-c", str(config)])
    finally:
        other.close()
    err = capsys.readouterr().err
    assert code == 1 and f"journal {path}: is locked by another process" in err and "stop that one" in err


def test_journal_check_and_reset(home: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "check", "-c", str(config)]) == 0
    assert "none yet" in capsys.readouterr().out
    path = corrupt(home)
    garbage = path.read_bytes()
    assert main(["journal", "check", "-c", str(config)]) == 1
    assert f"journal {path}: is corrupted" in capsys.readouterr().err

    assert main(["journal", "reset", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    [backup] = path.parent.glob("journal.db.bak-*")
    assert backup.read_bytes() == garbage and str(backup) in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["journal", "check", "-c", str(config)]) == 0
    assert "ok" in capsys.readouterr().out


def test_journal_check_reports_unfinished_plans(home: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.model import Action, ActionKind, ReplicaId

    journal = journal_mod.Journal(journal_of(home))
    journal.begin_plan("p", "test", "b", (Action(ActionKind.START, ReplicaId("web", 0), to_host="h1"),))
    journal.close()
    assert main(["journal", "check", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 applying" in out and "unfinished: 1 plans with 1 actions left" in out


def test_journal_reset_refuses_while_another_loadmaster_has_it_open(
    home: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = journal_mod.Journal(journal_of(home))  # as a daemon holds it: open, no lock between writes
    try:
        assert main(["journal", "reset", "-c", str(config)]) == 1
        assert "locked by another process" in capsys.readouterr().err
        assert not list(journal_of(home).parent.glob("journal.db.bak-*"))
    finally:
        running.close()
