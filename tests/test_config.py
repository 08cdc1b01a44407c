"""cluster.toml → model: values, defaults, the lookup order, cross-checks, and robustness to any input."""

from __future__ import annotations

import copy
import ipaddress
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from core import config
from core.errors import ConfigError
from core.hostlink.demo import demo_config
from core.model import CheckKind, ClusterConfig, HealthCheck, HostKeyPolicy, Policy, Resources, SshDefaults, Strategy
from core.units import literal

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
[[hosts]]
name = "h1"
address = "10.0.0.1"
"""


def problems(text: str) -> list[tuple[str, str, str]]:
    """(entry, field, message) of every problem, in order."""
    with pytest.raises(ConfigError) as err:
        config.parse(text, "f.toml")
    assert all(p.file == "f.toml" and p.message for p in err.value.problems)
    return [(p.entry, p.field, p.message) for p in err.value.problems]


def test_root_file_is_the_demo_fleet() -> None:
    cfg = config.load(ROOT / "cluster.toml")
    assert cfg.demo and all(h.demo for h in cfg.hosts)
    assert 6 <= len(cfg.hosts) <= 8
    assert 4 <= len(cfg.services) <= 6
    assert all(ipaddress.ip_address(h.address).is_loopback for h in cfg.hosts)
    assert len({h.port for h in cfg.hosts}) == len(cfg.hosts)
    assert 2 <= len({h.labels["zone"] for h in cfg.hosts}) <= 3
    assert len({h.capacity for h in cfg.hosts}) >= 2 and all(h.capacity for h in cfg.hosts)
    constrained = [s for s in cfg.services if s.spread_over or s.require or s.avoid or s.max_per_host]
    assert len(constrained) >= 3


def test_minimal_file_takes_every_default() -> None:
    cfg = config.parse(MINIMAL, "f.toml")
    assert cfg == ClusterConfig(
        name="loadmaster", hosts=cfg.hosts, services=(), defaults=SshDefaults(), policy=Policy(), source="f.toml"
    )
    (host,) = cfg.hosts
    assert (host.name, host.address, host.port, host.user, host.capacity) == ("h1", "10.0.0.1", 22, None, None)
    assert host.reserve == Resources() and dict(host.labels) == {} and not host.demo


def test_every_key_is_read() -> None:
    text = """
    [cluster]
    name = "prod"
    poll_interval = "500ms"
    failure_timeout = 4
    state_dir = "/var/lib/lm"

    [defaults]
    user = "deploy"
    port = 2222
    identity_file = "~/.ssh/lm"
    known_hosts = "/etc/lm/known_hosts"
    host_key_policy = "accept-new"
    connect_timeout = "3s"

    [policy]
    strategy = "spread"
    auto_apply = true
    max_moves_per_cycle = 0
    cooldown = "2m"
    solver_time_limit = 1.5
    settle = "0s"
    solver_workers = 3
    max_stops_per_reload = 7

    [[hosts]]
    name = "gpu-1"
    address = "10.0.0.1"
    labels = { zone = "a", disk = "ssd" }
    capacity = { cpu = 16, mem = "64GiB", gpu = 2 }
    reserve = { cpu = "500m", mem = "1GiB", gpu = 0 }

    [[hosts]]
    name = "bastion"
    address = "10.0.0.2"
    port = 22
    user = "ops"
    identity_file = "~/.ssh/ops"
    labels = { zone = "b" }

    [[hosts]]
    name = "me"
    address = "local"
    jump = "bastion"
    demo = false

    [[services]]
    name = "train"
    command = "python3 train.py --port {port}"
    replicas = 2
    cpu = 4.5
    mem = "1.5G"
    resources = { gpu = 1 }
    max_per_host = 1
    spread_over = "zone"
    require = { disk = "ssd" }
    avoid = ["web"]
    priority = -5
    min_healthy = 1

    [[services]]
    name = "web"
    command = "sleep 100"
    replicas = 0
    cpu = "100m"
    mem = 1048576
    """
    cfg = config.parse(text, "f.toml")
    assert (cfg.name, cfg.poll_interval, cfg.failure_timeout, cfg.state_dir, cfg.demo) == (
        "prod", 0.5, 4.0, "/var/lib/lm", False
    )  # fmt: skip
    assert cfg.defaults == SshDefaults(
        "deploy", 2222, "~/.ssh/lm", "/etc/lm/known_hosts", HostKeyPolicy.ACCEPT_NEW, 3.0
    )
    assert cfg.policy == Policy(Strategy.SPREAD, True, 0, 120.0, 1.5, 0.0, 3, 7)
    gpu, bastion, me = cfg.hosts
    assert (gpu.port, gpu.user, gpu.identity_file) == (2222, "deploy", "~/.ssh/lm")  # from [defaults]
    assert gpu.capacity == Resources(16000, 64 * 2**30, {"gpu": 2})
    assert gpu.reserve == Resources(500, 2**30, {"gpu": 0})
    assert (bastion.port, bastion.user, bastion.identity_file) == (22, "ops", "~/.ssh/ops")
    assert me.is_local and me.jump == "bastion"
    train, web = cfg.services
    assert train.resources == Resources(4500, 1_500_000_000, {"gpu": 1})
    assert (train.replicas, train.max_per_host, train.spread_over, dict(train.require), train.avoid) == (
        2, 1, "zone", {"disk": "ssd"}, ("web",)
    )  # fmt: skip
    assert (train.priority, train.min_healthy) == (-5, 1)
    assert (web.replicas, web.resources, web.priority, web.min_healthy) == (0, Resources(100, 2**20), 0, 0)
    assert cfg.service("web") is web and cfg.host("me") is me


def test_demo_hosts_need_a_pinned_capacity_on_loopback() -> None:
    text = '[cluster]\ndemo = true\n[[hosts]]\nname = "a"\naddress = "10.1.1.1"\n'
    assert problems(text) == [
        ('hosts "a"', "capacity", 'is required on a demo host, e.g. capacity = { cpu = 4, mem = "8GiB" }'),
        ('hosts "a"', "address", '"10.1.1.1": not on this machine; a demo host needs e.g. "127.0.0.1"'),
    ]
    real = text + "demo = false\n"  # a real host inside a demo cluster
    assert config.parse(real).hosts[0].demo is False
    ok = text.replace("10.1.1.1", "127.0.0.3") + 'capacity = { cpu = 1, mem = "1GiB" }\n'
    assert config.parse(ok).hosts[0].demo is True


DEMO_HOST = '[cluster]\ndemo = true\n[[hosts]]\nname = "a"\naddress = "{}"\ncapacity = {{ cpu = 1, mem = "1GiB" }}\n'


@pytest.mark.parametrize("address", ["::1", "local", "::ffff:127.0.0.1", "127.0.0.300"])
def test_validate_refuses_a_demo_address_the_demo_cannot_serve(tmp_path: Path, address: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(DEMO_HOST.format(address))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    (problem,) = err.value.problems
    assert (problem.file, problem.entry, problem.field) == (str(path), 'hosts "a"', "address")
    assert str(problem).startswith(f'{path}: hosts "a": address "{address}": ')
    assert str(problem).endswith('a demo host needs e.g. "127.0.0.1"')


@pytest.mark.parametrize("address", ["127.0.0.1", "127.3.0.9", "localhost", "::1", "local", "10.0.0.1", "127.1"])
def test_validate_accepts_a_demo_host_exactly_when_the_demo_serves_it(address: str) -> None:
    try:
        cfg = config.parse(DEMO_HOST.format(address), "cluster.toml")
    except ConfigError:
        accepted = False
    else:
        accepted = True
        demo_config(cfg)  # raises ConfigError when the demo would refuse what validate let through
    assert accepted == (address in ("127.0.0.1", "127.3.0.9", "localhost"))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[cluster]\npoll_interval = "5s"\nfailure_timeout = "5s"\n', ("cluster", "failure_timeout", "longer than")),
        ('[cluster]\nname = "a b"\n', ("cluster", "name", '"a b" is not a valid name')),
        ('[cluster]\nname = "a\\n"\n', ("cluster", "name", '"a\\n" is not a valid name')),
        ("[cluster]\npoll_interval = 0\n", ("cluster", "poll_interval", "must be more than zero")),
        ('[defaults]\nport = "22"\n', ("defaults", "port", 'must be a whole number, got a string "22"')),
        ("[defaults]\nuser = 5\n", ("defaults", "user", "must be a string, got an integer 5")),
        ("cluster = []\n", ("", "cluster", "must be a table (write [cluster] above its keys), got an array []")),
        ("[[policy]]\n", ("", "policy", "must be a table")),
        ("services = {}\n", ("", "services", "must be an array of tables")),
        ("[policy]\nmax_moves_per_cycle = -1\n", ("policy", "max_moves_per_cycle", "must be 0 or more, got -1")),
    ],
)
def test_section_problems(extra: str, expected: tuple[str, str, str]) -> None:
    (entry, field, message), *rest = problems(extra + MINIMAL)
    assert not rest
    assert (entry, field) == expected[:2] and expected[2] in message


LOCAL = MINIMAL.replace("10.0.0.1", "local")
SERVICE = '[[services]]\nname = "s"\ncommand = "sleep 1"\ncpu = 1\nmem = "1GiB"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LOCAL + '[[hosts]]\nname = "h2"\naddress = "local"\n', ('hosts "h2"', "address")),
        (MINIMAL + 'jump = "h1"\n', ('hosts "h1"', "jump")),
        (MINIMAL + 'jump = "h"\n', ('hosts "h1"', "jump")),
        (MINIMAL + 'capacity = { cpu = 1, mem = "1GiB" }\nreserve = { cpu = 2 }\n', ('hosts "h1"', "reserve")),
        (MINIMAL + "reserve = { gpu = 1 }\n", ('hosts "h1"', "reserve.gpu")),
        (MINIMAL + "capacity = { cpu = 1 }\n", ('hosts "h1"', "capacity")),
        (MINIMAL + 'capacity = "big"\n', ('hosts "h1"', "capacity")),
        (MINIMAL + 'labels = ["a"]\n', ('hosts "h1"', "labels")),
        (MINIMAL + 'labels = { zone = "" }\n', ('hosts "h1"', "labels.zone")),
        (MINIMAL + "port = 0\n", ('hosts "h1"', "port")),
        (MINIMAL.replace('"h1"', "5"), ("hosts[0]", "name")),
        ("hosts = [1]\n", ("hosts[0]", "")),
        ('[[hosts]]\nname = "h1"\n', ('hosts "h1"', "address")),
        ("[cluster]\n", ("", "hosts")),
        ("hosts = []\n", ("", "hosts")),
        (MINIMAL + SERVICE + "replicas = 1\nmin_healthy = 2\n", ('services "s"', "min_healthy")),
        (MINIMAL + SERVICE + "max_per_host = 0\n", ('services "s"', "max_per_host")),
        (MINIMAL + SERVICE + 'avoid = "x"\n', ('services "s"', "avoid")),
        (MINIMAL + SERVICE.replace('"s"', '"a/b"'), ('services "a/b"', "name")),
        (MINIMAL + SERVICE + "priority = 1.5\n", ('services "s"', "priority")),
        (MINIMAL + SERVICE + "resources = { cpu = 1 }\n", ('services "s"', "resources.cpu")),
        (MINIMAL + SERVICE + "resources = { gpu = 1 }\n", ('services "s"', "resources.gpu")),
        (MINIMAL + SERVICE.replace('cpu = 1\n', ""), ('services "s"', "cpu")),
        (MINIMAL + SERVICE + 'env = ["A=1"]\n', ('services "s"', "env")),
        (MINIMAL + SERVICE + 'env = { "A-B" = "1" }\n', ('services "s"', "env.A-B")),
        (MINIMAL + SERVICE + 'env = { 1A = "1" }\n', ('services "s"', "env.1A")),
        (MINIMAL + SERVICE + "env = { A = 1 }\n", ('services "s"', "env.A")),
        (MINIMAL + SERVICE + 'env = { A = "x\\u0000y" }\n', ('services "s"', "env.A")),
        (MINIMAL + SERVICE + 'workdir = "srv/web"\n', ('services "s"', "workdir")),
        (MINIMAL + SERVICE + f'env = {{ A = "{"x" * 4100}" }}\n', ('services "s"', "env")),
        (MINIMAL + SERVICE + f'workdir = "/{"x" * 5000}"\n', ('services "s"', "workdir")),
        (MINIMAL + SERVICE + 'workdir = ""\n', ('services "s"', "workdir")),
        (MINIMAL + SERVICE + 'user = "a b"\n', ('services "s"', "user")),
        (MINIMAL + SERVICE + 'user = "$(id)"\n', ('services "s"', "user")),
        (MINIMAL + SERVICE + 'stop_signal = "STOP"\n', ('services "s"', "stop_signal")),
        (MINIMAL + SERVICE + "stop_signal = 15\n", ('services "s"', "stop_signal")),
        (MINIMAL + SERVICE + 'stop_timeout = "soon"\n', ('services "s"', "stop_timeout")),
        (MINIMAL + SERVICE + 'log_max_size = "1KiB"\n', ('services "s"', "log_max_size")),
        (MINIMAL + SERVICE + "log_keep = -1\n", ('services "s"', "log_keep")),
        (MINIMAL + SERVICE + "log_keep = 101\n", ('services "s"', "log_keep")),
        (
            MINIMAL + 'labels = { zone = "a" }\n[[hosts]]\nname = "h2"\naddress = "x"\nlabels = { disk = "ssd" }\n'
            + SERVICE + 'require = { zone = "a", disk = "ssd" }\n',
            ('services "s"', "require"),
        ),
    ],
)  # fmt: skip
def test_entry_problems(text: str, expected: tuple[str, str]) -> None:
    found = problems(text)
    assert [(e, f) for e, f, _ in found] == [expected], found


def test_process_settings_are_read_and_default_to_what_ran_before() -> None:
    plain = config.parse(MINIMAL + SERVICE, "f.toml").service("s")
    defaults = (plain.env, plain.workdir, plain.user, plain.stop_signal, plain.stop_timeout)
    assert defaults == ({}, None, None, "TERM", None)
    assert (plain.log_max_size, plain.log_keep) == (10 << 20, 3)
    text = (
        MINIMAL
        + SERVICE
        + (
            'env = { PORT = "{port}", QUOTE = "it\'s $(x) `y`" }\nworkdir = "~/web"\nuser = "www-data"\n'
            'stop_signal = "sigint"\nstop_timeout = "30s"\nlog_max_size = "1MiB"\nlog_keep = 0\n'
        )
    )
    s = config.parse(text, "f.toml").service("s")
    assert dict(s.env) == {"PORT": "{port}", "QUOTE": "it's $(x) `y`"}
    assert (s.workdir, s.user, s.stop_signal, s.stop_timeout, s.log_max_size, s.log_keep) == (
        "~/web",
        "www-data",
        "INT",
        30.0,
        1 << 20,
        0,
    )


def test_a_changed_env_workdir_or_user_is_a_new_generation_and_defaults_keep_the_old_one() -> None:
    from core.engine.basis import generation

    base = config.parse(MINIMAL + SERVICE, "f.toml").service("s")
    # the fingerprint of a service that sets none of the new keys is what it was before they existed
    assert generation(base) == "bb4b15577a94"  # computed by the code before this change
    for extra in ('env = { A = "1" }', 'workdir = "/srv"', 'user = "web"'):
        changed = config.parse(MINIMAL + SERVICE + extra + "\n", "f.toml").service("s")
        assert generation(changed) != generation(base), extra
    quiet = config.parse(MINIMAL + SERVICE + 'stop_signal = "INT"\nlog_keep = 1\n', "f.toml").service("s")
    assert generation(quiet) == generation(base)  # how it stops or rotates does not restart it


def test_an_invalid_entry_still_counts_in_cross_checks() -> None:
    # h2 has a bad port, but its labels exist: the service's require must not be reported as well.
    text = MINIMAL + '[[hosts]]\nname = "h2"\naddress = "x"\nport = -1\nlabels = { disk = "ssd" }\n'
    text += SERVICE + 'require = { disk = "ssd" }\n'
    assert [(e, f) for e, f, _ in problems(text)] == [('hosts "h2"', "port")]


def test_a_bad_port_takes_no_part_in_the_address_check() -> None:
    text = MINIMAL + 'port = 99999\n[[hosts]]\nname = "h2"\naddress = "10.0.0.1"\n'
    assert [(e, f) for e, f, _ in problems(text)] == [('hosts "h1"', "port")]


def test_same_address_on_other_ports_is_fine() -> None:
    text = MINIMAL + 'port = 2201\n[[hosts]]\nname = "h2"\naddress = "10.0.0.1"\nport = 2202\n'
    assert len(config.parse(text).hosts) == 2


def test_syntax_error_names_line_and_text() -> None:
    ((entry, field, message),) = problems('[cluster]\nname = "x"\n\n[[hosts]\n')
    assert (entry, field) == ("line 4", "")
    assert message.startswith("is not valid TOML: ") and "[[hosts]" in message


def test_resolve_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(config.ENV_CONFIG, raising=False)
    assert config.resolve_path(None) == Path("cluster.toml")
    monkeypatch.setenv(config.ENV_CONFIG, "~/fleet.toml")
    assert config.resolve_path(None) == Path.home() / "fleet.toml"
    assert config.resolve_path("x.toml") == Path("x.toml")
    (tmp_path / "cluster.toml").mkdir()  # a directory of that name is not the file
    assert config.resolve_path(None) == Path.home() / "fleet.toml"
    (tmp_path / "cluster.toml").rmdir()
    (tmp_path / "cluster.toml").write_text(MINIMAL)
    assert config.resolve_path(None) == Path("cluster.toml")
    monkeypatch.setenv(config.ENV_CONFIG, "  ")
    assert config.resolve_path(None) == Path("cluster.toml")


# -- any document at all gives a config or a ConfigError, never another exception --

KEYS = sorted(
    {*config.SECTIONS, *config.CLUSTER_KEYS, *config.DEFAULTS_KEYS, *config.HOST_KEYS, *config.SERVICE_KEYS}
    | {*config.POLICY_KEYS, "zone", "disk", "gpu", "x"}
)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["1", "0.5", "500m", "2GiB", "12XB", "3s", "local", "127.0.0.1", "zone", "h1", "s", "binpack"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=20,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@settings(max_examples=300, suppress_health_check=[HypothesisHealthCheck.too_slow])
@given(documents)
def test_any_document_gives_a_config_or_config_errors(document: dict) -> None:
    text = "".join(f"{k} = {literal(v)}\n" for k, v in document.items())
    try:
        cfg = config.parse(text, "f.toml")
    except ConfigError as err:
        assert err.problems and all(p.file == "f.toml" and p.message for p in err.problems)
    else:
        assert isinstance(cfg, ClusterConfig) and cfg.hosts


ROOT_DOCUMENT = tomllib.loads((ROOT / "cluster.toml").read_text())


@st.composite
def mutated_root(draw: st.DrawFn) -> dict:
    """The root file with a few values replaced, deleted or added anywhere in it."""
    document = copy.deepcopy(ROOT_DOCUMENT)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node = document
        while True:
            keys = list(range(len(node))) if isinstance(node, list) else list(node)
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(node[key], dict | list) and draw(st.booleans()):
                node = node[key]
                continue
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[key] = draw(values)
            elif action == "delete":
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.sampled_from(KEYS))] = draw(values)
            break
    return document


@settings(max_examples=300, suppress_health_check=[HypothesisHealthCheck.too_slow])
@given(mutated_root())
def test_any_change_to_the_root_file_gives_a_config_or_config_errors(document: dict) -> None:
    text = "".join(f"{k} = {literal(v)}\n" for k, v in document.items())
    try:
        config.parse(text, "f.toml")
    except ConfigError as err:
        assert err.problems and all(p.file == "f.toml" and p.message for p in err.problems)


# -- README documents every key --


def test_readme_table_lists_every_key_of_every_section() -> None:
    readme = (ROOT / "README.md").read_text()
    documented: dict[str, set[str]] = {}
    section = None
    for line in readme.splitlines():
        heading = re.match(r"^### `\[+([\w.]+)\]+`", line)
        if heading:
            section = heading.group(1)
            documented[section] = set()
        elif section and (row := re.match(r"^\| `(\w+)` \|", line)):
            documented[section].add(row.group(1))
    assert documented == {
        "cluster": set(config.CLUSTER_KEYS),
        "defaults": set(config.DEFAULTS_KEYS),
        "hosts": set(config.HOST_KEYS),
        "services": set(config.SERVICE_KEYS),
        "services.check": set(config.CHECK_KEYS),
        "policy": set(config.POLICY_KEYS),
        "api": set(config.API_KEYS),
    }


def test_readme_example_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    cfg = config.parse(example, "README.md")
    assert [h.name for h in cfg.hosts] == ["web-1", "web-2", "gpu-1"]
    assert cfg.service("trainer").resources.extra == {"gpu": 2}


@pytest.mark.parametrize(
    "nested",
    [
        "x = " + "[" * 100_000 + "]" * 100_000,  # the parser itself recursed until RecursionError
        "x = " + "{a = " * 500 + "1" + "}" * 500,
        "x = " + "[" * 9 + "]" * 9,  # parses, but no cluster file needs it
    ],
)
def test_deep_nesting_is_one_config_error_naming_the_file(nested: str, tmp_path: Path, capsys) -> None:
    """Issue 10 defect 9: a deeply nested TOML raised RecursionError (`validate` printed a traceback)."""
    from console.cli import main

    path = tmp_path / "cluster.toml"
    path.write_text(nested + "\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert f"{path}: nests arrays or tables more than 8 levels deep" in str(err.value)
    assert main(["validate", "-c", str(path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_validate_refuses_replicas_and_commands_no_fleet_can_carry() -> None:
    """Issue 10 defect 15: replicas = 100000000 passed validate (the daemon died of MemoryError), and so
    did a 50 KB command (it failed on OpenSSH)."""
    text = MINIMAL + '[[services]]\nname = "s"\ncommand = "sleep 1"\ncpu = 1\nmem = "1MiB"\nreplicas = 100000000\n'
    with pytest.raises(ConfigError, match=r'services "s": replicas 100000000 is more than 100,000 replicas'):
        config.parse(text, "c.toml")
    config.parse(text.replace("100000000", "100000"), "c.toml")
    long = "sleep 1 # " + "x" * 50_000
    with pytest.raises(ConfigError, match=r"command is 50,012 bytes \(quoted\); a command must stay under 32 KiB"):
        config.parse(text.replace("100000000", "1").replace('"sleep 1"', f'"{long}"'), "c.toml")


# -- health checks --

CHECKED = """\
[cluster]
poll_interval = "1s"
[[hosts]]
name = "h1"
address = "10.0.0.1"
[[services]]
name = "web"
command = "serve --port {port}"
cpu = 1
mem = "1GiB"
"""


def test_a_check_is_read_with_every_key() -> None:
    cfg = config.parse(
        CHECKED + 'check = { kind = "http", path = "/healthz", status = 204, port = 8080, interval = "5s",'
        ' timeout = "1s", grace = "30s", unhealthy_after = 2, healthy_after = 3 }\n',
        "f.toml",
    )
    check = cfg.service("web").check
    assert check == HealthCheck(CheckKind.HTTP, "/healthz", 204, "", 8080, 5.0, 1.0, 30.0, 2, 3)
    assert config.parse(CHECKED, "f.toml").service("web").check is None
    exec_check = config.parse(CHECKED + 'check = { kind = "exec", command = "true" }\n', "f.toml").service("web").check
    assert exec_check == HealthCheck(CheckKind.EXEC, command="true")


@pytest.mark.parametrize(
    ("check", "field", "fragment"),
    [
        ('"http"', "check", "must be a table"),
        ("{ path = '/' }", "check.kind", "is required"),
        ('{ kind = "grpc" }', "check.kind", '"grpc" is not one of'),
        ('{ kind = "tcp", knd = 1 }', "check.knd", "is not a known key"),
        ('{ kind = "tcp", path = "/" }', "check.path", 'applies to "http" checks only'),
        ('{ kind = "exec" }', "check.command", "is required for an exec check"),
        ('{ kind = "exec", command = "true", port = 80 }', "check.port", "tcp and http checks only"),
        ('{ kind = "http", path = "health" }', "check.path", 'starting with "/"'),
        ('{ kind = "http", status = 99 }', "check.status", "from 100 to 599"),
        ('{ kind = "tcp", interval = "0s" }', "check.interval", "more than zero"),
        ('{ kind = "tcp", grace = "-1s" }', "check.grace", "is negative"),
        ('{ kind = "tcp", unhealthy_after = 0 }', "check.unhealthy_after", "1 or more"),
        ('{ kind = "tcp", timeout = "6s", interval = "5s" }', "check.timeout", "longer than the interval"),
        ('{ kind = "tcp", interval = "500ms" }', "check.interval", "shorter than poll_interval"),
    ],
)
def test_check_problems_name_the_key(check: str, field: str, fragment: str) -> None:
    found = problems(CHECKED + f"check = {check}\n")
    assert any(e == 'services "web"' and f == field and fragment in m for e, f, m in found), found


def test_a_port_check_needs_a_port() -> None:
    text = CHECKED.replace("serve --port {port}", "serve") + 'check = { kind = "tcp" }\n'
    assert any(f == "check" and "needs a port" in m for _, f, m in problems(text))
    assert config.parse(text.replace('"tcp" }', '"tcp", port = 80 }'), "f.toml").service("web").check
