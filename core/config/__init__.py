"""`cluster.toml` → `ClusterConfig`, reporting every problem at once.

Each problem names the file, the entry and the field, with the bad value and
what would be valid, so that an operator can fix the whole file in one pass.
Entries with problems are still read as far as possible and take part in the
cross-checks, so one typo does not hide or cause other messages.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from core.config.keys import (
    API_KEYS,
    AUTOSCALE_KEYS,
    CHECK_KEYS,
    CLUSTER_KEYS,
    DEFAULT_CONFIG,
    DEFAULTS_KEYS,
    ENV_CONFIG,
    HOST_KEYS,
    LOCAL_ADDRESS,
    MAX_COMMAND_BYTES,
    MAX_DEPTH,
    MAX_ENV_BYTES,
    POLICY_KEYS,
    SECTIONS,
    SERVICE_KEYS,
)
from core.config.reader import Reader
from core.config.sections import read
from core.config.values import is_demo_address
from core.errors import ConfigError, ConfigProblem
from core.model import ClusterConfig
from core.nesting import deeper_than

__all__ = [
    "API_KEYS", "AUTOSCALE_KEYS", "CHECK_KEYS", "CLUSTER_KEYS", "DEFAULTS_KEYS", "DEFAULT_CONFIG", "ENV_CONFIG",
    "HOST_KEYS", "LOCAL_ADDRESS", "MAX_COMMAND_BYTES", "MAX_ENV_BYTES", "POLICY_KEYS", "SECTIONS", "SERVICE_KEYS",
    "decode", "is_demo_address", "load", "parse", "resolve_path",
]  # fmt: skip

_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def resolve_path(explicit: str | None) -> Path:
    """`-c FILE` when given, else `./cluster.toml` when it exists, else `$LOADMASTER_CONFIG` when set.

    With none of them the answer is `./cluster.toml`, so the error names the file looked for first.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    local = Path(DEFAULT_CONFIG)
    from_env = os.environ.get(ENV_CONFIG, "").strip()
    if not local.is_file() and from_env:
        return Path(from_env).expanduser()
    return local


def load(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and validate a cluster file; raises ConfigError listing every problem."""
    file = str(path)
    if Path(path).is_dir():
        hint = f"pass the file itself, e.g. -c {Path(path) / DEFAULT_CONFIG}"
        raise ConfigError([ConfigProblem(file, "", "", f"is a directory, not a cluster file ({hint})")])
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(file, "", "", f"not found (create it, pass -c FILE or set ${ENV_CONFIG})")]
        ) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", "", f"cannot be read: {exc.strerror or exc}")]) from None
    return parse(decode(raw, file), file)


def decode(raw: bytes, file: str = DEFAULT_CONFIG) -> str:
    """The text of a cluster file's bytes; raises ConfigError naming the line of a byte that is not UTF-8."""
    try:
        return raw.decode("utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise ConfigError(
            [ConfigProblem(file, f"line {line}", "", f"is not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")]
        ) from None


def parse(text: str, file: str = DEFAULT_CONFIG) -> ClusterConfig:
    """Validate the text of a cluster file; `file` is only used to name it in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(file, text, str(exc))]) from None
    except RecursionError:  # the parser recurses per level: a hostile file must not end the reader
        raise ConfigError([_too_deep(file)]) from None
    if deeper_than(data, MAX_DEPTH):
        raise ConfigError([_too_deep(file)])
    return read(Reader(file), data)


def _too_deep(file: str) -> ConfigProblem:
    return ConfigProblem(
        file, "", "", f"nests arrays or tables more than {MAX_DEPTH} levels deep; a cluster file needs 3 "
        "(e.g. [[services]] → resources → gpu)"
    )  # fmt: skip


def _syntax_problem(file: str, text: str, message: str) -> ConfigProblem:
    position = _TOML_POSITION_RE.search(message)
    if not position:
        return ConfigProblem(file, "", "", f"is not valid TOML: {message}")
    line, column = int(position.group(1)), int(position.group(2))
    lines = text.splitlines()
    source = lines[line - 1].strip() if line <= len(lines) else ""
    shown = f", in: {source}" if source else ""
    reason = message[: position.start()]
    return ConfigProblem(file, f"line {line}", "", f"is not valid TOML: {reason} (column {column}{shown})")
