"""The cluster file as the API reads it: revision, config and definitions taken from the same bytes.

A client that reads `replicas` and the revision and then writes with `If-Match` must get both
from one version of the file, or a change made between them would be lost. The parse is
cached until the file changes, and made in a thread: a 1,000-host file takes 100 ms and more to read, which
the API's loop spent on the first request after every change (and every request waited behind it).
"""

from __future__ import annotations

import asyncio
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import config as config_io
from core import desired
from core.errors import ConfigError
from core.model import ClusterConfig


@dataclass(frozen=True, slots=True)
class FileView:
    revision: str
    config: ClusterConfig | None  # None when the file is invalid now
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # service → its table as written
    problems: tuple[str, ...] = ()  # why the file is invalid, as `validate` says it


class DesiredFile:
    def __init__(self, path: Path):
        self.path = path
        self._cached: tuple[tuple[int, int, int, int], FileView] | None = None

    async def view(self) -> FileView:
        try:
            st = self.path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        except OSError:
            key = (0, 0, 0, 0)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, await asyncio.to_thread(self._read))
        return self._cached[1]

    def _read(self) -> FileView:
        name = str(self.path)
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            return FileView("", None, problems=(f"{name}: cannot be read: {exc.strerror or exc}",))
        revision = desired.revision_of(raw)
        try:
            text = config_io.decode(raw, name)
            config = config_io.parse(text, name)
        except ConfigError as exc:
            return FileView(revision, None, problems=tuple(str(p) for p in exc.problems))
        tables = tomllib.loads(text).get("services", [])
        return FileView(revision, config, {t["name"]: t for t in tables})
