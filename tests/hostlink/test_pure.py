"""Pure parts of hostlink: command building, port choice, backoff, silence, host key decisions."""

from __future__ import annotations

import random
import shlex
from pathlib import Path

import asyncssh
import pytest

from core import config
from core.errors import HostKeyMismatch, HostKeyUnknown
from core.hostlink import probe_shell, scripts
from core.hostlink.keys import HostKeys
from core.hostlink.link import BACKOFF_CAP, backoff, silence_state
from core.model import CheckKind, HealthCheck, HostKeyPolicy, HostState, ReplicaId, Resources, Service, Token

HOSTILE = '\'; $(touch /tmp/pwned) "x y"'


def test_every_argument_reaches_the_host_shell_as_one_word() -> None:
    cmd = scripts.start_command("~/st ate", Token(7, "c1"), ReplicaId(HOSTILE, 3), "gen;1", f"echo {HOSTILE}", 20001)
    argv = shlex.split(cmd)
    assert argv[:2] == ["sh", "-c"] and argv[2] == scripts.START and argv[3] == "lm"
    assert argv[4:] == ["~/st ate", "7", "c1", scripts.hexed(HOSTILE), "3", scripts.hexed("gen;1"),
                        scripts.hexed(f"echo {HOSTILE}"), f"echo {HOSTILE}", "20001", "-", "-",
                        str(10 << 20), "3", "0", "0"]  # fmt: skip


def test_env_workdir_and_user_travel_hex_encoded() -> None:
    cmd = scripts.start_command(
        "~/s", Token(1, "c"), ReplicaId("web", 0), "g", "run", None,
        env={"A": HOSTILE, "B_2": "x\ny"}, workdir="/srv/$(x)", user="www-data",
    )  # fmt: skip
    argv = shlex.split(cmd)
    assert argv[-8:] == [scripts.hexed("/srv/$(x)"), scripts.hexed("www-data"), str(10 << 20), "3", "0", "0",
                         f"A={scripts.hexed(HOSTILE)}", "B_2=" + scripts.hexed("x\ny")]  # fmt: skip


