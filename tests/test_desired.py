"""core.desired: comment-preserving, validated, atomic, revision-checked writes of cluster.toml."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core import config as config_io
from core import desired
from core.errors import ConfigError, RevisionConflict, UnknownService

CLUSTER = """\
# The lab cluster: keep this comment.
[cluster]
name = "lab"          # shown in the console header

[[hosts]]
name = "a"
address = "10.0.0.1"
labels = { zone = "z1" }
capacity = { cpu = 4, mem = "8GiB" }

# web serves the front page
[[services]]
name = "web"
command = "sleep 1000"
replicas = 3          # one per zone, please
cpu = 1
mem = "1GiB"

[[services]]
name = "db"
command = "sleep 1000"
cpu = 2
mem = "2GiB"
avoid = ["web"]

[policy]
auto_apply = false    # a person approves
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(CLUSTER, encoding="utf-8")
    path.chmod(0o640)
    return path


def test_scale_keeps_comments_layout_and_mode(cluster: Path) -> None:
    before = desired.read(cluster)
    doc = desired.scale(cluster, "web", 7, expect=before.revision)
    text = cluster.read_text(encoding="utf-8")
    # exactly one line differs, and its comment stayed
    changed = [(a, b) for a, b in zip(CLUSTER.splitlines(), text.splitlines(), strict=True) if a != b]
    assert changed == [("replicas = 3          # one per zone, please", "replicas = 7          # one per zone, please")]
    assert doc.config.service("web").replicas == 7
    assert doc.revision == desired.revision_of(cluster.read_bytes()) != before.revision
    assert stat.S_IMODE(cluster.stat().st_mode) == 0o640
    assert [p.name for p in cluster.parent.iterdir()] == ["cluster.toml"]  # no temporary file left


def test_scale_adds_the_key_when_the_file_left_it_out(cluster: Path) -> None:
    desired.scale(cluster, "db", 2)
    assert config_io.load(cluster).service("db").replicas == 2
    assert "# web serves the front page" in cluster.read_text(encoding="utf-8")


def test_a_stale_revision_is_refused_with_the_current_one(cluster: Path) -> None:
    old = desired.read(cluster).revision
    now = desired.scale(cluster, "web", 4).revision
    with pytest.raises(RevisionConflict) as caught:
        desired.scale(cluster, "web", 5, expect=old)
    assert caught.value.current == now and caught.value.expected == old
    assert config_io.load(cluster).service("web").replicas == 4


