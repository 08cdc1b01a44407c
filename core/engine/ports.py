"""What the engine needs from hostlink; the real `core.hostlink.Fleet` and test fakes both fit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.model import Claim, ClusterConfig, HostObservation, ReplicaId, ReplicaStatus, Service, Token


class ReplicaRuntime(Protocol):
    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus: ...

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None: ...


@runtime_checkable
class LogReader(Protocol):
    """A fleet that can read its replicas' logs on their hosts (hostlink's `Fleet`; the in-memory fleets keep none)."""

    def log_stream(self, host: str, replica: ReplicaId, lines: int, follow: bool = False) -> AsyncIterator[bytes]: ...


@runtime_checkable
class KeyTrust(Protocol):
    """A fleet whose hosts' keys an operator may trust (hostlink's `Fleet`): see `Fleet.trust_host_key`."""

    def trust_host_key(self, host: str, fingerprint: str) -> Path: ...


class FencePort(Protocol):
    controller: str  # this controller's id on the hosts' fences

    def set_token(self, token: Token) -> None:
        """The token every following start and stop carries."""
        ...

    async def claim(self, host: str, token: Token, live_for: float, force: bool = False) -> Claim: ...


class FleetPort(ReplicaRuntime, FencePort, Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def observations(self) -> Mapping[str, HostObservation]: ...

    def update_config(self, config: ClusterConfig) -> None: ...


class DemoControl(Protocol):
    """The demo fleet's own controls (the console's stop/restore keys): none on a real fleet."""

    async def crash(self, host: str) -> None: ...

    async def restore(self, host: str) -> None: ...

    def set_load(self, config: ClusterConfig, shares: Mapping[str, float]) -> Sequence[object]:
        """Each named service's replicas burn that share of their cpu request; what was set (core.hostlink.demoload)."""
        ...

    async def wedge(self, replica: ReplicaId) -> tuple[str, int]:
        """The replica's demo server fails its check from now on (core.hostlink.demo_wedge): (host, pid)."""
        ...
