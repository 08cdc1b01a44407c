"""Command lines for hosts and what their answers mean: the Python side of the host shell.

The shell itself is in hostlink.shell (what every script shares, and the state a host keeps),
hostlink.probe_shell (the probe loop) and hostlink.runtime_shell (list, start, stop, claim, logs).
A replica's command is run once, by `sh -c`, exactly as written in cluster.toml.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.hostlink.frames import FrameError, ReplicaSample, parse_replica_line
from core.hostlink.probe_shell import PROBE
from core.hostlink.runtime_shell import CLAIM, LIST, LOGS, START, STOP
from core.model import CheckKind, Claim, ClaimOutcome, HealthCheck, ReplicaId, Resources, Service, Token

NO_LOG_STATUS = 5  # LOGS's exit status when the host has no log of the replica


def hexed(text: str) -> str:
    return text.encode("utf-8").hex()


def command(script: str, *args: str) -> str:
    """The one command line sent to a host: every piece quoted, whatever the login shell."""
    return " ".join(shlex.quote(p) for p in ("sh", "-c", script, "lm", *args))


def state_dir(configured: str | None, cluster: str) -> str:
    """The state directory as the host's shell should see it (`~` is expanded there)."""
    return configured or f"~/.loadmaster/{cluster}"


def check_table(services: Iterable[Service]) -> tuple[str, tuple[str, ...]]:
    """The probe's CHECKS argument and the exec commands that follow it.

    One line per service with a check: `svc-hex kind interval timeout grace unhealthy_after healthy_after
    port status last`, durations in hundredths of a second, `-` for none; `last` is an http check's path
    (validated: starts with "/", no spaces) or an exec check's command number among the arguments after
    CHECKS (1 = the first), so that a command travels as its own quoted argument.
    """
    lines, commands = [], []
    for service in services:
        c = service.check
        if c is None:
            continue
        if c.kind is CheckKind.EXEC:
            commands.append(c.command)
            last = str(len(commands))
        else:
            last = c.path
        lines.append(
            " ".join((
                hexed(service.name), c.kind.value, _centis(c.interval), _centis(c.timeout), _centis(c.grace, 0),
                str(c.unhealthy_after), str(c.healthy_after), str(c.port) if c.port else "-",
                str(c.status) if c.status else "-", last,
            ))
        )  # fmt: skip
    return "\n".join(lines), tuple(commands)


def parse_check_table(table: str, commands: tuple[str, ...]) -> dict[str, HealthCheck]:
    """`check_table`'s output read back (the demo hosts serve the probe natively from its arguments)."""
    checks = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) != 10:
            raise FrameError(f"check line has {len(fields)} fields, expected 10")
        svc, kind, interval, timeout, grace, unhealthy, healthy, port, status, last = fields
        try:
            check_kind = CheckKind(kind)
            exec_command = commands[int(last) - 1] if check_kind is CheckKind.EXEC else ""
            checks[bytes.fromhex(svc).decode()] = HealthCheck(
                kind=check_kind,
                path=last if check_kind is CheckKind.HTTP else "/",
                status=None if status == "-" else int(status),
                command=exec_command,
                port=None if port == "-" else int(port),
                interval=int(interval) / 100,
                timeout=int(timeout) / 100,
                grace=int(grace) / 100,
                unhealthy_after=int(unhealthy),
                healthy_after=int(healthy),
            )
        except (ValueError, IndexError, UnicodeDecodeError):
            raise FrameError(f"check line {line[:80]!r} cannot be read") from None
    return checks


def _centis(seconds: float, least: int = 1) -> str:
    return str(max(least, round(seconds * 100)))


def probe_command(directory: str, interval: float, holder: str, services: Iterable[Service] = ()) -> str:
    table, commands = check_table(services)
    return command(PROBE, directory, f"{interval:g}", holder, table, *commands)


def list_command(directory: str) -> str:
    return command(LIST, directory)


def start_command(
    directory: str,
    token: Token,
    replica: ReplicaId,
    generation: str,
    cmd: str,
    port: int | None,
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    log_max_size: int = 10 << 20,
    log_keep: int = 3,
    limit: Resources | None = None,
) -> str:
    """START for `replica`; `env` values are final (placeholders already filled in) and travel hex-encoded."""
    return command(
        START, directory, str(token.epoch), token.holder, hexed(replica.service), str(replica.index),
        hexed(generation), hexed(cmd), cmd, str(port) if port is not None else "-",
        hexed(workdir) if workdir else "-", hexed(user) if user else "-", str(log_max_size), str(log_keep),
        str(limit.cpu if limit else 0), str(limit.mem if limit else 0),
        *(f"{name}={hexed(value)}" for name, value in (env or {}).items()),
    )  # fmt: skip


