"""Converters of cluster-file values: each returns the value or raises ValueError saying what is valid."""

from __future__ import annotations

import difflib
import enum
import ipaddress
import shlex
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from core.api.bind import parse_bind
from core.config.keys import (
    LOCAL_ADDRESS,
    MAX_COMMAND_BYTES,
    MAX_LOG_KEEP,
    MAX_PATH_BYTES,
    MAX_REPLICAS,
    MIN_LOG_SIZE,
    NAME_RE,
    STOP_SIGNALS,
    USER_RE,
)
from core.units import literal, parse_duration, parse_size

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(word, known, n=1)
    if close:
        return f' (did you mean "{close[0]}"?)'
    return f" (known: {', '.join(known)})" if known else ""


def kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")  # fmt: skip


def got(value: Any) -> str:
    return f"got {kind(value)} {literal(value)}"


def is_demo_address(address: str) -> bool:
    """An address `loadmaster demo` can serve a demo host on: "localhost" or IPv4 loopback (127.0.0.0/8, whose
    every address is this machine's, so each demo host can have its own). Not "local", which runs replicas without
    SSH, and not ::1: the demo fleet listens on IPv4 loopback only. `validate` and the demo use this one rule."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address) in _IPV4_LOOPBACK
    except ValueError:
        return False


_IPV4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def is_loopback(address: str) -> bool:
    if address in ("localhost", LOCAL_ADDRESS):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def workdir(value: Any) -> str:
    path = nonempty(value)
    if "\0" in path:
        raise ValueError("contains a NUL character, which no path can hold")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"is longer than {MAX_PATH_BYTES} bytes, the longest path Linux takes")
    if not (path.startswith("/") or path == "~" or path.startswith("~/")):
        raise ValueError(f'{literal(value)} must be absolute ("/srv/web") or in the SSH user\'s home ("~/web")')
    return path


def user(value: Any) -> str:
    if not USER_RE.fullmatch(string(value)):
        raise ValueError(f'{literal(value)} is not a user name (letters, digits, ".", "_" and "-", e.g. "www-data")')
    return value


def stop_signal(value: Any) -> str:
    name = string(value).upper().removeprefix("SIG")
    if name not in STOP_SIGNALS:
        raise ValueError(f"{literal(value)} is not one of: " + ", ".join(f'"{s}"' for s in STOP_SIGNALS))
    return name


def log_size(value: Any) -> int:
    size = parse_size(value)
    if size < MIN_LOG_SIZE:
        raise ValueError(f'{literal(value)} is less than {MIN_LOG_SIZE} bytes (e.g. "10MiB")')
    return size


def log_keep(value: Any) -> int:
    if not 0 <= integer(value) <= MAX_LOG_KEEP:
        raise ValueError(f"must be a number of rotated files from 0 to {MAX_LOG_KEEP}, got {value}")
    return value


def or_default(value: T | None, default: T) -> T:
    return default if value is None else value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, {got(value)}")
    return value


def nonempty(value: Any) -> str:
    if not string(value).strip():
        raise ValueError(f"must not be empty, got {literal(value)}")
    return value


def replicas(value: Any) -> int:
    if count(value) > MAX_REPLICAS:
        raise ValueError(f"{value} is more than {MAX_REPLICAS:,} replicas of one service (split it into services)")
    return value


def command(value: Any) -> str:
    size = len(shlex.quote(nonempty(value)).encode("utf-8"))
    if size > MAX_COMMAND_BYTES:
        raise ValueError(
            f"is {size:,} bytes (quoted); a command must stay under {MAX_COMMAND_BYTES // 1024} KiB, as it reaches "
            "the host inside one SSH command line, which Linux caps at 128 KiB (MAX_ARG_STRLEN): put a longer one "
            "in a script on the host"
        )
    return value


def listen(value: Any) -> str:
    parse_bind(string(value))  # raises a ValueError that says what would be valid
    return value


def name(value: Any) -> str:
    if not NAME_RE.fullmatch(string(value)):
        raise ValueError(f'{literal(value)} is not a valid name (use letters, digits, ".", "_" and "-", e.g. "web-1")')
    return value


def names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f'must be a list of names like ["cache"], {got(value)}')
    return [name(v) for v in value]


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, {got(value)}")
    return value


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, {got(value)}")
    return value


def count(value: Any) -> int:
    if integer(value) < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def positive_int(value: Any) -> int:
    if integer(value) < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


MAX_SOLVER_WORKERS = 64


def solver_workers(value: Any) -> int:
    if not 1 <= integer(value) <= MAX_SOLVER_WORKERS:
        raise ValueError(f"must be a number of solver threads from 1 to {MAX_SOLVER_WORKERS}, got {value}")
    return value


def positive_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"must be a number more than zero (e.g. 0.6 = 60% of the requested cpu), {got(value)}")
    return float(value)


def port(value: Any) -> int:
    if not 1 <= integer(value) <= 65535:
        raise ValueError(f"must be a port from 1 to 65535, got {value}")
    return value


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'{literal(value)} must be more than zero (e.g. "1s")')
    return seconds


def url_path(value: Any) -> str:
    if not string(value).startswith("/") or any(c.isspace() or ord(c) < 32 or c == "#" for c in value):
        raise ValueError(f'{literal(value)} must be a URL path starting with "/" without spaces (e.g. "/healthz")')
    return value


def http_status(value: Any) -> int:
    if not 100 <= integer(value) <= 599:
        raise ValueError(f"must be an HTTP status from 100 to 599, got {value}")
    return value


def positive(parse: Callable[[Any], int]) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        amount = parse(value)
        if amount <= 0:
            raise ValueError(f"{literal(value)} must be more than zero")
        return amount

    return convert


CHECK_CONVERT: dict[str, Callable[[Any], Any]] = {
    "path": url_path,
    "status": http_status,
    "command": nonempty,
    "port": port,
    "interval": positive_duration,
    "timeout": positive_duration,
    "grace": parse_duration,
    "unhealthy_after": positive_int,
    "healthy_after": positive_int,
}


def enum_of(kind: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        options = [m.value for m in kind]
        if value not in options:
            raise ValueError(f"{literal(value)} is not one of: " + ", ".join(f'"{o}"' for o in options))
        return kind(value)

    return convert
