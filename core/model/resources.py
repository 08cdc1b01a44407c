"""Resources: integers (millicores, bytes, whole units of further dimensions), because the solver works on
integers and equal inputs must give equal plans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

CPU = "cpu"


MEM = "mem"


def _frozen_map(values: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> Mapping[str, int]:
    # Zero amounts are dropped so that equal resources compare equal however they were summed.
    return MappingProxyType({k: v for k, v in sorted(dict(values).items()) if v != 0})


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount per dimension: `cpu` in millicores, `mem` in bytes, others (gpu, …) in units."""

    cpu: int = 0
    mem: int = 0
    extra: Mapping[str, int] = field(default_factory=_frozen_map)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _frozen_map(self.extra))

    @classmethod
    def of(cls, amounts: Mapping[str, int]) -> Resources:
        rest = {k: v for k, v in amounts.items() if k not in (CPU, MEM)}
        return cls(amounts.get(CPU, 0), amounts.get(MEM, 0), rest)

    def as_dict(self) -> dict[str, int]:
        return {CPU: self.cpu, MEM: self.mem, **self.extra}

    def get(self, dimension: str) -> int:
        return self.as_dict().get(dimension, 0)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (CPU, MEM, *self.extra)

    def __add__(self, other: Resources) -> Resources:
        a, b = self.as_dict(), other.as_dict()
        return Resources.of({k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()})

    def __sub__(self, other: Resources) -> Resources:
        a, b = self.as_dict(), other.as_dict()
        return Resources.of({k: a.get(k, 0) - b.get(k, 0) for k in a.keys() | b.keys()})

    def __mul__(self, factor: int) -> Resources:
        return Resources.of({k: v * factor for k, v in self.as_dict().items()})

    def fits(self, capacity: Resources) -> bool:
        """True when this amount fits within `capacity` in every dimension."""
        cap = capacity.as_dict()
        return all(v <= cap.get(k, 0) for k, v in self.as_dict().items())

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))


def total(resources: Iterable[Resources]) -> Resources:
    result = Resources()
    for r in resources:
        result = result + r
    return result
