"""`loadmaster validate`, `--version`, `--help`: exit statuses and messages for every bad-input class."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import build_parser, main
from core.config import ENV_CONFIG

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "loadmaster"

BASE = """\
[cluster]
name = "t"

[[hosts]]
name = "h1"
address = "10.0.0.1"
labels = { zone = "a", disk = "ssd" }
capacity = { cpu = 4, mem = "8GiB" }

[[hosts]]
name = "h2"
address = "10.0.0.2"
labels = { zone = "b", disk = "hdd" }

[[services]]
name = "web"
command = "sleep 100"
cpu = "500m"
mem = "256MiB"

[[services]]
name = "cache"
command = "sleep 100"
cpu = 1
mem = "1GiB"
"""


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


# (id, file text, entry, field, fragments the message must also hold: the bad value and what is valid)
CASES = [
    ("unknown-section", BASE + "[polcy]\n", "", "polcy", ['did you mean "policy"']),
    ("unknown-cluster-key", edit('name = "t"', 'name = "t"\npoll_intervall = 2'), "cluster", "poll_intervall",
     ['did you mean "poll_interval"']),
    ("unknown-host-key", edit('name = "h2"', 'name = "h2"\nadress = "x"'), 'hosts "h2"', "adress",
     ['did you mean "address"']),
    ("unknown-service-key", edit('name = "web"', 'name = "web"\nreplica = 2'), 'services "web"', "replica",
     ['did you mean "replicas"']),
    ("unknown-capacity-key", edit('capacity = { cpu = 4,', 'capacity = { cpus = 4,'), 'hosts "h1"', "capacity.cpus",
     ['did you mean "cpu"']),
    ("unknown-reserve-key", edit('name = "h2"', 'name = "h2"\nreserve = { memory = "1GiB" }'), 'hosts "h2"',
     "reserve.memory", ['did you mean "mem"']),
    ("unknown-policy-key", BASE + "[policy]\nstrategy = \"spread\"\ncooldwn = 5\n", "policy", "cooldwn",
     ['did you mean "cooldown"']),
    ("wrong-type", edit('cpu = 1', 'cpu = 1\nreplicas = "3"'), 'services "cache"', "replicas",
     ['got a string "3"', "whole number"]),
    ("wrong-type-bool", BASE + "[policy]\nauto_apply = \"yes\"\n", "policy", "auto_apply",
     ['"yes"', "true or false"]),
    ("wrong-type-enum", BASE + "[policy]\nstrategy = \"pack\"\n", "policy", "strategy",
     ['"pack"', '"binpack", "spread"']),
    ("negative-size", edit('mem = "1GiB"', 'mem = "-1GiB"'), 'services "cache"', "mem", ['"-1GiB" is negative']),
    ("negative-cpu", edit('cpu = "500m"', "cpu = -2"), 'services "web"', "cpu", ["-2 is negative", "500m"]),
    ("zero-size", edit('mem = "256MiB"', 'mem = "0MiB"'), 'services "web"', "mem",
     ['"0MiB" must be more than zero']),
    ("zero-capacity", edit("capacity = { cpu = 4,", "capacity = { cpu = 0,"), 'hosts "h1"', "capacity.cpu",
     ["0 must be more than zero"]),
    ("unparseable-unit", edit('mem = "256MiB"', 'mem = "12XB"'), 'services "web"', "mem",
     ['"12XB"', 'unknown unit "XB"', "MiB"]),
    ("unparseable-cpu", edit('cpu = "500m"', 'cpu = "half"'), 'services "web"', "cpu", ['"half"', '"500m"']),
    ("duplicate-host", edit('name = "h2"', 'name = "h1"'), 'hosts "h1"', "name",
     ["declared twice", "hosts[0]", "hosts[1]"]),
    ("duplicate-service", edit('name = "cache"', 'name = "web"'), 'services "web"', "name",
     ["declared twice", "services[0]", "services[1]"]),
    ("duplicate-endpoint", edit('address = "10.0.0.2"', 'address = "10.0.0.1"'), 'hosts "h2"', "port",
     ['10.0.0.1:22 is already used by hosts "h1"']),
    ("avoid-unknown", edit('mem = "256MiB"', 'mem = "256MiB"\navoid = ["cach"]'), 'services "web"', "avoid",
     ['"cach"', 'did you mean "cache"']),
    ("spread-over-unknown", edit('mem = "256MiB"', 'mem = "256MiB"\nspread_over = "zon"'), 'services "web"',
     "spread_over", ['"zon"', 'did you mean "zone"']),
    ("require-unknown-value", edit('mem = "256MiB"', 'mem = "256MiB"\nrequire = { zone = "c" }'), 'services "web"',
     "require.zone", ['"c" matches no host', '"a", "b"']),
    ("require-unknown-label", edit('mem = "256MiB"', 'mem = "256MiB"\nrequire = { dsk = "ssd" }'), 'services "web"',
     "require.dsk", ['did you mean "disk"']),
    ("hosts-as-table", BASE.replace("[[hosts]]", "[hosts]", 1).split("[[hosts]]")[0], "", "hosts",
     ["array of tables", "[[hosts]]", "got a table"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "entry", "field", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_bad_input_class_names_file_entry_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, entry: str, field: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["validate", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = [line.removeprefix("loadmaster: ") for line in err.splitlines() if line != "loadmaster: errors:"]
    where = f"{path}: {entry}: {field} " if entry else f"{path}: {field} "
    matching = [line for line in lines if line.startswith(where)]
    assert matching, f"no line starts with {where!r} in:\n{err}"
    for fragment in fragments:
        assert any(fragment in line for line in matching), f"{fragment!r} missing from {matching}"
    assert len(lines) == 1, f"one mistake should give one message, got:\n{err}"
    assert err.startswith(f"loadmaster: {path}: ")


def test_all_errors_are_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        edit('cpu = "500m"', 'cpu = "half"')
        .replace('mem = "1GiB"', 'mem = "1XB"')
        .replace('name = "h2"', 'name = "h2"\nport = 0')
        .replace('name = "t"', 'name = "t"\nfailure_timeout = "soon"')
    )
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loadmaster: errors:\n")
    for where in ['services "web": cpu', 'services "cache": mem', 'hosts "h2": port', "cluster: failure_timeout"]:
        assert f"{path}: {where} " in err
    assert len(err.splitlines()) == 5


@pytest.mark.parametrize(
    ("content", "entry", "fragments"),
    [
        (b'[cluster]\nname = "t"\nnme "y"\n', "line 3", ["not valid TOML", 'nme "y"']),
        (b'[cluster]\n\nname = "caf\xe9"\n', "line 3", ["not UTF-8", "0xe9"]),
        (b"", "", ["declares nothing", "[[hosts]]"]),
        (b"# nothing but a comment\n", "", ["declares nothing"]),
    ],
    ids=["toml-syntax", "not-utf8", "empty", "only-comments"],
)
def test_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, entry: str, fragments: list[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"loadmaster: {path}: {entry + ': ' if entry else ''}")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["validate", "-c", str(missing)]) == 1
    assert (
        capsys.readouterr().err == f"loadmaster: {missing}: not found (create it, pass -c FILE or set ${ENV_CONFIG})\n"
    )
    assert main(["validate", "-c", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}: is a directory" in err and f"-c {tmp_path / 'cluster.toml'}" in err


def test_default_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    assert main(["validate"]) == 1
    assert "cluster.toml: not found" in capsys.readouterr().err

    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(BASE)
    monkeypatch.setenv(ENV_CONFIG, str(elsewhere))
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith(f"{elsewhere}: valid")

    (tmp_path / "cluster.toml").write_text(BASE.replace('name = "t"', 'name = "local"'))
    assert main(["validate"]) == 0
    assert "cluster 'local'" in capsys.readouterr().out  # ./cluster.toml comes before the variable
    assert main(["validate", "-c", str(elsewhere)]) == 0
    assert "cluster 't'" in capsys.readouterr().out  # and -c before both


def test_validate_summarises_the_root_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cluster.toml: valid — cluster 'demo' (demo fleet)\n")
    assert "requested /" in out and "warning" not in out


def test_validate_notes_probed_hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())  # with the byte-order mark some editors write
    assert main(["validate", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  hosts:    2 (1 with pinned capacity)\n" in out
    assert "  note: hosts without a capacity pin (1) are probed when connected\n" in out


def test_validate_warns_about_what_cannot_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit('name = "h2"', 'name = "h2"\ncapacity = { cpu = 1, mem = "1GiB" }').replace("cpu = 1\n", "cpu = 8\n")
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert main(["validate", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  cpu:      8.5 cores requested / 5.0 declared" in out
    assert "warning: requests exceed declared capacity in cpu" in out
    assert 'warning: services "cache": one replica (8 cpu, 1GiB) fits on no host it may use' in out
    assert "web" not in out.split("warning", 1)[1]


@pytest.mark.parametrize(
    "argv", [["nosuch"], ["validate", "--bogus"], ["validate", "-c"], ["validate", "extra"]], ids=str
)
def test_wrong_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("loadmaster 0.")
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "validate" in capsys.readouterr().out


def test_installed_script(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the package (pip install -e .)"
    good = subprocess.run([SCRIPT, "validate"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("cluster.toml: valid")

    bad = tmp_path / "bad.toml"
    bad.write_text(edit('mem = "256MiB"', 'mem = "12XB"'))
    run = subprocess.run([SCRIPT, "validate", "-c", bad], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr == f'loadmaster: {bad}: services "web": mem "12XB" has an unknown unit "XB" (use {UNITS})\n'

    usage = subprocess.run([SCRIPT, "validate", "--nope"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "unrecognized arguments: --nope" in usage.stderr
    assert "Traceback" not in run.stderr + usage.stderr + good.stderr


UNITS = "B, KiB, MiB, GiB, TiB, PiB (binary) or K, M, G, T, P (decimal)"


def test_readme_lists_exactly_the_commands_that_exist() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `loadmaster(?:` or `loadmaster)? ([a-z][a-z-]*)", section, re.M))
    assert documented == set(sub.choices)


def test_closed_output_pipe_is_not_a_traceback() -> None:
    # `true` exits at once, so the summary is written into a pipe nobody reads.
    run = subprocess.run(
        ["bash", "-c", f"'{SCRIPT}' validate | true; exit ${{PIPESTATUS[0]}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 141
    assert run.stderr == ""
