"""`cluster.toml` → `ClusterConfig`, reporting every problem at once.

Each problem names the file, the entry and the field, with the bad value and
what would be valid, so that an operator can fix the whole file in one pass.
Entries with problems are still read as far as possible and take part in the
cross-checks, so one typo does not hide or cause other messages.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from core.api.bind import parse_bind
from core.errors import ConfigError, ConfigProblem
from core.model import (
    CPU,
    MEM,
    ApiSettings,
    Autoscale,
    CheckKind,
    ClusterConfig,
    HealthCheck,
    Host,
    HostKeyPolicy,
    Policy,
    Resources,
    Service,
    SshDefaults,
    Strategy,
)
from core.units import UnitError, literal, parse_cpu, parse_duration, parse_quantity, parse_size

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

ENV_CONFIG = "LOADMASTER_CONFIG"
DEFAULT_CONFIG = "cluster.toml"

SECTIONS = ("cluster", "defaults", "hosts", "services", "policy", "api")
CLUSTER_KEYS = ("name", "poll_interval", "failure_timeout", "state_dir", "demo", "enforce_limits")
DEFAULTS_KEYS = ("user", "port", "identity_file", "known_hosts", "host_key_policy", "connect_timeout")
HOST_KEYS = ("name", "address", "port", "user", "labels", "capacity", "reserve", "identity_file", "jump", "demo")
SERVICE_KEYS = (
    "name", "command", "replicas", "cpu", "mem", "resources", "max_per_host",
    "spread_over", "require", "avoid", "priority", "min_healthy", "autoscale", "check",
    "env", "workdir", "user", "stop_signal", "stop_timeout", "log_max_size", "log_keep",
)  # fmt: skip
STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL")
MAX_LOG_KEEP = 100
MIN_LOG_SIZE = 4096  # smaller would rotate on every few lines
AUTOSCALE_KEYS = ("min", "max", "cpu_target", "window", "scale_down_window")
CHECK_KEYS = (
    "kind", "path", "status", "command", "port", "interval", "timeout", "grace", "unhealthy_after", "healthy_after",
)  # fmt: skip
_CHECK_ONLY = {"path": CheckKind.HTTP, "status": CheckKind.HTTP, "command": CheckKind.EXEC}
API_KEYS = ("listen", "tls_cert", "tls_key")
POLICY_KEYS = (
    "strategy",
    "auto_apply",
    "max_moves_per_cycle",
    "cooldown",
    "solver_time_limit",
    "settle",
    "solver_workers",
    "max_stops_per_reload",
)

LOCAL_ADDRESS = "local"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class _Missing(enum.Enum):
    """`take`'s default for a required key: a type of its own, so a default of any other type is a T."""

    MISSING = enum.auto()


_MISSING = _Missing.MISSING
MAX_DEPTH = 8  # tables and arrays inside each other; the deepest a valid file needs is 3
MAX_REPLICAS = 100_000  # per service: beyond it a plan's model would not fit in memory
# A replica's command reaches the host inside one SSH command line, twice (hex for its record and
# quoted for the shell): Linux caps one argument at 128 KiB (MAX_ARG_STRLEN), so 32 KiB quoted
# leaves room for the runtime script and the other arguments.
MAX_COMMAND_BYTES = 32 * 1024
# The env travels in the same command line, hex-encoded (twice its bytes): 4 KiB of names and values keeps a
# start with the longest command under the cap (tests/hostlink/test_pure.py builds one).
MAX_ENV_BYTES = 4 * 1024
MAX_PATH_BYTES = 4096  # PATH_MAX
_BAD_PORT = 0  # stands in for an invalid port so that it takes no part in the address:port check


def resolve_path(explicit: str | None) -> Path:
    """`-c FILE` when given, else `./cluster.toml` when it exists, else `$LOADMASTER_CONFIG` when set.

    With none of them the answer is `./cluster.toml`, so the error names the file looked for first.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    local = Path(DEFAULT_CONFIG)
    from_env = os.environ.get(ENV_CONFIG, "").strip()
    if not local.is_file() and from_env:
        return Path(from_env).expanduser()
    return local


def load(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and validate a cluster file; raises ConfigError listing every problem."""
    file = str(path)
    if Path(path).is_dir():
        hint = f"pass the file itself, e.g. -c {Path(path) / DEFAULT_CONFIG}"
        raise ConfigError([ConfigProblem(file, "", "", f"is a directory, not a cluster file ({hint})")])
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(file, "", "", f"not found (create it, pass -c FILE or set ${ENV_CONFIG})")]
        ) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", "", f"cannot be read: {exc.strerror or exc}")]) from None
    return parse(decode(raw, file), file)


