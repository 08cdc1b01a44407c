"""The sections of a cluster file other than services: [cluster], [defaults], [policy], [api], [[hosts]]."""

from __future__ import annotations

from typing import Any

from core.config import values as conv
from core.config.keys import (
    API_KEYS,
    BAD_PORT,
    CLUSTER_KEYS,
    DEFAULTS_KEYS,
    HOST_KEYS,
    LOCAL_ADDRESS,
    POLICY_KEYS,
    SECTIONS,
)
from core.config.reader import Reader
from core.config.services import check_intervals, check_services, read_services
from core.config.values import did_you_mean, is_demo_address
from core.errors import ConfigError
from core.model import (
    CPU,
    MEM,
    ApiSettings,
    ClusterConfig,
    Host,
    HostKeyPolicy,
    Policy,
    Resources,
    SshDefaults,
    Strategy,
)
from core.store.settings import SQLITE, STORE_KEYS, StoreSettings, parse_store
from core.units import literal, parse_duration


def read(r: Reader, data: dict[str, Any]) -> ClusterConfig:
    if not data:
        r.problem("", "", "declares nothing (add at least one [[hosts]] table, see README.md)")
        raise ConfigError(r.problems)
    r.unknown_keys(data, SECTIONS, "", "section")
    cluster = r.table(data, "cluster")
    name, poll, timeout, state_dir, demo = read_cluster(r, cluster)
    enforce = bool(r.take(cluster, "enforce_limits", "cluster", conv.boolean, False))
    store = read_store(r, cluster)
    defaults = read_defaults(r, r.table(data, "defaults"))
    policy = read_policy(r, r.table(data, "policy"))
    api = read_api(r, r.table(data, "api"))
    if not data.get("hosts", []):
        r.problem("", "hosts", "are missing: declare at least one [[hosts]] table with name and address")
    hosts = read_hosts(r, data.get("hosts", []), demo, defaults)
    services = read_services(r, data.get("services", []))
    check_hosts(r, hosts)
    check_services(r, services, [h for h, _, _ in hosts])
    check_intervals(r, services, poll)
    if r.problems:
        raise ConfigError(r.problems)
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
        store=store,
        source=r.file,
    )


def read_store(r: Reader, table: dict[str, Any]) -> StoreSettings:
    """`store` and its TLS keys (core/store/settings.py says what each means)."""
    raw = {k: table.get(k) for k in STORE_KEYS}
    wrong = [k for k, v in raw.items() if v is not None and not isinstance(v, str)]
    for k in wrong:
        r.problem("cluster", k, f"must be a string, {conv.got(raw[k])}")
    if wrong:
        return SQLITE
    try:
        return parse_store(raw["store"] or "sqlite", raw["store_prefix"], raw["store_ca"], raw["store_cert"],
                           raw["store_key"])  # fmt: skip
    except ValueError as exc:
        r.problem("cluster", "store", str(exc))
        return SQLITE


def read_cluster(r: Reader, table: dict[str, Any]) -> tuple[str, float, float, str | None, bool]:
    e = "cluster"
    d = ClusterConfig(name="", hosts=(), services=())
    r.unknown_keys(table, CLUSTER_KEYS, e)
    name = r.take(table, "name", e, conv.name, "loadmaster")
    poll = r.take(table, "poll_interval", e, conv.positive_duration, d.poll_interval)
    timeout = r.take(table, "failure_timeout", e, conv.positive_duration, d.failure_timeout)
    if poll is not None and timeout is not None and timeout <= poll:
        r.problem(
            e,
            "failure_timeout",
            f"{literal(table.get('failure_timeout', timeout))} must be longer than poll_interval "
            f"({literal(table.get('poll_interval', poll))}), or every host looks down between two polls",
        )
    state_dir = r.take(table, "state_dir", e, conv.nonempty, None)
    demo = r.take(table, "demo", e, conv.boolean, False)
    return name or "loadmaster", poll or d.poll_interval, timeout or d.failure_timeout, state_dir, bool(demo)


def read_defaults(r: Reader, table: dict[str, Any]) -> SshDefaults:
    e = "defaults"
    d = SshDefaults()
    r.unknown_keys(table, DEFAULTS_KEYS, e)
    return SshDefaults(
        user=r.take(table, "user", e, conv.nonempty, d.user),
        port=r.take(table, "port", e, conv.port, d.port) or d.port,
        identity_file=r.take(table, "identity_file", e, conv.nonempty, d.identity_file),
        known_hosts=r.take(table, "known_hosts", e, conv.nonempty, d.known_hosts),
        host_key_policy=r.take(table, "host_key_policy", e, conv.enum_of(HostKeyPolicy), d.host_key_policy)
        or d.host_key_policy,
        connect_timeout=r.take(table, "connect_timeout", e, conv.positive_duration, d.connect_timeout)
        or d.connect_timeout,
    )