def stop_command(directory: str, token: Token, replica: ReplicaId, grace: float, signal: str = "TERM") -> str:
    return command(
        STOP, directory, str(token.epoch), token.holder, hexed(replica.service), str(replica.index),
        str(max(0, round(grace * 10))), signal,
    )  # fmt: skip


def logs_command(directory: str, replica: ReplicaId, lines: int, mode: str) -> str:
    """LOGS for `replica`: mode `age`, `print` or `follow`."""
    return command(LOGS, directory, hexed(replica.service), str(replica.index), str(max(0, lines)), mode)


def claim_command(directory: str, token: Token, live_for: float, force: bool) -> str:
    """Take the host for `token` unless another holder renewed it within `live_for` seconds (or `force`)."""
    return command(CLAIM, directory, str(token.epoch), token.holder, str(round(live_for * 100)), "1" if force else "0")


FENCED_STATUS = 4  # START/STOP's exit status when the host has a higher token


def parse_claim(text: str) -> Claim:
    fields = text.split()
    if len(fields) < 3 or fields[0] not in ClaimOutcome.__members__.values():
        raise FrameError(f"claim answer {text[:60]!r} is not taken/held/fenced EPOCH HOLDER")
    outcome = ClaimOutcome(fields[0])
    age = _number(fields[3], 10, "age") / 100 if outcome is ClaimOutcome.HELD and len(fields) > 3 else None
    return Claim(outcome, Token(_number(fields[1], 10, "epoch"), fields[2]), age)


def parse_fenced(text: str) -> Token | None:
    """The host's token from a START/STOP that was refused (`fenced EPOCH HOLDER`), else None."""
    fields = text.split()
    if len(fields) == 3 and fields[0] == "fenced":
        with contextlib.suppress(FrameError):
            return Token(_number(fields[1], 10, "epoch"), fields[2])
    return None


@dataclass(frozen=True, slots=True)
class Listing:
    """What LIST (or START) printed: the replica records, ports they hold, ports listening."""

    hz: int
    samples: tuple[ReplicaSample, ...]
    replica_ports: frozenset[int]
    listening: frozenset[int]


def parse_listing(text: str) -> Listing:
    hz, samples, held, listening = 100, [], set(), set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, value = fields[0], fields[1]
        if kind == "r":
            samples.append(parse_replica_line(fields))
        elif kind == "hz":
            hz = _number(value, 10, "clock ticks")
        elif kind == "p" and value != "-":
            held.add(_number(value, 10, "replica port"))
        elif kind == "l":
            listening.add(_number(value, 16, "listening port"))
    return Listing(hz, tuple(samples), frozenset(held), frozenset(listening))


def _number(text: str, base: int, what: str) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise FrameError(f"{what} {text[:40]!r} is not a number") from None


def substitute_port(cmd: str, port: int) -> str:
    return cmd.replace("{port}", str(port))


def fill_env(env: Mapping[str, str], port: int | None, index: int, host: str) -> dict[str, str]:
    """A service's env for one replica: `{port}`, `{replica}` (its index) and `{host}` (its host's name)."""
    values = {"{port}": "" if port is None else str(port), "{replica}": str(index), "{host}": host}
    return {name: _fill(text, values) for name, text in env.items()}


def _fill(text: str, values: Mapping[str, str]) -> str:
    # One pass, left to right: a filled-in value (a host name with "{port}" in it) is never filled again.
    out, i = [], 0
    while i < len(text):
        for key, value in values.items():
            if text.startswith(key, i):
                out.append(value)
                i += len(key)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def uses_port(service: Service) -> bool:
    """Whether the replica needs a port chosen: `{port}` in its command or any env value."""
    return "{port}" in service.command or any("{port}" in v for v in service.env.values())


def choose_port(used: frozenset[int] | set[int], first: int, last: int, start_at: int) -> int | None:
    """The first port in [first, last] not in `used`, scanning from `start_at` and wrapping."""
    size = last - first + 1
    for step in range(size):
        port = first + (start_at - first + step) % size
        if port not in used:
            return port
    return None
