"""Hostlink against real OpenSSH sshd servers on loopback (tests/sshd.py)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from console.cli import main as cli
from core.errors import HostUnreachable
from core.hostlink.fleet import Fleet
from core.model import ClusterConfig, Host, HostState, Resources
from tests.hostlink.helpers import cluster, fleet_for, fresh_cluster, service, until, until_state
from tests.sshd import Sshd, free_port, require_tool

pytestmark = pytest.mark.sshd

HOSTILE = '\'; $(touch {canary}) "x y"'


@pytest.fixture
def name(sshd: Sshd) -> Iterator[str]:
    yield from fresh_cluster(sshd)


async def test_probe_streams_what_the_real_host_has(sshd: Sshd, name: str) -> None:
    fleet = fleet_for(sshd, cluster(name, sshd.host("a")))
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 10)
        await until(lambda: fleet.observations()["a"].cpu_percent is not None, 3, "a second frame")
        obs = fleet.observations()["a"]
        assert obs.ncpu == os.cpu_count() and obs.mem_total == psutil.virtual_memory().total
        assert obs.capacity == Resources(1000 * (os.cpu_count() or 0), psutil.virtual_memory().total)
        assert 0 <= (obs.cpu_percent or 0) <= 100 and obs.mem_available and obs.load1 is not None
        assert obs.uptime == pytest.approx(psutil.boot_time() and (obs.at - psutil.boot_time()), abs=3)
    finally:
        await fleet.close()


async def test_unreachable_host_is_reported_down_and_refuses_work(sshd: Sshd, name: str) -> None:
    nowhere = Host("gone", "127.0.0.9", free_port("127.0.0.9"), user=sshd.user)
    fleet = fleet_for(sshd, cluster(name, sshd.host("a"), nowhere))
    await fleet.start()
    try:
        obs = await until_state(fleet, "gone", HostState.DOWN, 10)
        assert "refused" in (obs.error or "")
        await until_state(fleet, "a", HostState.UP, 10)
        with pytest.raises(HostUnreachable, match="gone: unreachable: connection refused"):
            await fleet.start_replica("gone", service("x", "sleep 1"), 0, "g")
    finally:
        await fleet.close()


async def test_jump_host_tunnels_through_the_bastion(sshd_factory, tmp_path: Path) -> None:
    bastion = sshd_factory("127.0.0.2", extra_config=("LogLevel DEBUG1",))
    target = sshd_factory("127.0.0.3")
    known = tmp_path / "known_hosts"
    known.write_text(Path(bastion.known_hosts).read_text() + Path(target.known_hosts).read_text())
    cfg = cluster(f"t{uuid.uuid4().hex[:10]}", bastion.host("bastion"), target.host("target", jump="bastion"))
    fleet = Fleet(cfg, known_hosts=str(known), client_keys=[bastion.client_key, target.client_key])
    await fleet.start()
    try:
        await until_state(fleet, "target", HostState.UP, 10)
    finally:
        await fleet.close()
    assert f"server_request_direct_tcpip: originator  port 0, target {target.address} port {target.port}" in (
        bastion.log_text()
    )


async def test_users_ssh_config_is_honoured(sshd: Sshd, name: str, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        f"Host lm-alias\n  HostName {sshd.address}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  IdentitiesOnly yes\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    host = Host("a", "lm-alias")  # port 22 and no user: both come from ~/.ssh/config
    fleet = Fleet(cluster(name, host), known_hosts=sshd.known_hosts)
    await fleet.start()
    try:
        await until_state(fleet, "a", HostState.UP, 10)
    finally:
        await fleet.close()


def test_hosts_command_reports_state_capacity_and_replicas(sshd: Sshd, name: str, tmp_path: Path, capsys) -> None:
    toml = tmp_path / "cluster.toml"
    toml.write_text(
        f'[cluster]\nname = "{name}"\npoll_interval = "500ms"\n'
        f'[defaults]\nuser = "{sshd.user}"\nknown_hosts = "{sshd.known_hosts}"\nidentity_file = "{sshd.client_key}"\n'
        f'[[hosts]]\nname = "a"\naddress = "{sshd.address}"\nport = {sshd.port}\n'
        f'[[hosts]]\nname = "gone"\naddress = "127.0.0.9"\nport = {free_port("127.0.0.9")}\n'
    )
    assert cli(["hosts", "--json", "-c", str(toml)]) == 1  # one host is down
    hosts = {h["host"]: h for h in json.loads(capsys.readouterr().out)}
    assert hosts["a"]["state"] == "up" and hosts["a"]["capacity"]["cpu"] == 1000 * (os.cpu_count() or 0)
    assert hosts["a"]["cpu_percent"] is not None and hosts["a"]["replicas"] == []
    assert hosts["gone"]["state"] == "down" and "refused" in hosts["gone"]["error"]
    assert cli(["hosts", "-c", str(toml)]) == 1
    table = capsys.readouterr().out
    assert table.startswith("HOST") and "\ngone  down " in table and "connection refused" in table


def _fields(cfg: ClusterConfig) -> dict[str, object]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


async def test_keys_from_the_users_ssh_agent(sshd: Sshd, name: str, tmp_path: Path, monkeypatch) -> None:
    require_tool("ssh-agent")
    require_tool("ssh-add")
    sock = tmp_path / "agent.sock"
    agent = await asyncio.create_subprocess_exec("ssh-agent", "-D", "-a", str(sock), stdout=asyncio.subprocess.DEVNULL)
    try:
        await until(sock.exists, 5, "ssh-agent socket")
        add = await asyncio.create_subprocess_exec(
            "ssh-add",
            sshd.client_key,
            env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await add.wait() == 0
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys: only the agent can log in
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        fleet = Fleet(cluster(name, sshd.host("a")), known_hosts=sshd.known_hosts)
        await fleet.start()
        try:
            await until_state(fleet, "a", HostState.UP, 10)
        finally:
            await fleet.close()
    finally:
        agent.terminate()
        await agent.wait()


@pytest.mark.parametrize("kind", ["missing", "garbage", "passphrase"])
def test_a_bad_identity_file_is_the_hosts_error_naming_the_file(
    sshd: Sshd, name: str, tmp_path: Path, capsys, kind: str
) -> None:
    """Issue 10 defect 15: an invalid or passphrase-protected identity_file ended the host's link with a
    KeyImportError traceback (`hosts` printed it, no host event); a missing one was not named."""
    key = tmp_path / "id_bad"
    if kind == "garbage":
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
    elif kind == "passphrase":
        keygen = require_tool("ssh-keygen")
        import subprocess

        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True)
    toml = tmp_path / "cluster.toml"
    toml.write_text(
        f'[cluster]\nname = "{name}"\npoll_interval = "500ms"\n'
        f'[defaults]\nuser = "{sshd.user}"\nknown_hosts = "{sshd.known_hosts}"\nidentity_file = "{key}"\n'
        f"connect_timeout = 3\n"
        f'[[hosts]]\nname = "a"\naddress = "{sshd.address}"\nport = {sshd.port}\n'
    )
    assert cli(["hosts", "--json", "-c", str(toml)]) == 1
    out, err = capsys.readouterr()
    [host] = json.loads(out)
    assert host["state"] == "down" and f"identity_file {key}" in host["error"], host
    expected = {"missing": "does not exist", "garbage": "is not a usable private key", "passphrase": "ssh-add"}[kind]
    assert expected in host["error"] and "Traceback" not in err
