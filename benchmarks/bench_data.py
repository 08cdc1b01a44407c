"""Readers for the public packing instances under ../shared/bench (formats in its README.md).

The instance files are licensed for benchmarking only: they are read in place and never
copied into this repository. Each reader turns an instance into an ordinary
`PlacementProblem` (item sizes → services with replica counts, bins → identical hosts),
so the benchmark runs exactly the code that places services.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.model import CPU, MEM, HostState, Resources, Service, Strategy
from core.optimizer import HostSpec, PlacementProblem

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO.parent / "shared" / "bench"
DIMENSION_NAMES = (CPU, MEM)  # further dimensions are named d2, d3, …


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    capacity: tuple[int, ...]
    items: tuple[tuple[tuple[int, ...], int], ...]  # (size per dimension, count)
    optimum: int | None

    @property
    def n_items(self) -> int:
        return sum(n for _, n in self.items)


def resolve_set(path: str, root: Path = DEFAULT_ROOT) -> Path:
    """A set given as a path, or relative to the bench root (e.g. `falkenauer/u`)."""
    p = Path(path)
    if p.exists():
        return p
    if (root / path).exists():
        return root / path
    raise SystemExit(f"benchmark set {path!r} not found (looked in . and {root}); pass --root")


def _optima(folder: Path) -> dict[str, int]:
    """optima.csv from the folder or the nearest parent that has one."""
    for d in (folder, *folder.parents):
        f = d / "optima.csv"
        if f.exists():
            with f.open() as fh:
                return {row["instance"]: int(row["optimum"]) for row in csv.DictReader(fh)}
        if d.name == "bench":
            break
    return {}


def read_bpp(file: Path, optima: dict[str, int]) -> Instance:
    tokens = file.read_text().split()
    n, cap = int(tokens[0]), int(tokens[1])
    weights = [int(t) for t in tokens[2 : 2 + n]]
    items = tuple(sorted(((w,), k) for w, k in Counter(weights).items()))
    return Instance(file.stem, (cap,), items, optima.get(file.stem))


def read_vbp(file: Path, optima: dict[str, int]) -> Instance:
    tokens = [int(t) for t in file.read_text().split()]
    d = tokens[0]
    cap = tuple(tokens[1 : 1 + d])
    m = tokens[1 + d]
    counts: Counter[tuple[int, ...]] = Counter()
    pos = 2 + d
    for _ in range(m):
        size = tuple(tokens[pos : pos + d])
        counts[size] += tokens[pos + d]
        pos += d + 1
    return Instance(file.stem, cap, tuple(sorted(counts.items())), optima.get(file.stem))


def instances(folder: Path, *, dims: int | None = None) -> list[Instance]:
    optima = _optima(folder)
    files = sorted(folder.rglob("*.txt")) + sorted(folder.rglob("*.vbp"))
    if dims is not None:
        files = [f for f in files if f.suffix != ".vbp" or f.stem.split("_")[2] == str(dims)]
    out = []
    for f in sorted(files, key=lambda f: f.stem):
        out.append(read_vbp(f, optima) if f.suffix == ".vbp" else read_bpp(f, optima))
    return out


def dimension(i: int) -> str:
    return DIMENSION_NAMES[i] if i < len(DIMENSION_NAMES) else f"d{i}"


def to_problem(inst: Instance, n_hosts: int | None = None) -> PlacementProblem:
    """Items → services (one per distinct size), bins → identical hosts.

    Bins are unlimited in these instances; one host per item is always enough.
    """
    n = n_hosts if n_hosts is not None else inst.n_items

    def res(values: tuple[int, ...]) -> Resources:
        return Resources.of({dimension(i): v for i, v in enumerate(values)})

    hosts = tuple(HostSpec(f"bin-{i:04d}", res(inst.capacity), {}, HostState.UP) for i in range(n))
    services = tuple(
        Service(f"item-{'x'.join(map(str, size))}", "true", count, res(size)) for size, count in inst.items
    )
    return PlacementProblem(hosts, services, strategy=Strategy.BINPACK)


@dataclass(frozen=True, slots=True)
class TracePods:
    at: int
    hosts: tuple[tuple[str, int, int, int], ...]  # name, cpu_milli, memory bytes, gpu in 1/1000 of a device
    pods: tuple[tuple[int, int, int], ...]  # cpu_milli, memory bytes, gpu in 1/1000 of a device


def read_trace(folder: Path, at: int | None = None, *, every_pod: bool = False) -> TracePods:
    """Nodes and the pods alive at time `at` (default: the moment with the most pods alive),
    or with `every_pod` all pods of the list at once (`at` is then -1): a far larger packing.

    GPU is counted in thousandths of a device (a pod may share a GPU, as `gpu_milli` says).
    """
    with (folder / "openb_node_list_all_node.csv").open() as fh:
        hosts = tuple(
            (r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]) * 2**20, int(r["gpu"]) * 1000)
            for r in csv.DictReader(fh)
        )
    with (folder / "openb_pod_list_default.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    spans = []
    for r in rows:
        start = int(r["creation_time"] or 0)
        end = int(r["deletion_time"]) if r["deletion_time"] else 2**62
        spans.append((start, end, r))
    if every_pod:
        at = -1
    elif at is None:
        events = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans])
        alive, best = 0, (-1, 0)
        for t, delta in events:  # ends sort before starts at the same time: [start, end)
            alive += delta
            if alive > best[0]:
                best = (alive, t)
        at = best[1]
    pods = []
    for start, end, r in spans:
        if every_pod or start <= at < end:
            gpu = int(r["num_gpu"] or 0) * int(r["gpu_milli"] or 0)
            pods.append((int(r["cpu_milli"]), int(r["memory_mib"]) * 2**20, gpu))
    return TracePods(at, hosts, tuple(pods))


def trace_problem(trace: TracePods) -> PlacementProblem:
    hosts = tuple(
        HostSpec(name, Resources(cpu, mem, {"gpu": gpu}), {}, HostState.UP) for name, cpu, mem, gpu in trace.hosts
    )
    shapes = Counter(trace.pods)
    services = tuple(
        Service(f"pod-{cpu}m-{mem // 2**20}Mi-{gpu}mg", "true", n, Resources(cpu, mem, {"gpu": gpu}))
        for (cpu, mem, gpu), n in sorted(shapes.items())
    )
    return PlacementProblem(hosts, services, strategy=Strategy.BINPACK)
