"""`[[services]]`: each service with its health check, autoscaling, environment; then what they name checked."""

from __future__ import annotations

from typing import Any

from core.config import values as conv
from core.config.keys import (
    _ENVNAME_RE,
    AUTOSCALE_KEYS,
    CHECK_KEYS,
    CHECK_ONLY,
    MAX_ENV_BYTES,
    SERVICE_KEYS,
)
from core.config.reader import Reader
from core.config.values import did_you_mean
from core.model import (
    CPU,
    MEM,
    Autoscale,
    CheckKind,
    HealthCheck,
    Host,
    Resources,
    Service,
)
from core.units import UnitError, literal, parse_cpu, parse_duration, parse_size


def read_services(r: Reader, value: Any) -> list[tuple[Service, str, str]]:
    services = []
    for e, position, t in r.entries(value, "services"):
        r.unknown_keys(t, SERVICE_KEYS, e)
        replicas = r.take(t, "replicas", e, conv.replicas, 1)
        min_healthy = r.take(t, "min_healthy", e, conv.count, 0)
        if replicas is not None and min_healthy is not None and min_healthy > replicas:
            r.problem(e, "min_healthy", f"{min_healthy} is more than replicas ({replicas}); use 0 to {replicas}")
        cpu = r.take(t, "cpu", e, conv.positive(parse_cpu), example='cpu = "500m"')
        mem = r.take(t, "mem", e, conv.positive(parse_size), example='mem = "256MiB"')
        extra = r.read_resources(t, "resources", e, forbidden=(CPU, MEM)) if "resources" in t else None
        service = Service(
            name=r.take(t, "name", e, conv.name, example='name = "web"') or "",
            command=r.take(t, "command", e, conv.command, example='command = "python3 -m http.server {port}"') or "",
            replicas=replicas or 0,
            resources=Resources(cpu or 0, mem or 0, extra.extra if extra else {}),
            max_per_host=r.take(t, "max_per_host", e, conv.positive_int, None),
            spread_over=r.take(t, "spread_over", e, conv.nonempty, None),
            require=r.read_labels(t, "require", e),
            avoid=tuple(r.take(t, "avoid", e, conv.names, []) or ()),
            priority=r.take(t, "priority", e, conv.integer, 0) or 0,
            min_healthy=min_healthy or 0,
            autoscale=read_autoscale(r, t, e) if "autoscale" in t else None,
            check=read_check(r, t, e) if "check" in t else None,
            env=read_env(r, t, e),
            workdir=r.take(t, "workdir", e, conv.workdir, None),
            user=r.take(t, "user", e, conv.user, None),
            stop_signal=r.take(t, "stop_signal", e, conv.stop_signal, "TERM") or "TERM",
            stop_timeout=r.take(t, "stop_timeout", e, parse_duration, None),
            log_max_size=r.take(t, "log_max_size", e, conv.log_size, 10 << 20) or 10 << 20,
            log_keep=conv.or_default(r.take(t, "log_keep", e, conv.log_keep, 3), 3),
        )
        services.append((service, e, position))
    return services


def read_check(r: Reader, t: dict[str, Any], e: str) -> HealthCheck | None:
    """`[services.check]` (or `check = { … }`); None after recording its problems."""
    value = t["check"]
    if not isinstance(value, dict):
        r.problem(e, "check", f'must be a table like {{ kind = "http", path = "/" }}, {conv.got(value)}')
        return None
    before = len(r.problems)
    d = HealthCheck(CheckKind.TCP)
    for key in value:
        if key not in CHECK_KEYS:
            r.problem(e, f"check.{key}", f"is not a known key{did_you_mean(key, CHECK_KEYS)}")
    kind: CheckKind | None = None
    if "kind" not in value:
        r.problem(e, "check.kind", 'is required: "tcp", "http" or "exec" (e.g. kind = "http")')
    else:
        try:
            kind = conv.enum_of(CheckKind)(value["kind"])
        except ValueError as exc:
            r.problem(e, "check.kind", str(exc))
    for key, only in CHECK_ONLY.items():
        if kind is not None and key in value and kind is not only:
            r.problem(e, f"check.{key}", f'applies to "{only}" checks only, this one is "{kind}"')
    if kind is CheckKind.EXEC and "command" not in value:
        r.problem(e, "check.command", 'is required for an exec check (e.g. command = "test -e ready")')
    if kind is CheckKind.EXEC and "port" in value:
        r.problem(e, "check.port", "applies to tcp and http checks only (an exec command can use {port})")
    command = t.get("command")
    if (
        kind in (CheckKind.TCP, CheckKind.HTTP)
        and "port" not in value
        and (isinstance(command, str) and "{port}" not in command)
    ):
        r.problem(e, "check", f"a {kind} check needs a port: give check.port, or use {{port}} in the service's command")
    got: dict[str, Any] = {}
    for key, convert in conv.CHECK_CONVERT.items():
        if key in value:
            where = f"check.{key}"
            try:
                got[key] = convert(value[key])
            except (UnitError, ValueError) as exc:
                r.problem(e, where, str(exc))
    timeout, interval = got.get("timeout", d.timeout), got.get("interval", d.interval)
    if "timeout" in got and timeout > interval:
        r.problem(e, "check.timeout", f"{literal(value['timeout'])} is longer than the interval ({interval:g} s)")
    if kind is None or len(r.problems) != before:
        return None
    return HealthCheck(kind=kind, **got)


