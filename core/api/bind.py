"""Where the API listens: `HOST:PORT` parsed and judged (loopback or not), without importing aiohttp.

`core.config` validates `[api] listen` with this, so `loadmaster validate` stays quick.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from core.errors import LoadmasterError

DEFAULT_PORT = 7400


class BindError(LoadmasterError, ValueError):
    """A listen address that cannot be used; a ValueError too, so the config reader reports it as a problem."""


@dataclass(frozen=True, slots=True)
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> Bind:
    """`127.0.0.1:7400`, `[::1]:7400`, `localhost` (port 7400) or `:7400` (loopback)."""
    text = text.strip()
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep or (host.count(":") and not host.startswith("[")):  # a bare IPv6 address has no port
        host, port = text, str(DEFAULT_PORT)
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BindError(f'"{text}": the port must be a number from 0 to 65535 (e.g. "127.0.0.1:7400")')
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise BindError(f'"{text}": "{host}" is not a host name or IP address (e.g. "127.0.0.1:7400")')
    return Bind(host, int(port))
