"""A reachable host without Linux /proc shows as unsupported, not as down.

The host is a real asyncssh server whose commands run in their own mount
namespace with /proc unmounted (needs root and util-linux `unshare`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh

from core.hostlink.fleet import Fleet
from core.hostlink.keys import host_pattern
from core.model import ClusterConfig, Host, HostState
from tests.hostlink.helpers import until_state
from tests.sshd import free_port, missing, require_tool

WITHOUT_PROC = 'umount -l /proc && exec sh -c "$1"'


async def _run_without_proc(process: asyncssh.SSHServerProcess[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-m", "sh", "-c", WITHOUT_PROC, "sh", process.command or "true",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    process.stdout.write(out.decode())
    process.stderr.write(err.decode())
    process.exit(proc.returncode or 0)


async def test_host_without_proc_is_unsupported(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        missing("needs root to hide /proc with unshare")
    require_tool("unshare", "util-linux")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(tmp_path / "client_key"))
    port = free_port("127.0.0.1")
    (tmp_path / "known_hosts").write_text(f"{host_pattern('127.0.0.1', port)} {host_key.export_public_key().decode()}")
    server = await asyncssh.listen(
        "127.0.0.1", port, server_host_keys=[host_key], process_factory=_run_without_proc,
        authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
    )  # fmt: skip
    cfg = ClusterConfig("t", (Host("bsd", "127.0.0.1", port),), (), poll_interval=0.5, failure_timeout=1.5)
    fleet = Fleet(cfg, known_hosts=str(tmp_path / "known_hosts"), client_keys=[str(tmp_path / "client_key")])
    await fleet.start()
    try:
        obs = await until_state(fleet, "bsd", HostState.UNSUPPORTED, 10)
        assert "no /proc/stat here" in (obs.error or "")
        await asyncio.sleep(1.0)
        assert fleet.observations()["bsd"].state is HostState.UNSUPPORTED  # not turned into down by silence
    finally:
        await fleet.close()
        server.close()