def read_autoscale(r: Reader, t: dict[str, Any], e: str) -> Autoscale | None:
    value = t["autoscale"]
    if not isinstance(value, dict):
        r.problem(e, "autoscale", f"must be a table like {{ min = 2, max = 20, cpu_target = 0.6 }}, {conv.got(value)}")
        return None
    before = len(r.problems)
    # Named as a person would find them: `autoscale.min`, not a bare `min` of the service.
    table = {f"autoscale.{k}": v for k, v in value.items()}
    r.unknown_keys(table, tuple(f"autoscale.{k}" for k in AUTOSCALE_KEYS), e)
    d, example = Autoscale(1, 1, 1.0), "autoscale = { min = 2, max = 20, cpu_target = 0.6 }"
    low = r.take(table, "autoscale.min", e, conv.positive_int, example=example)
    high = r.take(table, "autoscale.max", e, conv.positive_int, example=example)
    target = r.take(table, "autoscale.cpu_target", e, conv.positive_ratio, example=example)
    window = r.take(table, "autoscale.window", e, conv.positive_duration, d.window)
    down = r.take(table, "autoscale.scale_down_window", e, parse_duration, d.scale_down_window)
    if low is not None and high is not None and low > high:
        r.problem(e, "autoscale.max", f"{high} is less than min ({low})")
    if len(r.problems) > before or low is None or high is None or target is None:
        return None
    return Autoscale(low, high, target, window or d.window, d.scale_down_window if down is None else down)


def read_env(r: Reader, t: dict[str, Any], entry: str) -> dict[str, str]:
    value = t.get("env", {})
    if not isinstance(value, dict):
        r.problem(entry, "env", f'must be a table like {{ PORT = "{{port}}", MODE = "prod" }}, {conv.got(value)}')
        return {}
    env = {}
    for key, text in value.items():
        where = f"env.{key}"
        if not _ENVNAME_RE.fullmatch(key):
            r.problem(entry, where, "is not a variable name (letters, digits and _, no digit first)")
        elif not isinstance(text, str):
            r.problem(entry, where, f'must be a string (quote it: {key} = "{literal(text)}"), {conv.got(text)}')
        elif "\0" in text:
            r.problem(entry, where, "contains a NUL character, which no environment variable can hold")
        else:
            env[key] = text
    size = sum(len(k.encode()) + len(v.encode()) + 1 for k, v in env.items())
    if size > MAX_ENV_BYTES:
        r.problem(
            entry, "env", f"holds {size:,} bytes; at most {MAX_ENV_BYTES // 1024} KiB of names and values travel "
            "in the start command (put more in a file the command reads)",
        )  # fmt: skip
    return env


def check_services(r: Reader, services: list[tuple[Service, str, str]], hosts: list[Host]) -> None:
    label_values: dict[str, set[str]] = {}
    for h in hosts:
        for k, v in h.labels.items():
            label_values.setdefault(k, set()).add(v)
    dimensions = {d for h in hosts if h.capacity for d in h.capacity.extra}
    r.check_unique([(s.name, e, p) for s, e, p in services], "service")
    names = sorted({s.name for s, _, _ in services if s.name})
    for s, e, _ in services:
        for other in s.avoid:
            if other not in names:
                r.problem(
                    e, "avoid", f'names "{other}", which is not a service in this file{did_you_mean(other, names)}'
                )
        if s.spread_over is not None and s.spread_over not in label_values:
            r.problem(
                e,
                "spread_over",
                f'"{s.spread_over}" is not a label of any host{did_you_mean(s.spread_over, label_values)}',
            )
        check_require(r, s, e, hosts, label_values)
        for d in s.resources.extra:
            if d not in dimensions:
                hint = did_you_mean(d, dimensions) if dimensions else " (no host declares further dimensions)"
                r.problem(e, f"resources.{d}", f"is not in any host's capacity{hint}")


def check_intervals(r: Reader, services: list[tuple[Service, str, str]], poll: float | None) -> None:
    """Checks run in the probe loop, once per poll at most: a shorter interval would silently stretch."""
    for s, e, _ in services:
        if s.check is not None and poll is not None and s.check.interval < poll:
            r.problem(
                e,
                "check.interval",
                f"{s.check.interval:g} s is shorter than poll_interval ({poll:g} s): checks run in the "
                "probe loop, at most once per poll; raise the interval or lower poll_interval",
            )


def check_require(r: Reader, s: Service, e: str, hosts: list[Host], label_values: dict[str, set[str]]) -> None:
    each_exists = True
    for k, v in s.require.items():
        if k not in label_values:
            r.problem(e, f"require.{k}", f"names a label no host has{did_you_mean(k, label_values)}")
            each_exists = False
        elif v not in label_values[k]:
            values = ", ".join(f'"{x}"' for x in sorted(label_values[k]))
            r.problem(e, f"require.{k}", f'"{v}" matches no host (hosts have {k} = {values})')
            each_exists = False
    if each_exists and s.require and hosts and not any(s.matches(h) for h in hosts):
        r.problem(e, "require", f"{literal(dict(s.require))} matches no host: no host has all these labels")