def read_policy(r: Reader, table: dict[str, Any]) -> Policy:
    e = "policy"
    d = Policy()
    r.unknown_keys(table, POLICY_KEYS, e)
    return Policy(
        strategy=r.take(table, "strategy", e, conv.enum_of(Strategy), d.strategy) or d.strategy,
        auto_apply=bool(r.take(table, "auto_apply", e, conv.boolean, d.auto_apply)),
        max_moves_per_cycle=conv.or_default(
            r.take(table, "max_moves_per_cycle", e, conv.count, d.max_moves_per_cycle), d.max_moves_per_cycle
        ),
        cooldown=conv.or_default(r.take(table, "cooldown", e, parse_duration, d.cooldown), d.cooldown),
        solver_time_limit=r.take(table, "solver_time_limit", e, conv.positive_duration, d.solver_time_limit)
        or d.solver_time_limit,
        settle=conv.or_default(r.take(table, "settle", e, parse_duration, d.settle), d.settle),
        solver_workers=r.take(table, "solver_workers", e, conv.solver_workers, d.solver_workers),
        max_stops_per_reload=r.take(table, "max_stops_per_reload", e, conv.count, d.max_stops_per_reload),
    )


def read_api(r: Reader, table: dict[str, Any]) -> ApiSettings:
    e = "api"
    r.unknown_keys(table, API_KEYS, e)
    listen = r.take(table, "listen", e, conv.listen, None)
    cert = r.take(table, "tls_cert", e, conv.nonempty, None)
    key = r.take(table, "tls_key", e, conv.nonempty, None)
    for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if given in table and missing not in table:
            r.problem(e, missing, f"is required with {given}: HTTPS needs both the certificate and its key")
    return ApiSettings(listen=listen, tls_cert=cert, tls_key=key)


def read_hosts(r: Reader, value: Any, demo_cluster: bool, defaults: SshDefaults) -> list[tuple[Host, str, str]]:
    hosts = []
    for e, position, t in r.entries(value, "hosts"):
        r.unknown_keys(t, HOST_KEYS, e)
        address = r.take(t, "address", e, conv.nonempty, example='address = "10.0.0.5"') or ""
        demo = bool(r.take(t, "demo", e, conv.boolean, demo_cluster))
        capacity = r.read_resources(t, "capacity", e, required=(CPU, MEM)) if "capacity" in t else None
        if demo and "capacity" not in t:
            r.problem(e, "capacity", 'is required on a demo host, e.g. capacity = { cpu = 4, mem = "8GiB" }')
        if demo and address and not is_demo_address(address):
            why = "the demo fleet listens on IPv4 loopback only" if conv.is_loopback(address) else "not on this machine"
            r.problem(e, "address", f'{literal(address)}: {why}; a demo host needs e.g. "127.0.0.1"')
        # From the table as written, so a reserve is judged against the capacity even when that is invalid.
        written = t.get("capacity")
        declared = written if isinstance(written, dict) else {}
        dimensions = (CPU, MEM, *(d for d in declared if d not in (CPU, MEM)))
        reserve = r.read_resources(t, "reserve", e, dimensions=dimensions) if "reserve" in t else Resources()
        if capacity is not None and reserve is not None and not reserve.fits(capacity):
            over = [d for d in reserve.dimensions if reserve.get(d) > capacity.get(d)]
            shown = f"{literal(t['reserve'])} is larger than capacity {literal(t['capacity'])}"
            r.problem(e, "reserve", f"{shown} in {', '.join(over)}; a reserve is kept free out of the capacity")
        host = Host(
            name=r.take(t, "name", e, conv.name, example='name = "node-a"') or "",
            address=address,
            port=conv.or_default(r.take(t, "port", e, conv.port, defaults.port), BAD_PORT),
            user=r.take(t, "user", e, conv.nonempty, defaults.user),
            labels=r.read_labels(t, "labels", e),
            capacity=capacity,
            reserve=reserve or Resources(),
            identity_file=r.take(t, "identity_file", e, conv.nonempty, defaults.identity_file),
            jump=r.take(t, "jump", e, conv.name, None),
            demo=demo,
        )
        hosts.append((host, e, position))
    return hosts


def check_hosts(r: Reader, hosts: list[tuple[Host, str, str]]) -> None:
    r.check_unique([(h.name, e, p) for h, e, p in hosts], "host")
    endpoints: dict[tuple[str, int], str] = {}
    for h, e, _ in hosts:
        if not h.address or h.port == BAD_PORT:
            continue
        endpoint = (h.address.lower(), 0 if h.is_local else h.port)
        shown = LOCAL_ADDRESS if h.is_local else f"{h.address}:{h.port}"
        if endpoint in endpoints:
            r.problem(e, "address" if h.is_local else "port", f"{shown} is already used by {endpoints[endpoint]}")
        else:
            endpoints[endpoint] = e
    names = [h.name for h, _, _ in hosts if h.name]
    for h, e, _ in hosts:
        if h.jump is not None and (h.jump not in names or h.jump == h.name):
            others = [n for n in names if n != h.name]
            r.problem(e, "jump", f'"{h.jump}" is not another host in this file{did_you_mean(h.jump, others)}')
