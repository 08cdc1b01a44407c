"""`cluster.toml` → `ClusterConfig`, reporting every problem at once.

Each problem names the file, the entry and the field, with the bad value and
what would be valid, so that an operator can fix the whole file in one pass.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError, ConfigProblem
from core.model import (
    CPU,
    MEM,
    ClusterConfig,
    Host,
    HostKeyPolicy,
    Policy,
    Resources,
    Service,
    SshDefaults,
    Strategy,
)
from core.units import UnitError, parse_cpu, parse_duration, parse_quantity, parse_size

T = TypeVar("T")

ENV_CONFIG = "LOADMASTER_CONFIG"
DEFAULT_CONFIG = "cluster.toml"

SECTIONS = ("cluster", "defaults", "hosts", "services", "policy")
CLUSTER_KEYS = ("name", "poll_interval", "failure_timeout", "state_dir", "demo")
DEFAULTS_KEYS = ("user", "port", "identity_file", "known_hosts", "host_key_policy", "connect_timeout")
HOST_KEYS = ("name", "address", "port", "user", "labels", "capacity", "reserve", "identity_file", "jump", "demo")
SERVICE_KEYS = (
    "name", "command", "replicas", "cpu", "mem", "resources", "max_per_host",
    "spread_over", "require", "avoid", "priority", "min_healthy",
)  # fmt: skip
POLICY_KEYS = ("strategy", "auto_apply", "max_moves_per_cycle", "cooldown", "solver_time_limit", "settle")

_MISSING = object()


def resolve_path(explicit: str | None) -> Path:
    """`-c FILE`, else `./cluster.toml` when it exists, else `$LOADMASTER_CONFIG`."""
    if explicit:
        return Path(explicit)
    local = Path(DEFAULT_CONFIG)
    if not local.exists() and os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    return local


def load(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and validate a cluster file; raises ConfigError listing every problem."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, "", "", "not found (create it, or pass -c FILE)")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", "", f"cannot be read: {exc.strerror}")]) from None
    return parse(raw.decode("utf-8", errors="replace"), file)


def parse(text: str, file: str = DEFAULT_CONFIG) -> ClusterConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", "", f"is not valid TOML: {exc}")]) from None
    return _Reader(file).read(data)


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[ConfigProblem] = []

    def problem(self, entry: str, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, entry, field, message))

    # -- generic field access ------------------------------------------------

    def unknown_keys(self, table: dict[str, Any], known: tuple[str, ...], entry: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(known)})"
                self.problem(entry, key, f"is not a known key{hint}")

    def take(
        self,
        table: dict[str, Any],
        key: str,
        entry: str,
        convert: Callable[[Any], T],
        default: T | object = _MISSING,
    ) -> T | None:
        if key not in table:
            if default is _MISSING:
                self.problem(entry, key, "is required")
                return None
            return default  # type: ignore[return-value]
        try:
            return convert(table[key])
        except (UnitError, ValueError, TypeError) as exc:
            self.problem(entry, key, str(exc))
            return None

    def table(self, data: dict[str, Any], key: str, entry: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(entry, key, f"must be a table ([{key}]), got {_kind(value)}")
            return {}
        return value

    # -- sections ----------------------------------------------------------------

    def read(self, data: dict[str, Any]) -> ClusterConfig:
        self.unknown_keys(data, SECTIONS, "")
        cluster = self.table(data, "cluster", "")
        self.unknown_keys(cluster, CLUSTER_KEYS, "cluster")
        name = self.take(cluster, "name", "cluster", _name, "loadmaster")
        poll = self.take(cluster, "poll_interval", "cluster", _positive_duration, 1.0)
        timeout = self.take(cluster, "failure_timeout", "cluster", _positive_duration, 3.0)
        state_dir = self.take(cluster, "state_dir", "cluster", _string, None)
        demo = self.take(cluster, "demo", "cluster", _bool, False)

        defaults = self.read_defaults(self.table(data, "defaults", ""))
        policy = self.read_policy(self.table(data, "policy", ""))
        hosts = self.read_hosts(data.get("hosts", []), bool(demo), defaults)
        services = self.read_services(data.get("services", []))
        self.cross_check(hosts, services)
        if self.problems:
            raise ConfigError(self.problems)
        return ClusterConfig(
            name=name or "loadmaster",
            hosts=tuple(hosts),
            services=tuple(services),
            poll_interval=poll or 1.0,
            failure_timeout=timeout or 3.0,
            state_dir=state_dir,
            demo=bool(demo),
            defaults=defaults,
            policy=policy,
            source=self.file,
        )

    def read_defaults(self, table: dict[str, Any]) -> SshDefaults:
        e = "defaults"
        self.unknown_keys(table, DEFAULTS_KEYS, e)
        return SshDefaults(
            user=self.take(table, "user", e, _string, None),
            port=self.take(table, "port", e, _port, 22) or 22,
            identity_file=self.take(table, "identity_file", e, _string, None),
            known_hosts=self.take(table, "known_hosts", e, _string, None),
            host_key_policy=self.take(table, "host_key_policy", e, _enum(HostKeyPolicy), HostKeyPolicy.STRICT)
            or HostKeyPolicy.STRICT,
            connect_timeout=self.take(table, "connect_timeout", e, _positive_duration, 10.0) or 10.0,
        )

    def read_policy(self, table: dict[str, Any]) -> Policy:
        e = "policy"
        self.unknown_keys(table, POLICY_KEYS, e)
        d = Policy()
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
        )

    def entries(self, value: Any, section: str) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(value, list):
            self.problem("", section, f"must be an array of tables ([[{section}]]), got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            entry = f'{section} "{name}"' if isinstance(name, str) and name else f"{section}[{i}]"
            if not isinstance(item, dict):
                self.problem(entry, "", f"must be a table, got {_kind(item)}")
                continue
            out.append((entry, item))
        return out

    def read_hosts(self, value: Any, demo_cluster: bool, defaults: SshDefaults) -> list[Host]:
        hosts = []
        for e, t in self.entries(value, "hosts"):
            self.unknown_keys(t, HOST_KEYS, e)
            before = len(self.problems)
            name = self.take(t, "name", e, _name)
            address = self.take(t, "address", e, _nonempty)
            port = self.take(t, "port", e, _port, defaults.port)
            labels = self.take(t, "labels", e, _labels, {})
            capacity = self.take(t, "capacity", e, _capacity, None)
            reserve = self.take(t, "reserve", e, _reserve, Resources())
            demo = self.take(t, "demo", e, _bool, demo_cluster)
            if demo and capacity is None and "capacity" not in t:
                self.problem(e, "capacity", "is required on a demo host (it reports what the file declares)")
            if capacity is not None and reserve is not None and not reserve.fits(capacity):
                self.problem(e, "reserve", "is larger than capacity in some dimension")
            host = Host(
                name=name or "",
                address=address or "",
                port=port or defaults.port,
                user=self.take(t, "user", e, _string, defaults.user),
                labels=labels or {},
                capacity=capacity,
                reserve=reserve or Resources(),
                identity_file=self.take(t, "identity_file", e, _string, defaults.identity_file),
                jump=self.take(t, "jump", e, _name, None),
                demo=bool(demo),
            )
            if len(self.problems) == before:
                hosts.append(host)
        return hosts

    def read_services(self, value: Any) -> list[Service]:
        services = []
        for e, t in self.entries(value, "services"):
            self.unknown_keys(t, SERVICE_KEYS, e)
            before = len(self.problems)
            replicas = self.take(t, "replicas", e, _count, 1)
            cpu = self.take(t, "cpu", e, _positive(parse_cpu, "cpu"))
            mem = self.take(t, "mem", e, _positive(parse_size, "mem"))
            extra = self.take(t, "resources", e, _extra_resources, {})
            min_healthy = self.take(t, "min_healthy", e, _count, 0)
            if replicas is not None and min_healthy is not None and min_healthy > replicas:
                self.problem(e, "min_healthy", f"{min_healthy} is more than replicas ({replicas})")
            service = Service(
                name=self.take(t, "name", e, _name) or "",
                command=self.take(t, "command", e, _nonempty) or "",
                replicas=replicas or 0,
                resources=Resources(cpu or 0, mem or 0, extra or {}),
                max_per_host=self.take(t, "max_per_host", e, _positive_int, None),
                spread_over=self.take(t, "spread_over", e, _name, None),
                require=self.take(t, "require", e, _labels, {}) or {},
                avoid=tuple(self.take(t, "avoid", e, _names, []) or ()),
                priority=self.take(t, "priority", e, _int, 0) or 0,
                min_healthy=min_healthy or 0,
            )
            if len(self.problems) == before:
                services.append(service)
        return services

    def cross_check(self, hosts: list[Host], services: list[Service]) -> None:
        seen: dict[str, str] = {}
        for h in hosts:
            e = f'hosts "{h.name}"'
            if h.name in seen:
                self.problem(e, "name", "is declared twice (host names must be unique)")
            seen[h.name] = h.name
        endpoints: dict[tuple[str, int], str] = {}
        for h in hosts:
            if h.is_local:
                continue
            key = (h.address, h.port)
            if key in endpoints and endpoints[key] != h.name:
                self.problem(
                    f'hosts "{h.name}"', "port", f'{h.address}:{h.port} is already used by host "{endpoints[key]}"'
                )
            endpoints.setdefault(key, h.name)
        host_names = {h.name for h in hosts}
        for h in hosts:
            if h.jump is not None and (h.jump not in host_names or h.jump == h.name):
                self.problem(f'hosts "{h.name}"', "jump", f'"{h.jump}" is not another host in this file')
        label_values: dict[str, set[str]] = {}
        for h in hosts:
            for k, v in h.labels.items():
                label_values.setdefault(k, set()).add(v)
        dimensions = {CPU, MEM} | {d for h in hosts if h.capacity for d in h.capacity.extra}
        names = [s.name for s in services]
        for s in services:
            e = f'services "{s.name}"'
            if names.count(s.name) > 1 and names.index(s.name) != services.index(s):
                self.problem(e, "name", "is declared twice (service names must be unique)")
            for other in s.avoid:
                if other not in names:
                    close = difflib.get_close_matches(other, names, n=1)
                    hint = f' (did you mean "{close[0]}"?)' if close else ""
                    self.problem(e, "avoid", f'names "{other}", which is not a service in this file{hint}')
            if s.spread_over is not None and s.spread_over not in label_values:
                known = ", ".join(sorted(label_values)) or "none"
                self.problem(e, "spread_over", f'"{s.spread_over}" is not a label of any host (labels: {known})')
            for k, v in s.require.items():
                if v not in label_values.get(k, set()):
                    self.problem(e, "require", f'{k} = "{v}" matches no host')
            for d in s.resources.extra:
                if d not in dimensions:
                    self.problem(e, "resources", f'"{d}" is not in any host\'s capacity')


# -- converters: each returns the value or raises ValueError saying what is valid --


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)  # fmt: skip


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_kind(value)} {value!r}")
    return value


def _nonempty(value: Any) -> str:
    if not _string(value).strip():
        raise ValueError("must not be empty")
    return value


def _name(value: Any) -> str:
    text = _nonempty(value)
    if any(c.isspace() or c in "/\\" for c in text):
        raise ValueError(f"{text!r} must not contain spaces or slashes")
    return text


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [_name(value)]
    if not isinstance(value, list):
        raise ValueError(f"must be a list of names, got {_kind(value)} {value!r}")
    return [_name(v) for v in value]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_kind(value)} {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, got {_kind(value)} {value!r}")
    return value


def _count(value: Any) -> int:
    if _int(value) < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _positive_int(value: Any) -> int:
    if _int(value) < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


def _port(value: Any) -> int:
    if not 1 <= _int(value) <= 65535:
        raise ValueError(f"must be a port from 1 to 65535, got {value}")
    return value


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'must be more than 0 (e.g. "1s"), got {value!r}')
    return seconds


def _positive(parse: Callable[[Any], int], what: str) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        amount = parse(value)
        if amount <= 0:
            raise ValueError(f"{value!r} must be more than zero")
        return amount

    return convert


def _enum(kind: type[T]) -> Callable[[Any], T]:
    def convert(value: Any) -> T:
        options = [m.value for m in kind]  # type: ignore[attr-defined]
        if value not in options:
            raise ValueError(f"{value!r} is not one of: " + ", ".join(f'"{o}"' for o in options))
        return kind(value)  # type: ignore[call-arg]

    return convert


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f'must be a table like {{ zone = "a" }}, got {_kind(value)} {value!r}')
    for k, v in value.items():
        if not isinstance(v, str):
            raise ValueError(f"{k} must be a string, got {_kind(v)} {v!r}")
    return dict(value)


def _resources(value: Any, *, positive: bool) -> Resources:
    if not isinstance(value, dict):
        raise ValueError(f'must be a table like {{ cpu = 4, mem = "8GiB" }}, got {_kind(value)} {value!r}')
    amounts: dict[str, int] = {}
    for k, v in value.items():
        parse = parse_cpu if k == CPU else parse_size if k == MEM else parse_quantity
        try:
            amounts[k] = parse(v)
        except UnitError as exc:
            raise ValueError(f"{k}: {exc}") from None
        if positive and k in (CPU, MEM) and amounts[k] <= 0:
            raise ValueError(f"{k}: {v!r} must be more than zero")
    if positive and (CPU not in amounts or MEM not in amounts):
        raise ValueError("must give both cpu and mem")
    return Resources.of(amounts)


def _capacity(value: Any) -> Resources:
    return _resources(value, positive=True)


def _reserve(value: Any) -> Resources:
    return _resources(value, positive=False)


def _extra_resources(value: Any) -> dict[str, int]:
    extra = _resources(value, positive=False)
    if CPU in value or MEM in value:
        raise ValueError("holds further dimensions only (gpu, …); cpu and mem are keys of the service")
    return dict(extra.extra)