def decode(raw: bytes, file: str = DEFAULT_CONFIG) -> str:
    """The text of a cluster file's bytes; raises ConfigError naming the line of a byte that is not UTF-8."""
    try:
        return raw.decode("utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise ConfigError(
            [ConfigProblem(file, f"line {line}", "", f"is not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")]
        ) from None


def parse(text: str, file: str = DEFAULT_CONFIG) -> ClusterConfig:
    """Validate the text of a cluster file; `file` is only used to name it in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(file, text, str(exc))]) from None
    except RecursionError:  # the parser recurses per level: a hostile file must not end the reader
        raise ConfigError([_too_deep(file)]) from None
    if _depth(data) > MAX_DEPTH:
        raise ConfigError([_too_deep(file)])
    return _Reader(file).read(data)


def _too_deep(file: str) -> ConfigProblem:
    return ConfigProblem(
        file, "", "", f"nests arrays or tables more than {MAX_DEPTH} levels deep; a cluster file needs 3 "
        "(e.g. [[services]] → resources → gpu)"
    )  # fmt: skip


def _depth(value: Any) -> int:
    """How deeply `value` nests, counted without recursion."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                return deepest
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _syntax_problem(file: str, text: str, message: str) -> ConfigProblem:
    position = _TOML_POSITION_RE.search(message)
    if not position:
        return ConfigProblem(file, "", "", f"is not valid TOML: {message}")
    line, column = int(position.group(1)), int(position.group(2))
    lines = text.splitlines()
    source = lines[line - 1].strip() if line <= len(lines) else ""
    shown = f", in: {source}" if source else ""
    reason = message[: position.start()]
    return ConfigProblem(file, f"line {line}", "", f"is not valid TOML: {reason} (column {column}{shown})")


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(word, known, n=1)
    if close:
        return f' (did you mean "{close[0]}"?)'
    return f" (known: {', '.join(known)})" if known else ""


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")  # fmt: skip


