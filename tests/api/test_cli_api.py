"""The command line around the API: `api-token`, and where `--api` / `[api] listen` make a front end serve."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from console.commands.api_server import api_request
from core import config as config_io
from core.api.bind import BindError

ROOT = Path(__file__).resolve().parents[2]
HOSTS = '[cluster]\nname = "clitest"\n[[hosts]]\nname = "a"\naddress = "10.0.0.1"\n'


def loadmaster(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")}
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**environ, "HOME": str(home), **(env or {})},
    )  # fmt: skip


def test_api_token_prints_makes_and_rotates(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(HOSTS, encoding="utf-8")
    first = loadmaster(tmp_path, "api-token", "-c", str(cluster))
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert token.startswith("lm_") and len(token) > 40
    file = tmp_path / ".loadmaster" / "clitest" / "api-tokens.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert loadmaster(tmp_path, "api-token", "-c", str(cluster)).stdout.strip() == token  # the same, not a new one
    read_only = loadmaster(tmp_path, "api-token", "-c", str(cluster), "--read-only").stdout.strip()
    assert read_only != token and read_only.startswith("lm_")
    rotated = loadmaster(tmp_path, "api-token", "-c", str(cluster), "--rotate").stdout.strip()
    assert rotated not in (token, read_only)
    assert loadmaster(tmp_path, "api-token", "-c", str(cluster), "--read-only").stdout.strip() == read_only
    from_env = loadmaster(tmp_path, "api-token", "-c", str(cluster), "--rotate", env={"LOADMASTER_API_TOKEN": "x"})
    assert from_env.returncode == 1 and "LOADMASTER_API_TOKEN" in from_env.stderr


def test_where_the_api_is_served(tmp_path: Path) -> None:
    plain = config_io.parse(HOSTS)
    listening = config_io.parse(HOSTS + '[api]\nlisten = "127.0.0.1:7500"\n')
    path = tmp_path / "c.toml"
    assert api_request(None, plain, path, from_file=True) is None
    assert api_request(None, listening, path, from_file=True).listen == "127.0.0.1:7500"  # the daemon
    assert api_request(None, listening, path, from_file=False) is None  # the console serves only when asked
    assert api_request("", listening, path, from_file=False).listen == "127.0.0.1:7500"
    assert api_request("", plain, path, from_file=False).listen == "127.0.0.1:7400"
    assert api_request("[::1]:9", listening, path, from_file=True).listen == "[::1]:9"
    with pytest.raises(BindError, match="port must be a number"):
        api_request("127.0.0.1:x", plain, path, from_file=True)
