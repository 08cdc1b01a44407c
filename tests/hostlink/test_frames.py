"""The frame parser on probe output captured from this machine's real /proc (tests/hostlink/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.hostlink.frames import Frame, FrameError, FrameReader, Unsupported, observe, parse_frame
from core.model import HostState, ReplicaId

DATA = Path(__file__).parent / "data"
WITH_REPLICAS = (DATA / "frames_with_replicas.txt").read_bytes()  # a cpu-burning replica and a sleeping one
IDLE = (DATA / "frames_idle.txt").read_bytes()


def frames(data: bytes) -> list[Frame]:
    items = FrameReader().feed(data)
    assert all(isinstance(i, Frame) for i in items), items
    return items  # type: ignore[return-value]


def test_captured_frames_parse_into_what_proc_said() -> None:
    first, second, third = frames(WITH_REPLICAS)
    assert [f.seq for f in (first, second, third)] == [1, 2, 3]
    assert first.mem_total_kb == 24684096 and first.mem_available_kb == 24152168
    assert (first.ncpu, first.hz, first.load1, first.uptime) == (2, 100, 2.68, 1033.38)
    assert first.cpu[:4] == (54742, 0, 5277, 142869)
    burn, sleeper = first.replicas
    assert burn.replica == ReplicaId("burn", 0) and burn.generation == "g7" and burn.alive
    assert sleeper.replica == ReplicaId("sleep er", 1) and sleeper.ticks == 0 and sleeper.rss_kb == 3340


def test_observation_takes_cpu_percent_from_counter_deltas() -> None:
    first, second, _ = frames(WITH_REPLICAS)
    assert observe("h", first, None, 10.0).cpu_percent is None  # one frame has no rate yet
    obs = observe("h", second, first, 11.0)
    busy = (54936 + 5281 + 3472) - (54742 + 5277 + 3468)
    assert obs.cpu_percent == pytest.approx(100 * busy / (busy + 0), abs=0.01)  # idle did not move: both cpus busy
    assert obs.state is HostState.UP and obs.last_seen == 11.0
    assert obs.capacity is not None and (obs.capacity.cpu, obs.capacity.mem) == (2000, 24684096 * 1024)
    burn, sleeper = obs.replicas
    # 97 ticks of a 100 Hz clock in 1.01 s of uptime: the burner used about one core
    assert burn.cpu_percent == pytest.approx(100 * 0.97 / 1.01, abs=0.01)
    assert sleeper.cpu_percent == 0.0 and sleeper.rss == 3340 * 1024 and sleeper.running


def test_idle_frames_have_no_replicas_and_a_sane_cpu_rate() -> None:
    got = frames(IDLE)
    assert len(got) >= 2 and all(f.replicas == () for f in got)
    percent = observe("h", got[1], got[0], 1.0).cpu_percent
    assert percent is not None and 0.0 <= percent <= 100.0


def test_frames_split_anywhere_reassemble() -> None:
    reader = FrameReader()
    items = [item for i in range(len(WITH_REPLICAS)) for item in reader.feed(WITH_REPLICAS[i : i + 1])]
    assert items == frames(WITH_REPLICAS)


def test_partial_frame_waits_for_the_rest() -> None:
    reader = FrameReader()
    cut = WITH_REPLICAS.index(b"\nE\n") - 20
    assert reader.feed(WITH_REPLICAS[:cut]) == []
    assert [f.seq for f in reader.feed(WITH_REPLICAS[cut:])] == [1, 2, 3]  # type: ignore[union-attr]


def test_truncated_frame_is_an_error_naming_what_is_missing() -> None:
    lines = WITH_REPLICAS.split(b"\nE\n")[0].split(b"\n")
    without_mem = b"\n".join(line for line in lines if not line.startswith(b"mem")) + b"\nE\n"
    (error,) = FrameReader().feed(without_mem)
    assert isinstance(error, FrameError) and "lacks mem" in str(error)
    with pytest.raises(FrameError, match="lacks load, up, ncpu"):
        parse_frame("F 9\ncpu  1 2 3 4\nmem 10 5\nE")


def test_garbage_is_reported_and_skipped_without_losing_the_next_frame() -> None:
    reader = FrameReader()
    noise = b"Welcome to host!\n\x00\xff motd\n"
    items = reader.feed(noise + WITH_REPLICAS)
    assert isinstance(items[0], FrameError) and "not a frame" in str(items[0])
    assert [i.seq for i in items[1:]] == [1, 2, 3]  # type: ignore[union-attr]
    bad = reader.feed(b"F 4\ncpu  x y z w\nmem 1 1\nload 0 0 0\nup 1 1\nncpu 1 100\nE\n")
    assert isinstance(bad[0], FrameError) and "cpu counter 'x'" in str(bad[0])
    (hex_error,) = reader.feed(b"F 5\ncpu  1 1 1 1\nmem 1 1\nload 0\nup 1\nncpu 1 100\nr zz 0 - 1 0 1 - - -\nE\n")
    assert isinstance(hex_error, FrameError) and "not hex-encoded" in str(hex_error)


def test_endless_garbage_is_dropped_not_buffered() -> None:
    reader = FrameReader()
    items = reader.feed(b"x" * (2 << 20))
    assert len(items) == 1 and "no end of frame" in str(items[0])
    assert [f.seq for f in reader.feed(IDLE)] == [1, 2, 3]  # type: ignore[union-attr]


def test_unsupported_host_line() -> None:
    (item,) = FrameReader().feed(b"U no /proc/stat here: not a Linux host\n")
    assert item == Unsupported("no /proc/stat here: not a Linux host")


def test_declared_capacity_line_overrides_probed_capacity() -> None:
    frame = parse_frame("F 1\ncpu  0 0 0 100\nmem 8388608 8000000\nload 0\nup 5\nncpu 3 100\ncap 2500 8589934592\nE")
    obs = observe("d", frame, None, 0.0)
    assert obs.capacity is not None and (obs.capacity.cpu, obs.capacity.mem) == (2500, 8589934592)


def test_health_lines_and_warnings_are_read_and_bad_ones_named() -> None:
    from core.hostlink.frames import FrameError, parse_frame
    from core.model import Health

    base = "F 1\ncpu 1 2 3 4\nmem 100 50\nload 0.1 0 0 1/1 1\nup 10.0 5\nncpu 1 100\n"
    web = "776562"  # "web"
    frame = parse_frame(
        base + f"w http no curl here\nr {web} 0 67 42 1700000000 1 5 100 -\nh {web} 0 42 u 0 3 timeout\nE"
    )
    (check,) = frame.checks
    assert (str(check.replica), check.pid, check.health, check.failures, check.detail) == (
        "web/0",
        42,
        Health.UNHEALTHY,
        3,
        "timeout",
    )
    assert frame.warnings == ("http no curl here",)
    from core.hostlink.frames import observe

    (status,) = observe("a", frame, None, 0.0).replicas
    assert status.health is Health.UNHEALTHY and status.health_detail == "timeout" and not status.healthy
    with pytest.raises(FrameError, match="health state 'x'"):
        parse_frame(base + f"h {web} 0 42 x 0 3 timeout\nE")
    with pytest.raises(FrameError, match="health line has 5 fields"):
        parse_frame(base + f"h {web} 0 42 u\nE")
