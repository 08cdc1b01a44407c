"""How a replica's process runs (issue 11, build 3): env, workdir, user, stop_signal, stop_timeout.

Against a real OpenSSH sshd (an unprivileged login) and a demo host (processes of whoever runs the tests),
with real processes: what a replica sees is read back from files it wrote itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
import uuid
from pathlib import Path

import psutil
import pytest

from core.errors import HostCommandFailed
from core.model import ReplicaId, Service
from tests.hostlink import test_runtime
from tests.hostlink.helpers import alive, cluster, fleet_for, service, until
from tests.hostlink.test_runtime import Target
from tests.sshd import TEST_USER, ensure_user

target, name = test_runtime.target, test_runtime.name  # the same fixtures: a real sshd and a demo host

# Everything a shell would act on: command substitution, backticks, quotes, a newline, globs, a variable.
HOSTILE = "$(touch {canary}) `touch {canary}` '\"; touch {canary}\n* $HOME \\n"
DUMP = (
    'python3 -c \'import json, os, sys; json.dump({"env": dict(os.environ), "cwd": os.getcwd()}, '
    'open(sys.argv[1], "w"))\' {out}; exec sleep 60'
)


def _spec(svc: str, out: Path, **changes: object) -> Service:
    return dataclasses.replace(service(svc, DUMP.replace("{out}", str(out))), **changes)  # type: ignore[arg-type]


async def _read_json(path: Path) -> dict[str, object]:
    await until(lambda: path.exists() and path.stat().st_size > 0, 5, f"{path} written by the replica")
    await asyncio.sleep(0.05)
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


async def test_env_and_workdir_reach_the_replica_exactly_and_hostile_values_stay_inert(
    target: Target, name: str
) -> None:
    canary = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    hostile = HOSTILE.format(canary=canary)
    workdir = Path("/tmp") / f"lm-w {name} $(touch pwned) `touch pwned`'; touch pwned"
    workdir.mkdir()
    os.chmod(workdir, 0o777)  # the sshd's login user writes here
    out = Path("/tmp") / f"lm-dump-{name}.json"
    svc = _spec(
        "envy", out,
        env={"HOSTILE": hostile, "PORT": "{port}", "WHO": "{replica}@{host}", "EMPTY": ""},
        workdir=str(workdir),
    )  # fmt: skip
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        status = await fleet.start_replica("a", svc, 2, "g")
        assert status.running
        doc = await _read_json(out)
        env = doc["env"]
        assert isinstance(env, dict)
        assert env["HOSTILE"] == hostile  # byte for byte: nothing expanded, nothing split
        assert env["PORT"].isdigit() and 20000 <= int(env["PORT"]) <= 29999
        assert env["WHO"] == "2@a" and env["EMPTY"] == ""
        assert doc["cwd"] == str(workdir)
        assert not os.path.exists(canary) and not list(Path("/tmp").glob("pwned*"))
        assert os.listdir(workdir) == []  # nor a `pwned` where the replica runs
    finally:
        await fleet.close()
        out.unlink(missing_ok=True)
        workdir.rmdir()


async def test_a_missing_workdir_fails_the_start_naming_it_and_runs_nothing(target: Target, name: str) -> None:
    gone = Path("/tmp") / f"lm-no-such-{name}"
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        with pytest.raises(HostCommandFailed, match=f"workdir {gone} does not exist"):
            await fleet.start_replica("a", _spec("lost", gone / "x.json", workdir=str(gone)), 0, "g")
        assert await fleet.list_replicas("a") == ()
    finally:
        await fleet.close()


async def test_stop_signal_is_sent_first_and_stop_timeout_bounds_the_wait(target: Target, name: str) -> None:
    marker = Path("/tmp") / f"lm-sig-{name}"
    polite = dataclasses.replace(
        service("polite", f"trap 'echo got-int > {marker}; exit 0' INT; trap '' TERM; while :; do sleep 0.1; done"),
        stop_signal="INT",
    )
    # Ignores both (and so does its sleep, which inherits the ignored dispositions): only KILL ends it.
    stubborn = dataclasses.replace(
        service("stubborn", "trap '' INT TERM; sleep 60 & wait"), stop_signal="INT", stop_timeout=1.0
    )
    cfg = dataclasses.replace(cluster(name, target.host("a")), services=(polite, stubborn))
    fleet = fleet_for(target, cfg)
    await fleet.start()
    try:
        p = await fleet.start_replica("a", polite, 0, "g")
        s = await fleet.start_replica("a", stubborn, 0, "g")
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await fleet.stop_replica("a", ReplicaId("polite", 0), grace=10)
        assert time.monotonic() - started < 5.0  # SIGINT ended it (SIGTERM is ignored: it would wait 10 s)
        assert marker.read_text() == "got-int\n" and not alive(p.pid)
        started = time.monotonic()
        await fleet.stop_replica("a", ReplicaId("stubborn", 0), grace=10)
        took = time.monotonic() - started
        assert 1.0 <= took < 4.0, took  # its stop_timeout (1 s), not the 10 s asked for, then KILL
        assert not alive(s.pid)
    finally:
        await fleet.close()
        marker.unlink(missing_ok=True)


async def test_user_runs_the_replica_as_that_user_where_the_login_may(target: Target, name: str) -> None:
    """As root (the demo host here) the replica runs as the user with its HOME; an unprivileged login (the
    sshd's) gets a clear error and nothing runs; a user that does not exist is named."""
    ensure_user()
    out = Path("/tmp") / f"lm-user-{name}.json"
    login_is_root = target.user is None and os.geteuid() == 0
    other = TEST_USER if login_is_root else "nobody"  # a user that is not the login's
    svc = _spec("asuser", out, user=other, env={"MODE": "x"})
    fleet = fleet_for(target, cluster(name, target.host("a")))
    await fleet.start()
    try:
        if login_is_root:
            status = await fleet.start_replica("a", svc, 0, "g")
            doc = await _read_json(out)
            env = doc["env"]
            assert isinstance(env, dict)
            assert psutil.Process(status.pid).username() == TEST_USER
            assert env["USER"] == TEST_USER and env["HOME"] == ensure_user().pw_dir and env["MODE"] == "x"
        else:
            with pytest.raises(HostCommandFailed, match=f"running as user {other} needs root"):
                await fleet.start_replica("a", svc, 0, "g")
            assert await fleet.list_replicas("a") == ()
        with pytest.raises(HostCommandFailed, match="user nobody-here-x does not exist"):
            await fleet.start_replica("a", dataclasses.replace(svc, name="ghost", user="nobody-here-x"), 0, "g")
    finally:
        await fleet.close()
        out.unlink(missing_ok=True)


async def test_a_replica_printing_forever_never_holds_more_than_keep_plus_one_files_of_log(
    target: Target, name: str
) -> None:
    """`yes` writes as fast as the pipe takes it (hundreds of MB/s): its logs stay within (keep + 1) × max."""
    size, keep = 64 << 10, 2
    chatty = dataclasses.replace(service("chatty", "exec yes 'a line of log output'"), log_max_size=size, log_keep=keep)
    fleet = fleet_for(target, cluster(name, target.host("a")))
    logs = target.home / ".loadmaster" / name / "logs"
    await fleet.start()
    try:
        status = await fleet.start_replica("a", chatty, 0, "g")
        largest, seen = 0, set()
        allowed = {"636861747479.0.log", "636861747479.0.log.1", "636861747479.0.log.2"}
        for _ in range(30):  # 3 s of sampling while it writes
            await asyncio.sleep(0.1)
            files = list(logs.glob("*"))
            total = 0
            for f in files:
                with contextlib.suppress(FileNotFoundError):  # rotated away between listing and stat
                    total += f.stat().st_size
            largest = max(largest, total)
            names = {p.name for p in files}
            seen |= names
            assert total <= (keep + 1) * size, (total, sorted(names))
            assert names <= allowed, names  # never a .3, never a leftover FIFO
        assert seen == allowed
        assert largest > keep * size  # it did fill them: the bound was tested, not idle
        # rotation is by bytes: a file ends where max ends, a line may go on in the next one
        await fleet.stop_replica("a", ReplicaId("chatty", 0), grace=1)
        assert b"\na line of log output\n" in (logs / "636861747479.0.log.2").read_bytes()
        assert not alive(status.pid)
        await until(lambda: not _rotators(logs), 3, "the log's reader ends with the replica")
    finally:
        await fleet.close()


def _rotators(logs: Path) -> list[int]:
    """Processes writing a file under `logs` (the rotating reader's `head`)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if any(f.path.startswith(str(logs)) for f in proc.open_files()):
                found.append(proc.pid)
    return found


async def test_read_and_follow_a_log_through_rotations_and_stop_following_on_close(target: Target, name: str) -> None:
    # one numbered line every 20 ms; 4 KiB files rotate every ~400 lines... of 10 bytes: ~every 8 s, so
    # lines are padded to 100 bytes: a rotation about every 0.8 s while the test follows
    cmd = "i=0; while :; do i=$((i + 1)); printf 'line %06d %088d\\n' $i 0; sleep 0.02; done"
    svc = dataclasses.replace(service("talk", cmd), log_max_size=4096, log_keep=1)
    fleet = fleet_for(target, cluster(name, target.host("a")))
    logs = target.home / ".loadmaster" / name / "logs"
    await fleet.start()
    try:
        await fleet.start_replica("a", svc, 0, "g")
        replica = ReplicaId("talk", 0)
        await until(lambda: (logs / "74616c6b.0.log.1").exists(), 10, "a first rotation")
        assert (await fleet.log_age("a", replica) or 0) < 5
        assert await fleet.log_age("a", ReplicaId("talk", 9)) is None
        await asyncio.sleep(0.2)  # a few lines into the new current file
        text = (await fleet.read_log("a", replica, 5)).decode()
        numbers = [int(line.split()[1]) for line in text.split("\n")[:-1]]  # the last may be still being written
        assert len(numbers) >= 4 and numbers == list(range(numbers[0], numbers[0] + len(numbers))), text
        # more than the current file holds: the rest comes from the rotated one, lines joined across the cut
        many = [int(x.split()[1]) for x in (await fleet.read_log("a", replica, 30)).decode().split("\n")[:-1]]
        assert len(many) >= 29 and many == list(range(many[0], many[0] + len(many))), many
        seen: list[int] = []
        follow = fleet.log_stream("a", replica, 2, follow=True)
        buffer = b""
        async for chunk in follow:
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            seen += [int(line.split()[1]) for line in done]
            if len(seen) >= 120:  # ~2.4 s: through at least two rotations
                break
        await follow.aclose()  # type: ignore[attr-defined]
        assert seen == list(range(seen[0], seen[0] + len(seen))), "a line lost or repeated across rotations"
        await until(lambda: not _tails(logs), 5, "the host's tail -F ends when the client stops following")
    finally:
        await fleet.close()


def _tails(logs: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[:1] == ["tail"] and any(str(logs) in arg for arg in cmdline):
            found.append(proc.pid)
    return found
