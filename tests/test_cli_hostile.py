"""Host-supplied text reaches the terminal sanitized (issue 10, defect 14).

`loadmaster hosts` printed what hosts said raw: a replica name holding `ESC[2J` cleared the
operator's screen, colours and U+202E (right-to-left override) went through. Here two real
asyncssh hosts say hostile things — one in a replica record's name, one in the reason its probe
cannot run — and `loadmaster hosts` (and `status`) must show them as visible escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from console.cli import main
from console.commands import status
from core.hostlink import probe_shell, scripts
from core.hostlink.keys import host_pattern
from core.sanitize import PrintableFormatter, printable
from tests.sshd import free_port

EVIL = "\x1b[2J\x1b]0;owned\x07[bold red]evil\u202egnp.exe"
FRAME = (
    "F {seq}\ncpu  100 0 50 {idle} 0 0 0 0\nmem 8388608 4000000\nload 0.5 0.4 0.3 1/100 42\n"
    "up {up} 10\nncpu 2 100\nr {svc} 0 {gen} 4242 1700000000 1 10 2048 -\nE\n"
)


def test_printable_makes_controls_and_bidi_visible_and_leaves_text_alone() -> None:
    assert printable(EVIL) == "\\x1b[2J\\x1b]0;owned\\x07[bold red]evil\\u202egnp.exe"
    assert printable("a\u2066b\u2069c\u200fd\x9be\x7f") == "a\\u2066b\\u2069c\\u200fd\\x9be\\x7f"
    assert printable("line 1\nline 2\ttab") == "line 1\\x0aline 2\\x09tab"
    assert printable("line 1\nline 2", newlines=True) == "line 1\nline 2"
    plain = "web/3 on node-a → node-b: ok — 5 µs, 日本"
    assert printable(plain) == plain


async def _probe(process: asyncssh.SSHServerProcess[bytes]) -> None:
    command = process.command or ""
    if probe_shell.PROBE_MARK not in command:
        process.exit(1)
        return
    if process.get_extra_info("username") == "odd":
        process.stdout.write(f"U {EVIL}\n".encode())
        process.exit(0)
        return
    seq = 0
    with contextlib.suppress(OSError, asyncssh.Error):
        while True:
            seq += 1
            frame = FRAME.format(seq=seq, idle=1000 + 50 * seq, up=100 + seq, svc=scripts.hexed(EVIL), gen="00")
            process.stdout.write(frame.encode())
            await process.stdout.drain()
            await asyncio.sleep(0.2)


class _Refusing(asyncssh.SSHServer):
    """A host that refuses the probe's channel, giving a hostile reason."""

    def begin_auth(self, username: str) -> bool:
        return True  # public key auth with the authorized keys

    def session_requested(self) -> bool:
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, EVIL)


@pytest.fixture
def hostile_hosts(tmp_path: Path) -> Iterator[Path]:
    """A cluster file of two hosts (`liar`, `odd`) served from a thread by asyncssh; its path."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(tmp_path / "client_key"))
    ports = [free_port("127.0.0.1"), free_port("127.0.0.1")]
    public = host_key.export_public_key().decode()
    (tmp_path / "known_hosts").write_text("".join(f"{host_pattern('127.0.0.1', p)} {public}" for p in ports))
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    async def listen(port: int) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1", port, server_host_keys=[host_key], process_factory=_probe, encoding=None,
            authorized_client_keys=authorized,
        )  # fmt: skip

    servers = [asyncio.run_coroutine_threadsafe(listen(p), loop).result(10) for p in ports]
    refusing = free_port("127.0.0.1")
    (tmp_path / "known_hosts").write_text(
        (tmp_path / "known_hosts").read_text() + f"\n{host_pattern('127.0.0.1', refusing)} {public}"
    )

    async def listen_refusing() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1", refusing, server_host_keys=[host_key], server_factory=_Refusing,
            authorized_client_keys=authorized,
        )  # fmt: skip

    servers.append(asyncio.run_coroutine_threadsafe(listen_refusing(), loop).result(10))
    config = tmp_path / "cluster.toml"
    head = (
        f'[cluster]\nname = "hostile"\npoll_interval = "200ms"\n\n'
        f'[defaults]\nknown_hosts = "{tmp_path / "known_hosts"}"\nidentity_file = "{tmp_path / "client_key"}"\n\n'
    )
    (tmp_path / "refusing.toml").write_text(
        head + f'[[hosts]]\nname = "refuser"\naddress = "127.0.0.1"\nport = {refusing}\n'
    )
    config.write_text(
        head + f'[[hosts]]\nname = "liar"\naddress = "127.0.0.1"\nport = {ports[0]}\nuser = "liar"\n\n'
        f'[[hosts]]\nname = "odd"\naddress = "127.0.0.1"\nport = {ports[1]}\nuser = "odd"\n'
    )
    yield config

    async def stop() -> None:
        for server in servers:
            server.close()
            await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _assert_sanitized(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, repr(out)
    assert "\\x1b[2J\\x1b]0;owned\\x07[bold red]evil\\u202egnp.exe" in out, out


def test_hosts_prints_host_supplied_names_and_reasons_sanitized(
    hostile_hosts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["hosts", "-c", str(hostile_hosts), "--wait", "5"])
    out, err = capsys.readouterr()
    assert status == 1, err  # odd is unsupported
    _assert_sanitized(out.split("\nodd")[0])  # liar's row: the replica name
    _assert_sanitized(out.split("\nodd")[1])  # odd's row: the reason its probe cannot run


def test_status_prints_host_supplied_reasons_sanitized(hostile_hosts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["status", "-c", str(hostile_hosts)])
    out = capsys.readouterr().out
    _assert_sanitized(out)


def test_a_host_refusing_the_probe_is_unsupported_once_and_nothing_raw_reaches_the_daemons_output(
    hostile_hosts: Path, tmp_path: Path
) -> None:
    """Before: a line `probe did not start: <the host's words, raw>` on stderr every half second."""
    env = {**os.environ, "HOME": str(tmp_path)}
    config = hostile_hosts.parent / "refusing.toml"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "run", "--headless", "-c", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(4)
    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=20)
    stderr = err.decode("utf-8", "replace")
    assert "\x1b" not in stderr and "\u202e" not in stderr and len(stderr) < 1024, stderr
    events = [json.loads(line) for line in out.decode().splitlines()]
    about = [e for e in events if e.get("host") == "refuser"]
    assert [e["event"] for e in about] == ["host.unsupported"], about
    assert "the probe did not start" in about[0]["message"] and "[bold red]evil" in about[0]["message"]
    assert "\x1b" not in out.decode() and "\u202e" not in out.decode()  # json.dumps escapes them


def test_log_lines_for_people_are_printable() -> None:
    try:
        raise RuntimeError(EVIL)
    except RuntimeError:
        record = logging.LogRecord("loadmaster.x", logging.WARNING, __file__, 1, "%s: %s", ("h1", EVIL), sys.exc_info())
    line = PrintableFormatter("%(message)s").format(record)
    assert "\x1b" not in line and "\u202e" not in line and "\x07" not in line
    assert line.startswith("h1: " + printable(EVIL)) and "\nTraceback" in line


def test_status_prints_the_holder_a_fence_file_names_sanitized() -> None:
    doc = {
        "cluster": "c",
        "controller": {"holder": EVIL, "epoch": 3, "renewed_s_ago": 0.4, "live": True},
        "hosts": [],
        "services": [],
    }
    _assert_sanitized(status.render(doc))
