"""Where a cluster keeps its state: `[cluster] store` and its TLS keys, read into StoreSettings.

- `store = "sqlite"` (the default): the embedded journal on this machine, one controller at a time;
- `store = "etcd://h1:2379,h2:2379,h3:2379"` (or `etcds://…` for TLS): plans, action states, events and
  the desired-state document in etcd, under `store_prefix` (default `/loadmaster/<cluster name>/`), with
  leader election among the daemons. `store_ca`, `store_cert`, `store_key` name PEM files for TLS and
  client-certificate authentication (`etcds://` only).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

STORE_KEYS = ("store", "store_prefix", "store_ca", "store_cert", "store_key")
_ENDPOINT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    kind: str = "sqlite"  # sqlite | etcd
    endpoints: tuple[str, ...] = ()  # http(s)://host:port
    prefix: str = ""  # every key of this cluster starts with it; "" = /loadmaster/<name>/
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def clustered(self) -> bool:
        return self.kind == "etcd"

    def key_prefix(self, cluster: str) -> str:
        return self.prefix or f"/loadmaster/{cluster}/"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not any(e.startswith("https://") for e in self.endpoints):
            return None
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


SQLITE = StoreSettings()


def parse_store(url: str, prefix: str | None, ca: str | None, cert: str | None, key: str | None) -> StoreSettings:
    """The settings `url` names; ValueError says what to write instead."""
    if url == "sqlite":
        if any(v is not None for v in (prefix, ca, cert, key)):
            raise ValueError("is sqlite: store_prefix, store_ca, store_cert and store_key apply to etcd only")
        return SQLITE
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("etcd", "etcds"):
        raise ValueError(f'must be "sqlite" or "etcd://host:port,host:port,…" (or etcds:// for TLS), not {url!r}')
    hosts = [h.strip() for h in rest.strip("/").split(",") if h.strip()]
    if not hosts:
        raise ValueError(f"names no etcd member: write etcd://host:2379,… ({url!r})")
    bad = [h for h in hosts if not _ENDPOINT.match(h)]
    if bad:
        raise ValueError(f"has members that are not host:port: {', '.join(bad)}")
    if scheme == "etcd" and any(v is not None for v in (ca, cert, key)):
        raise ValueError("uses etcd:// (plain HTTP): write etcds:// to use store_ca, store_cert, store_key")
    if (cert is None) != (key is None):
        raise ValueError("needs both store_cert and store_key for a client certificate, or neither")
    if prefix is not None and not (prefix.startswith("/") and prefix.endswith("/")):
        raise ValueError(f"store_prefix must start and end with '/' (e.g. /loadmaster/prod/), not {prefix!r}")
    web = "https" if scheme == "etcds" else "http"
    return StoreSettings("etcd", tuple(f"{web}://{h}" for h in hosts), prefix or "", ca, cert, key)