def test_the_longest_command_env_and_workdir_fit_one_command_line() -> None:
    """Linux caps one argument at 128 KiB (MAX_ARG_STRLEN) and sshd hands the whole line to the login shell
    as one: the config's limits must leave a start under it."""
    cmd = "x" * (config.MAX_COMMAND_BYTES - 2)  # quoted: 2 bytes of quotes
    env = {f"V{i}": "y" * 1000 for i in range(config.MAX_ENV_BYTES // 1004)}
    assert sum(len(k) + len(v) + 1 for k, v in env.items()) <= config.MAX_ENV_BYTES
    line = scripts.start_command(
        "~/.loadmaster/c", Token(1, "a" * 60), ReplicaId("s" * 60, 99999), "g" * 12, cmd, 29999,
        env=env, workdir="/" + "w" * 4000, user="u" * 32,
    )  # fmt: skip
    assert len(line.encode()) < 128 * 1024, len(line)


def test_env_placeholders_are_filled_once_left_to_right() -> None:
    env = {"P": "{port}", "R": "r{replica}@{host}", "J": '{"a": {port}}', "N": "{nope}"}
    assert scripts.fill_env(env, 20001, 3, "h{port}") == {
        "P": "20001",
        "R": "r3@h{port}",
        "J": '{"a": 20001}',
        "N": "{nope}",
    }
    assert scripts.fill_env({"P": "{port}"}, None, 0, "h") == {"P": ""}


def test_probe_command_carries_interval_and_directory() -> None:
    argv = shlex.split(scripts.probe_command("~/.loadmaster/x", 0.5, "1-2@me"))
    assert argv[2].startswith(probe_shell.PROBE_MARK) and argv[4:] == ["~/.loadmaster/x", "0.5", "1-2@me", ""]


def test_check_table_travels_to_the_host_and_back() -> None:
    web = Service("w e;b", "serve {port}", 1, Resources(1, 1), check=HealthCheck(CheckKind.HTTP, "/h?x=1", 204))
    tcp = Service("db", "db", 1, Resources(1, 1), check=HealthCheck(CheckKind.TCP, port=5432, grace=0.0))
    run = Service("job", "j", 1, Resources(1, 1), check=HealthCheck(CheckKind.EXEC, command=f"test {HOSTILE}"))
    plain = Service("plain", "p", 1, Resources(1, 1))
    argv = shlex.split(scripts.probe_command("d", 1, "1-2@me", [web, plain, tcp, run]))
    table, commands = argv[7], tuple(argv[8:])
    assert commands == (f"test {HOSTILE}",)  # its own argument, quoted: never parsed by the probe's shell
    assert table.splitlines()[1] == f"{scripts.hexed('db')} tcp 1000 200 0 3 1 5432 - /"
    assert scripts.parse_check_table(table, commands) == {"w e;b": web.check, "db": tcp.check, "job": run.check}


def test_state_dir_default_is_per_cluster() -> None:
    assert scripts.state_dir(None, "prod") == "~/.loadmaster/prod"
    assert scripts.state_dir("/srv/lm", "prod") == "/srv/lm"


def test_port_choice_skips_used_ports_and_wraps() -> None:
    assert scripts.choose_port(set(), 100, 109, 105) == 105
    assert scripts.choose_port({105, 106}, 100, 109, 105) == 107
    assert scripts.choose_port({105, 106, 107, 108, 109}, 100, 109, 105) == 100
    assert scripts.choose_port(set(range(100, 110)), 100, 109, 100) is None
    assert scripts.substitute_port("serve --port {port} --also {port}", 7) == "serve --port 7 --also 7"


def test_listing_parses_records_ports_and_listening_sockets() -> None:
    record = f"r {scripts.hexed('web')} 2 {scripts.hexed('g')} 41 1700000000 1 500 1024 7"
    text = f"hz 250\n{record}\np 20005\nl 1F90\nl 0016\n"
    listing = scripts.parse_listing(text)
    assert listing.hz == 250 and listing.replica_ports == {20005} and listing.listening == {8080, 22}
    (sample,) = listing.samples
    assert sample.replica == ReplicaId("web", 2) and sample.alive and sample.ticks == 500 and sample.epoch == 7


def test_backoff_doubles_up_to_a_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff(a, rng) for a in range(12)]
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0
    assert all(BACKOFF_CAP / 2 <= d <= BACKOFF_CAP for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered, not lock-step


def test_silence_turns_into_suspect_then_down() -> None:
    assert silence_state(0.9, 1.0, 3.0) is HostState.UP
    assert silence_state(2.1, 1.0, 3.0) is HostState.SUSPECT
    assert silence_state(3.0, 1.0, 3.0) is HostState.DOWN


@pytest.fixture
def keys() -> tuple[asyncssh.SSHKey, asyncssh.SSHKey]:
    return asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")


def test_known_key_trusted_changed_key_refused_with_both_fingerprints(tmp_path: Path, keys) -> None:
    known, other = keys
    user = tmp_path / "known_hosts"
    user.write_text(f"[10.0.0.1]:2222 {known.export_public_key().decode()}")
    trust = HostKeys(str(user), HostKeyPolicy.ACCEPT_NEW, str(tmp_path / "own"))
    assert trust.check("a", "10.0.0.1", "10.0.0.1", 2222, known).trusted
    verdict = trust.check("a", "10.0.0.1", "10.0.0.1", 2222, other)
    assert not verdict.trusted and isinstance(verdict.error, HostKeyMismatch)  # even under accept-new
    assert known.get_fingerprint() in str(verdict.error) and other.get_fingerprint() in str(verdict.error)
    assert not (tmp_path / "own").exists()


def test_unknown_key_strict_refused_accept_new_recorded(tmp_path: Path, keys) -> None:
    key, other = keys
    own = tmp_path / "lm" / "known_hosts"
    strict = HostKeys(str(tmp_path / "none"), HostKeyPolicy.STRICT, str(own))
    verdict = strict.check("b", "10.0.0.2", "10.0.0.2", 22, key)
    assert not verdict.trusted and isinstance(verdict.error, HostKeyUnknown) and "accept-new" in str(verdict.error)
    accepting = HostKeys(str(tmp_path / "none"), HostKeyPolicy.ACCEPT_NEW, str(own))
    assert accepting.check("b", "10.0.0.2", "10.0.0.2", 22, key).recorded
    assert own.read_text().startswith("10.0.0.2 ssh-ed25519 ")
    assert accepting.check("b", "10.0.0.2", "10.0.0.2", 22, key).trusted  # remembered in this run
    assert len(own.read_text().splitlines()) == 1
    assert isinstance(accepting.check("b", "10.0.0.2", "10.0.0.2", 22, other).error, HostKeyMismatch)
    reread = HostKeys(str(tmp_path / "none"), HostKeyPolicy.STRICT, str(own))  # a later run trusts it
    assert reread.check("b", "10.0.0.2", "10.0.0.2", 22, key).trusted
