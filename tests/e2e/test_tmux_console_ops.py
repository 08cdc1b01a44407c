"""Issue 12, items 1 and 10, as a person would do them: the real console (`loadmaster console`) in tmux on a
served demo fleet of SSH hosts running real processes. The cluster file is edited under it (the console says
what changed, then shows a broken file's errors and keeps the old config), a service is scaled from the `:`
command line with completion, and a host is drained (after a confirmation) until its row says `drained`."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.console.test_console_tmux import ROOT, capture, terminal_env, tmux, wait_for_screen  # noqa: F401

from .served import ServedFleet


def keys(session: str, *typed: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *typed], check=True)


def test_reload_command_mode_scale_and_drain_in_a_real_terminal(tmux: Callable[..., str], tmp_path: Path) -> None:  # noqa: F811
    with ServedFleet(tmp_path) as fleet:
        assert fleet.run("plan", "-o", str(tmp_path / "plan.json")).returncode == 0
        assert fleet.run("apply", str(tmp_path / "plan.json")).returncode == 0
        fleet.wait_processes(web=4, db=2)
        original = fleet.config.read_text()
        fleet.config.write_text(original.replace('name = "web"', '# the front end\nname = "web"'))
        original = fleet.config.read_text()
        command = f"{shlex.quote(sys.executable)} -m console.cli console -c {shlex.quote(str(fleet.config))}"
        session = tmux(command, terminal_env(tmp_path) | {"PYTHONPATH": str(ROOT)})
        wait_for_screen(session, r"^\s*h1\s+up\s", timeout=30)

        # item 1: an edit is followed and said
        fleet.config.write_text(original.replace("replicas = 4", "replicas = 5"))
        wait_for_screen(session, r"reloaded: web scaled 4 → 5", timeout=10)
        # a broken file: its errors, and the old config stays
        fleet.config.write_text(original.replace('cpu = "500m"', 'cpu = "lots"'))
        wait_for_screen(session, r"cluster.toml has 1 error: previous config in force", timeout=10)
        wait_for_screen(session, r'services "web": cpu', timeout=5)  # the notification, as validate prints it
        fleet.config.write_text(original)
        wait_for_screen(session, r"reloaded: web scaled 5 → 4", timeout=10)

        # item 10: `:` with completion writes the file through core.desired
        keys(session, ":")
        wait_for_screen(session, r":hosts :host :svc", timeout=5)
        keys(session, "sca", "Tab", " w", "Tab", " 6", "Enter")
        wait_for_screen(session, r"reloaded: web scaled 4 → 6", timeout=10)
        text = fleet.config.read_text()
        assert "replicas = 6" in text and "# the front end" in text

        # drain h1 from the command line: asked first, then its replicas move and its row says drained
        keys(session, ":")
        wait_for_screen(session, r":hosts :host :svc", timeout=5)
        keys(session, "drain h1", "Enter")
        wait_for_screen(session, r"Drain h1\?", timeout=5)
        keys(session, "y")
        wait_for_screen(session, r"^\s*h1\s+drained\s.*\s0\s+\d+s\s*$", timeout=30)
        fleet.wait_processes(web=6, db=2)  # moved and started, none lost or doubled

        keys(session, ":")
        wait_for_screen(session, r":hosts :host :svc", timeout=5)
        keys(session, "q", "Enter")  # the console ends (and its session with it)
        deadline = time.monotonic() + 20
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, capture(session)
            time.sleep(0.2)