def test_an_invalid_result_is_refused_with_every_problem_and_nothing_written(cluster: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        desired.put_service(cluster, "api", {"command": "x", "cpu": "12XB", "mem": "lots", "colour": "red"})
    texts = [str(p) for p in caught.value.problems]
    # the very texts `loadmaster validate` prints for the same file
    with_api = CLUSTER + '\n[[services]]\nname = "api"\ncommand = "x"\ncpu = "12XB"\nmem = "lots"\ncolour = "red"\n'
    with pytest.raises(ConfigError) as by_reader:
        config_io.parse(with_api, str(cluster))
    assert texts == [str(p) for p in by_reader.value.problems]
    assert len(texts) == 3
    assert cluster.read_text(encoding="utf-8") == CLUSTER
    with pytest.raises(ConfigError, match=r"replicas must be 0 or more, got -1"):
        desired.scale(cluster, "web", -1)


def test_put_creates_then_replaces_in_place(cluster: Path) -> None:
    _, created = desired.put_service(
        cluster, "api", {"command": "run api", "replicas": 2, "cpu": "500m", "mem": "256MiB", "require": {"zone": "z1"}}
    )
    assert created
    cfg = config_io.load(cluster)
    assert cfg.service("api").require == {"zone": "z1"} and cfg.service("api").resources.cpu == 500
    doc, created = desired.put_service(cluster, "web", {"command": "serve", "cpu": 2, "mem": "1GiB"})
    assert not created
    text = cluster.read_text(encoding="utf-8")
    assert text.index('name = "web"') < text.index('name = "db"') < text.index('name = "api"')
    assert "# web serves the front page" in text and "# a person approves" in text
    assert doc.config.service("web").replicas == 1  # replaced whole: replicas left out takes its default
    assert [s.name for s in doc.config.services] == ["web", "db", "api"]
    tables = text.split("[policy]")
    assert tables[0].count("[[services]]") == 3  # the new table sits with the others, before [policy]


def test_delete_and_its_refusals(cluster: Path) -> None:
    with pytest.raises(ConfigError, match='avoid names "web", which is not a service in this file'):
        desired.delete_service(cluster, "web")
    with pytest.raises(UnknownService, match='no service "nope"'):
        desired.delete_service(cluster, "nope")
    doc = desired.delete_service(cluster, "db")
    assert [s.name for s in doc.config.services] == ["web"]
    assert "# a person approves" in cluster.read_text(encoding="utf-8")


def test_null_and_a_mismatched_name_are_refused(cluster: Path) -> None:
    with pytest.raises(ConfigError, match="priority is null"):
        desired.put_service(cluster, "api", {"command": "x", "cpu": 1, "mem": "1GiB", "priority": None})
    with pytest.raises(ConfigError, match="differs from the service named"):
        desired.put_service(cluster, "api", {"name": "other", "command": "x", "cpu": 1, "mem": "1GiB"})


def test_fifty_concurrent_writers_lose_no_update(cluster: Path) -> None:
    """Each writer adds one replica: read, compute, compare-and-swap, retry on conflict."""
    conflicts = 0
    lock = threading.Lock()

    def add_one() -> None:
        nonlocal conflicts
        while True:
            doc = desired.read(cluster)
            try:
                desired.scale(cluster, "web", doc.config.service("web").replicas + 1, expect=doc.revision)
                return
            except RevisionConflict:
                with lock:
                    conflicts += 1

    with ThreadPoolExecutor(max_workers=50) as pool:
        for f in [pool.submit(add_one) for _ in range(50)]:
            f.result()
    assert config_io.load(cluster).service("web").replicas == 3 + 50
    assert conflicts > 0  # the writers really did race
    assert "# one per zone, please" in cluster.read_text(encoding="utf-8")


def test_an_editor_saving_between_read_and_rename_is_not_overwritten(cluster: Path, monkeypatch) -> None:
    real = desired._read_bytes
    calls = 0

    def editor_saves_meanwhile(target: Path, name: str) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:  # the re-check just before the rename
            target.write_text(CLUSTER.replace("replicas = 3", "replicas = 9"), encoding="utf-8")
        return real(target, name)

    monkeypatch.setattr(desired, "_read_bytes", editor_saves_meanwhile)
    with pytest.raises(RevisionConflict):
        desired.scale(cluster, "web", 4)
    assert config_io.load(cluster).service("web").replicas == 9
    assert [p.name for p in cluster.parent.iterdir()] == ["cluster.toml"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (CLUSTER[: CLUSTER.index("cpu = 1")] + 'mem = "1G', "is not valid TOML"),  # half-written by a crashed editor
        (b"[cluster]\nname = \xff\n", r"is not UTF-8 text \(byte 0xff\)"),
        ("", "declares nothing"),
    ],
)
def test_a_hostile_or_half_written_file_is_reported_and_left_alone(cluster: Path, content, message) -> None:
    if isinstance(content, bytes):
        cluster.write_bytes(content)
    else:
        cluster.write_text(content, encoding="utf-8")
    before = cluster.read_bytes()
    with pytest.raises(ConfigError, match=message) as caught:
        desired.scale(cluster, "web", 4)
    # the same first problem `validate` reports
    with pytest.raises(ConfigError) as by_reader:
        config_io.load(cluster)
    assert str(caught.value.problems[0]) == str(by_reader.value.problems[0])
    assert cluster.read_bytes() == before
    with pytest.raises(ConfigError, match=message):
        desired.read(cluster)


def test_a_symlinked_file_is_written_through_its_link(cluster: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(cluster)
    desired.scale(link, "web", 5)
    assert link.is_symlink() and config_io.load(cluster).service("web").replicas == 5


def test_a_byte_order_mark_is_kept(cluster: Path) -> None:
    cluster.write_bytes(b"\xef\xbb\xbf" + CLUSTER.encode())
    desired.scale(cluster, "web", 5)
    assert cluster.read_bytes().startswith(b"\xef\xbb\xbf")
    assert config_io.load(cluster).service("web").replicas == 5


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        desired.scale(tmp_path / "nope.toml", "web", 1)
    assert not os.listdir(tmp_path)