def _got(value: Any) -> str:
    return f"got {_kind(value)} {literal(value)}"


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[ConfigProblem] = []

    def problem(self, entry: str, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, entry, field, message))

    # -- generic field access ------------------------------------------------

    def unknown_keys(self, table: dict[str, Any], known: tuple[str, ...], entry: str, what: str = "key") -> None:
        for key in table:
            if key not in known:
                self.problem(entry, key, f"is not a known {what}{_did_you_mean(key, known)}")

    def take(
        self,
        table: dict[str, Any],
        key: str,
        entry: str,
        convert: Callable[[Any], T],
        default: T | _Missing = _MISSING,
        example: str = "",
    ) -> T | None:
        """The converted value of `key`, its default when absent, or None after recording a problem."""
        if key not in table:
            if isinstance(default, _Missing):
                self.problem(entry, key, f"is required (e.g. {example})" if example else "is required")
                return None
            return default
        try:
            return convert(table[key])
        except (UnitError, ValueError) as exc:
            self.problem(entry, key, str(exc))
            return None

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem("", key, f"must be a table (write [{key}] above its keys), {_got(value)}")
            return {}
        return value

    # -- sections ----------------------------------------------------------------

    def read(self, data: dict[str, Any]) -> ClusterConfig:
        if not data:
            self.problem("", "", "declares nothing (add at least one [[hosts]] table, see README.md)")
            raise ConfigError(self.problems)
        self.unknown_keys(data, SECTIONS, "", "section")
        cluster = self.table(data, "cluster")
        name, poll, timeout, state_dir, demo = self.read_cluster(cluster)
        enforce = bool(self.take(cluster, "enforce_limits", "cluster", _bool, False))
        defaults = self.read_defaults(self.table(data, "defaults"))
        policy = self.read_policy(self.table(data, "policy"))
        api = self.read_api(self.table(data, "api"))
        if not data.get("hosts", []):
            self.problem("", "hosts", "are missing: declare at least one [[hosts]] table with name and address")
        hosts = self.read_hosts(data.get("hosts", []), demo, defaults)
        services = self.read_services(data.get("services", []))
        self.check_hosts(hosts)
        self.check_services(services, [h for h, _, _ in hosts])
        self.check_intervals(services, poll)
        if self.problems:
            raise ConfigError(self.problems)
        return ClusterConfig(
            name=name,
            hosts=tuple(h for h, _, _ in hosts),
            services=tuple(s for s, _, _ in services),
            poll_interval=poll,
            failure_timeout=timeout,
            state_dir=state_dir,
            demo=demo,
            enforce_limits=enforce,
            defaults=defaults,
            policy=policy,
            api=api,
            source=self.file,
        )

    def read_cluster(self, table: dict[str, Any]) -> tuple[str, float, float, str | None, bool]:
        e = "cluster"
        d = ClusterConfig(name="", hosts=(), services=())
        self.unknown_keys(table, CLUSTER_KEYS, e)
        name = self.take(table, "name", e, _name, "loadmaster")
        poll = self.take(table, "poll_interval", e, _positive_duration, d.poll_interval)
        timeout = self.take(table, "failure_timeout", e, _positive_duration, d.failure_timeout)
        if poll is not None and timeout is not None and timeout <= poll:
            self.problem(
                e,
                "failure_timeout",
                f"{literal(table.get('failure_timeout', timeout))} must be longer than poll_interval "
                f"({literal(table.get('poll_interval', poll))}), or every host looks down between two polls",
            )
        state_dir = self.take(table, "state_dir", e, _nonempty, None)
        demo = self.take(table, "demo", e, _bool, False)
        return name or "loadmaster", poll or d.poll_interval, timeout or d.failure_timeout, state_dir, bool(demo)

    def read_defaults(self, table: dict[str, Any]) -> SshDefaults:
        e = "defaults"
        d = SshDefaults()
        self.unknown_keys(table, DEFAULTS_KEYS, e)
        return SshDefaults(
            user=self.take(table, "user", e, _nonempty, d.user),
            port=self.take(table, "port", e, _port, d.port) or d.port,
            identity_file=self.take(table, "identity_file", e, _nonempty, d.identity_file),
            known_hosts=self.take(table, "known_hosts", e, _nonempty, d.known_hosts),
            host_key_policy=self.take(table, "host_key_policy", e, _enum(HostKeyPolicy), d.host_key_policy)
            or d.host_key_policy,
            connect_timeout=self.take(table, "connect_timeout", e, _positive_duration, d.connect_timeout)
            or d.connect_timeout,
        )

    def read_policy(self, table: dict[str, Any]) -> Policy:
        e = "policy"
        d = Policy()
        self.unknown_keys(table, POLICY_KEYS, e)
        return Policy(
            strategy=self.take(table, "strategy", e, _enum(Strategy), d.strategy) or d.strategy,
            auto_apply=bool(self.take(table, "auto_apply", e, _bool, d.auto_apply)),
            max_moves_per_cycle=_or(
                self.take(table, "max_moves_per_cycle", e, _count, d.max_moves_per_cycle), d.max_moves_per_cycle
            ),
            cooldown=_or(self.take(table, "cooldown", e, parse_duration, d.cooldown), d.cooldown),
            solver_time_limit=self.take(table, "solver_time_limit", e, _positive_duration, d.solver_time_limit)
            or d.solver_time_limit,
            settle=_or(self.take(table, "settle", e, parse_duration, d.settle), d.settle),
            solver_workers=self.take(table, "solver_workers", e, _solver_workers, d.solver_workers),
            max_stops_per_reload=self.take(table, "max_stops_per_reload", e, _count, d.max_stops_per_reload),
        )

    def read_api(self, table: dict[str, Any]) -> ApiSettings:
        e = "api"
        self.unknown_keys(table, API_KEYS, e)
        listen = self.take(table, "listen", e, _listen, None)
        cert = self.take(table, "tls_cert", e, _nonempty, None)
        key = self.take(table, "tls_key", e, _nonempty, None)
        for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
            if given in table and missing not in table:
                self.problem(e, missing, f"is required with {given}: HTTPS needs both the certificate and its key")
        return ApiSettings(listen=listen, tls_cert=cert, tls_key=key)

    def entries(self, value: Any, section: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(label, position, table) per element of an array of tables: `hosts "name"` (or `hosts[i]`), `hosts[i]`."""
        if not isinstance(value, list):
            self.problem(
                "", section, f"must be an array of tables (write [[{section}]] above each entry), {_got(value)}"
            )
            return []
        out = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            position = f"{section}[{i}]"
            entry = f'{section} "{name}"' if isinstance(name, str) and name.strip() else position
            if not isinstance(item, dict):
                self.problem(entry, "", f"must be a table (write [[{section}]] above its keys), {_got(item)}")
                continue
            out.append((entry, position, item))
        return out

    def read_hosts(self, value: Any, demo_cluster: bool, defaults: SshDefaults) -> list[tuple[Host, str, str]]:
        hosts = []
        for e, position, t in self.entries(value, "hosts"):
            self.unknown_keys(t, HOST_KEYS, e)
            address = self.take(t, "address", e, _nonempty, example='address = "10.0.0.5"') or ""
            demo = bool(self.take(t, "demo", e, _bool, demo_cluster))
            capacity = self.read_resources(t, "capacity", e, required=(CPU, MEM)) if "capacity" in t else None
            if demo and "capacity" not in t:
                self.problem(e, "capacity", 'is required on a demo host, e.g. capacity = { cpu = 4, mem = "8GiB" }')
            if demo and address and not is_demo_address(address):
                why = "the demo fleet listens on IPv4 loopback only" if _is_loopback(address) else "not on this machine"
                self.problem(e, "address", f'{literal(address)}: {why}; a demo host needs e.g. "127.0.0.1"')
            # From the table as written, so a reserve is judged against the capacity even when that is invalid.
            written = t.get("capacity")
            declared = written if isinstance(written, dict) else {}
            dimensions = (CPU, MEM, *(d for d in declared if d not in (CPU, MEM)))
            reserve = self.read_resources(t, "reserve", e, dimensions=dimensions) if "reserve" in t else Resources()
            if capacity is not None and reserve is not None and not reserve.fits(capacity):
                over = [d for d in reserve.dimensions if reserve.get(d) > capacity.get(d)]
                shown = f"{literal(t['reserve'])} is larger than capacity {literal(t['capacity'])}"
                self.problem(e, "reserve", f"{shown} in {', '.join(over)}; a reserve is kept free out of the capacity")
            host = Host(
                name=self.take(t, "name", e, _name, example='name = "node-a"') or "",
                address=address,
                port=_or(self.take(t, "port", e, _port, defaults.port), _BAD_PORT),
                user=self.take(t, "user", e, _nonempty, defaults.user),
                labels=self.read_labels(t, "labels", e),
                capacity=capacity,
                reserve=reserve or Resources(),
                identity_file=self.take(t, "identity_file", e, _nonempty, defaults.identity_file),
                jump=self.take(t, "jump", e, _name, None),
                demo=demo,
            )
            hosts.append((host, e, position))
        return hosts

    def read_services(self, value: Any) -> list[tuple[Service, str, str]]:
        services = []
        for e, position, t in self.entries(value, "services"):
            self.unknown_keys(t, SERVICE_KEYS, e)
            replicas = self.take(t, "replicas", e, _replicas, 1)
            min_healthy = self.take(t, "min_healthy", e, _count, 0)
            if replicas is not None and min_healthy is not None and min_healthy > replicas:
                self.problem(e, "min_healthy", f"{min_healthy} is more than replicas ({replicas}); use 0 to {replicas}")
            cpu = self.take(t, "cpu", e, _positive(parse_cpu), example='cpu = "500m"')
            mem = self.take(t, "mem", e, _positive(parse_size), example='mem = "256MiB"')
            extra = self.read_resources(t, "resources", e, forbidden=(CPU, MEM)) if "resources" in t else None
            service = Service(
                name=self.take(t, "name", e, _name, example='name = "web"') or "",
                command=self.take(t, "command", e, _command, example='command = "python3 -m http.server {port}"') or "",
                replicas=replicas or 0,
                resources=Resources(cpu or 0, mem or 0, extra.extra if extra else {}),
                max_per_host=self.take(t, "max_per_host", e, _positive_int, None),
                spread_over=self.take(t, "spread_over", e, _nonempty, None),
                require=self.read_labels(t, "require", e),
                avoid=tuple(self.take(t, "avoid", e, _names, []) or ()),
                priority=self.take(t, "priority", e, _int, 0) or 0,
                min_healthy=min_healthy or 0,
                autoscale=self.read_autoscale(t, e) if "autoscale" in t else None,
                check=self.read_check(t, e) if "check" in t else None,
                env=self.read_env(t, e),
                workdir=self.take(t, "workdir", e, _workdir, None),
                user=self.take(t, "user", e, _user, None),
                stop_signal=self.take(t, "stop_signal", e, _stop_signal, "TERM") or "TERM",
                stop_timeout=self.take(t, "stop_timeout", e, parse_duration, None),
                log_max_size=self.take(t, "log_max_size", e, _log_size, 10 << 20) or 10 << 20,
                log_keep=_or(self.take(t, "log_keep", e, _log_keep, 3), 3),
            )
            services.append((service, e, position))
        return services

    def read_check(self, t: dict[str, Any], e: str) -> HealthCheck | None:
        """`[services.check]` (or `check = { … }`); None after recording its problems."""
        value = t["check"]
        if not isinstance(value, dict):
            self.problem(e, "check", f'must be a table like {{ kind = "http", path = "/" }}, {_got(value)}')
            return None
        before = len(self.problems)
        d = HealthCheck(CheckKind.TCP)
        for key in value:
            if key not in CHECK_KEYS:
                self.problem(e, f"check.{key}", f"is not a known key{_did_you_mean(key, CHECK_KEYS)}")
        kind: CheckKind | None = None
        if "kind" not in value:
            self.problem(e, "check.kind", 'is required: "tcp", "http" or "exec" (e.g. kind = "http")')
        else:
            try:
                kind = _enum(CheckKind)(value["kind"])
            except ValueError as exc:
                self.problem(e, "check.kind", str(exc))
        for key, only in _CHECK_ONLY.items():
            if kind is not None and key in value and kind is not only:
                self.problem(e, f"check.{key}", f'applies to "{only}" checks only, this one is "{kind}"')
        if kind is CheckKind.EXEC and "command" not in value:
            self.problem(e, "check.command", 'is required for an exec check (e.g. command = "test -e ready")')
        if kind is CheckKind.EXEC and "port" in value:
            self.problem(e, "check.port", "applies to tcp and http checks only (an exec command can use {port})")
        command = t.get("command")
        if (
            kind in (CheckKind.TCP, CheckKind.HTTP)
            and "port" not in value
            and (isinstance(command, str) and "{port}" not in command)
        ):
            self.problem(
                e, "check", f"a {kind} check needs a port: give check.port, or use {{port}} in the service's command"
            )
        got: dict[str, Any] = {}
        for key, convert in _CHECK_CONVERT.items():
            if key in value:
                where = f"check.{key}"
                try:
                    got[key] = convert(value[key])
                except (UnitError, ValueError) as exc:
                    self.problem(e, where, str(exc))
        timeout, interval = got.get("timeout", d.timeout), got.get("interval", d.interval)
        if "timeout" in got and timeout > interval:
            self.problem(
                e, "check.timeout", f"{literal(value['timeout'])} is longer than the interval ({interval:g} s)"
            )
        if kind is None or len(self.problems) != before:
            return None
        return HealthCheck(kind=kind, **got)

    # -- sub-tables ------------------------------------------------------------

    def read_autoscale(self, t: dict[str, Any], e: str) -> Autoscale | None:
        value = t["autoscale"]
        if not isinstance(value, dict):
            self.problem(
                e, "autoscale", f"must be a table like {{ min = 2, max = 20, cpu_target = 0.6 }}, {_got(value)}"
            )
            return None
        before = len(self.problems)
        # Named as a person would find them: `autoscale.min`, not a bare `min` of the service.
        table = {f"autoscale.{k}": v for k, v in value.items()}
        self.unknown_keys(table, tuple(f"autoscale.{k}" for k in AUTOSCALE_KEYS), e)
        d, example = Autoscale(1, 1, 1.0), "autoscale = { min = 2, max = 20, cpu_target = 0.6 }"
        low = self.take(table, "autoscale.min", e, _positive_int, example=example)
        high = self.take(table, "autoscale.max", e, _positive_int, example=example)
        target = self.take(table, "autoscale.cpu_target", e, _positive_ratio, example=example)
        window = self.take(table, "autoscale.window", e, _positive_duration, d.window)
        down = self.take(table, "autoscale.scale_down_window", e, parse_duration, d.scale_down_window)
        if low is not None and high is not None and low > high:
            self.problem(e, "autoscale.max", f"{high} is less than min ({low})")
        if len(self.problems) > before or low is None or high is None or target is None:
            return None
        return Autoscale(low, high, target, window or d.window, d.scale_down_window if down is None else down)

    def read_resources(
        self,
        t: dict[str, Any],
        field: str,
        entry: str,
        *,
        required: tuple[str, ...] = (),
        dimensions: tuple[str, ...] | None = None,
        forbidden: tuple[str, ...] = (),
    ) -> Resources | None:
        """A `{ cpu = …, mem = …, gpu = … }` table; cpu and mem must be more than zero when `required`.

        `dimensions` limits the keys (a reserve only takes what the host's capacity has);
        otherwise any further key is a new dimension such as gpu, counted in whole units.
        """
        value = t[field]
        if not isinstance(value, dict):
            self.problem(entry, field, f'must be a table like {{ cpu = 4, mem = "8GiB" }}, {_got(value)}')
            return None
        before = len(self.problems)
        missing = [d for d in required if d not in value]
        amounts: dict[str, int] = {}
        for key, amount in value.items():
            where = f"{field}.{key}"
            if key in forbidden:
                self.problem(entry, where, f"belongs on the service itself ({key} = {literal(amount)}), not in {field}")
                continue
            close = difflib.get_close_matches(key, missing, n=1)
            if close or (dimensions is not None and key not in dimensions):
                known = missing if close else dimensions or ()
                self.problem(entry, where, f"is not a known dimension{_did_you_mean(key, known)}")
                continue
            parse = parse_cpu if key == CPU else parse_size if key == MEM else parse_quantity
            try:
                amounts[key] = parse(amount)
            except UnitError as exc:
                self.problem(entry, where, str(exc))
                continue
            if key in required and amounts[key] <= 0:
                self.problem(entry, where, f"{literal(amount)} must be more than zero")
        if missing and len(self.problems) == before:
            self.problem(entry, field, f'must give {" and ".join(missing)}, e.g. {{ cpu = 4, mem = "8GiB" }}')
        return Resources.of(amounts) if len(self.problems) == before else None

    def read_env(self, t: dict[str, Any], entry: str) -> dict[str, str]:
        value = t.get("env", {})
        if not isinstance(value, dict):
            self.problem(entry, "env", f'must be a table like {{ PORT = "{{port}}", MODE = "prod" }}, {_got(value)}')
            return {}
        env = {}
        for key, text in value.items():
            where = f"env.{key}"
            if not _ENV_NAME_RE.fullmatch(key):
                self.problem(entry, where, "is not a variable name (letters, digits and _, no digit first)")
            elif not isinstance(text, str):
                self.problem(entry, where, f'must be a string (quote it: {key} = "{literal(text)}"), {_got(text)}')
            elif "\0" in text:
                self.problem(entry, where, "contains a NUL character, which no environment variable can hold")
            else:
                env[key] = text
        size = sum(len(k.encode()) + len(v.encode()) + 1 for k, v in env.items())
        if size > MAX_ENV_BYTES:
            self.problem(
                entry, "env", f"holds {size:,} bytes; at most {MAX_ENV_BYTES // 1024} KiB of names and values travel "
                "in the start command (put more in a file the command reads)",
            )  # fmt: skip
        return env

    def read_labels(self, t: dict[str, Any], field: str, entry: str) -> dict[str, str]:
        value = t.get(field, {})
        if not isinstance(value, dict):
            self.problem(entry, field, f'must be a table like {{ zone = "eu-1" }}, {_got(value)}')
            return {}
        labels = {}
        for key, label in value.items():
            if isinstance(label, str) and label.strip():
                labels[key] = label
            else:
                self.problem(entry, f"{field}.{key}", f'must be a non-empty string (e.g. {key} = "a"), {_got(label)}')
        return labels

    # -- cross-checks ------------------------------------------------------------

    def check_hosts(self, hosts: list[tuple[Host, str, str]]) -> None:
        self.check_unique([(h.name, e, p) for h, e, p in hosts], "host")
        endpoints: dict[tuple[str, int], str] = {}
        for h, e, _ in hosts:
            if not h.address or h.port == _BAD_PORT:
                continue
            endpoint = (h.address.lower(), 0 if h.is_local else h.port)
            shown = LOCAL_ADDRESS if h.is_local else f"{h.address}:{h.port}"
            if endpoint in endpoints:
                self.problem(
                    e, "address" if h.is_local else "port", f"{shown} is already used by {endpoints[endpoint]}"
                )
            else:
                endpoints[endpoint] = e
        names = [h.name for h, _, _ in hosts if h.name]
        for h, e, _ in hosts:
            if h.jump is not None and (h.jump not in names or h.jump == h.name):
                others = [n for n in names if n != h.name]
                self.problem(e, "jump", f'"{h.jump}" is not another host in this file{_did_you_mean(h.jump, others)}')

    def check_unique(self, named: list[tuple[str, str, str]], what: str) -> None:
        first: dict[str, str] = {}
        for name, entry, position in named:
            if name in first:
                twice = f'"{name}" is declared twice, as {first[name]} and {position}'
                self.problem(entry, "name", f"{twice} ({what} names must be unique)")
            elif name:
                first[name] = position

    def check_services(self, services: list[tuple[Service, str, str]], hosts: list[Host]) -> None:
        label_values: dict[str, set[str]] = {}
        for h in hosts:
            for k, v in h.labels.items():
                label_values.setdefault(k, set()).add(v)
        dimensions = {d for h in hosts if h.capacity for d in h.capacity.extra}
        self.check_unique([(s.name, e, p) for s, e, p in services], "service")
        names = sorted({s.name for s, _, _ in services if s.name})
        for s, e, _ in services:
            for other in s.avoid:
                if other not in names:
                    self.problem(
                        e, "avoid", f'names "{other}", which is not a service in this file{_did_you_mean(other, names)}'
                    )
            if s.spread_over is not None and s.spread_over not in label_values:
                self.problem(
                    e,
                    "spread_over",
                    f'"{s.spread_over}" is not a label of any host{_did_you_mean(s.spread_over, label_values)}',
                )
            self.check_require(s, e, hosts, label_values)
            for d in s.resources.extra:
                if d not in dimensions:
                    hint = _did_you_mean(d, dimensions) if dimensions else " (no host declares further dimensions)"
                    self.problem(e, f"resources.{d}", f"is not in any host's capacity{hint}")

    def check_intervals(self, services: list[tuple[Service, str, str]], poll: float | None) -> None:
        """Checks run in the probe loop, once per poll at most: a shorter interval would silently stretch."""
        for s, e, _ in services:
            if s.check is not None and poll is not None and s.check.interval < poll:
                self.problem(
                    e,
                    "check.interval",
                    f"{s.check.interval:g} s is shorter than poll_interval ({poll:g} s): checks run in the "
                    "probe loop, at most once per poll; raise the interval or lower poll_interval",
                )

    def check_require(self, s: Service, e: str, hosts: list[Host], label_values: dict[str, set[str]]) -> None:
        each_exists = True
        for k, v in s.require.items():
            if k not in label_values:
                self.problem(e, f"require.{k}", f"names a label no host has{_did_you_mean(k, label_values)}")
                each_exists = False
            elif v not in label_values[k]:
                values = ", ".join(f'"{x}"' for x in sorted(label_values[k]))
                self.problem(e, f"require.{k}", f'"{v}" matches no host (hosts have {k} = {values})')
                each_exists = False
        if each_exists and s.require and hosts and not any(s.matches(h) for h in hosts):
            self.problem(e, "require", f"{literal(dict(s.require))} matches no host: no host has all these labels")


# -- converters: each returns the value or raises ValueError saying what is valid --


def is_demo_address(address: str) -> bool:
    """An address `loadmaster demo` can serve a demo host on: "localhost" or IPv4 loopback (127.0.0.0/8, whose
    every address is this machine's, so each demo host can have its own). Not "local", which runs replicas without
    SSH, and not ::1: the demo fleet listens on IPv4 loopback only. `validate` and the demo use this one rule."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address) in _IPV4_LOOPBACK
    except ValueError:
        return False


_IPV4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _is_loopback(address: str) -> bool:
    if address in ("localhost", LOCAL_ADDRESS):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _workdir(value: Any) -> str:
    path = _nonempty(value)
    if "\0" in path:
        raise ValueError("contains a NUL character, which no path can hold")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"is longer than {MAX_PATH_BYTES} bytes, the longest path Linux takes")
    if not (path.startswith("/") or path == "~" or path.startswith("~/")):
        raise ValueError(f'{literal(value)} must be absolute ("/srv/web") or in the SSH user\'s home ("~/web")')
    return path


def _user(value: Any) -> str:
    if not _USER_RE.fullmatch(_string(value)):
        raise ValueError(f'{literal(value)} is not a user name (letters, digits, ".", "_" and "-", e.g. "www-data")')
    return value


def _stop_signal(value: Any) -> str:
    name = _string(value).upper().removeprefix("SIG")
    if name not in STOP_SIGNALS:
        raise ValueError(f"{literal(value)} is not one of: " + ", ".join(f'"{s}"' for s in STOP_SIGNALS))
    return name


def _log_size(value: Any) -> int:
    size = parse_size(value)
    if size < MIN_LOG_SIZE:
        raise ValueError(f'{literal(value)} is less than {MIN_LOG_SIZE} bytes (e.g. "10MiB")')
    return size


def _log_keep(value: Any) -> int:
    if not 0 <= _int(value) <= MAX_LOG_KEEP:
        raise ValueError(f"must be a number of rotated files from 0 to {MAX_LOG_KEEP}, got {value}")
    return value


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, {_got(value)}")
    return value


def _nonempty(value: Any) -> str:
    if not _string(value).strip():
        raise ValueError(f"must not be empty, got {literal(value)}")
    return value


def _replicas(value: Any) -> int:
    if _count(value) > MAX_REPLICAS:
        raise ValueError(f"{value} is more than {MAX_REPLICAS:,} replicas of one service (split it into services)")
    return value


def _command(value: Any) -> str:
    size = len(shlex.quote(_nonempty(value)).encode("utf-8"))
    if size > MAX_COMMAND_BYTES:
        raise ValueError(
            f"is {size:,} bytes (quoted); a command must stay under {MAX_COMMAND_BYTES // 1024} KiB, as it reaches "
            "the host inside one SSH command line, which Linux caps at 128 KiB (MAX_ARG_STRLEN): put a longer one "
            "in a script on the host"
        )
    return value


def _listen(value: Any) -> str:
    parse_bind(_string(value))  # raises a ValueError that says what would be valid
    return value


def _name(value: Any) -> str:
    if not _NAME_RE.fullmatch(_string(value)):
        raise ValueError(f'{literal(value)} is not a valid name (use letters, digits, ".", "_" and "-", e.g. "web-1")')
    return value


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f'must be a list of names like ["cache"], {_got(value)}')
    return [_name(v) for v in value]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, {_got(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, {_got(value)}")
    return value


def _count(value: Any) -> int:
    if _int(value) < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _positive_int(value: Any) -> int:
    if _int(value) < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


MAX_SOLVER_WORKERS = 64


def _solver_workers(value: Any) -> int:
    if not 1 <= _int(value) <= MAX_SOLVER_WORKERS:
        raise ValueError(f"must be a number of solver threads from 1 to {MAX_SOLVER_WORKERS}, got {value}")
    return value


def _positive_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"must be a number more than zero (e.g. 0.6 = 60% of the requested cpu), {_got(value)}")
    return float(value)


def _port(value: Any) -> int:
    if not 1 <= _int(value) <= 65535:
        raise ValueError(f"must be a port from 1 to 65535, got {value}")
    return value


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'{literal(value)} must be more than zero (e.g. "1s")')
    return seconds


def _url_path(value: Any) -> str:
    if not _string(value).startswith("/") or any(c.isspace() or ord(c) < 32 or c == "#" for c in value):
        raise ValueError(f'{literal(value)} must be a URL path starting with "/" without spaces (e.g. "/healthz")')
    return value


def _http_status(value: Any) -> int:
    if not 100 <= _int(value) <= 599:
        raise ValueError(f"must be an HTTP status from 100 to 599, got {value}")
    return value


def _positive(parse: Callable[[Any], int]) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        amount = parse(value)
        if amount <= 0:
            raise ValueError(f"{literal(value)} must be more than zero")
        return amount

    return convert


_CHECK_CONVERT: dict[str, Callable[[Any], Any]] = {
    "path": _url_path,
    "status": _http_status,
    "command": _nonempty,
    "port": _port,
    "interval": _positive_duration,
    "timeout": _positive_duration,
    "grace": parse_duration,
    "unhealthy_after": _positive_int,
    "healthy_after": _positive_int,
}


def _enum(kind: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        options = [m.value for m in kind]
        if value not in options:
            raise ValueError(f"{literal(value)} is not one of: " + ", ".join(f'"{o}"' for o in options))
        return kind(value)

    return convert
