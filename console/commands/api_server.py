"""Serving the HTTP API from a front end (headless or console): `--api [HOST:PORT]` and `[api]` in the file.

aiohttp loads only when the API is served, so the other commands start without it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands.runtime import api_tokens_path
from core.api.bind import DEFAULT_PORT, parse_bind
from core.model import ClusterConfig

if TYPE_CHECKING:
    from core.api.server import ApiServer
    from core.engine.engine import Engine
    from core.store.desired_doc import StoredEditor


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """Where to serve, if at all, and the cluster file its writes change."""

    listen: str
    path: Path


def add_api(parser: argparse.ArgumentParser, *, by_default: str) -> None:
    parser.add_argument(
        "--api",
        nargs="?",
        const="",
        metavar="HOST:PORT",
        help=f"serve the HTTP API ({by_default}; without HOST:PORT, [api] listen or 127.0.0.1:{DEFAULT_PORT}); "
        "`loadmaster api-token` prints a token",
    )


def api_request(flag: str | None, config: ClusterConfig, path: Path, *, from_file: bool) -> ApiRequest | None:
    """`--api HOST:PORT` wins; bare `--api` takes [api] listen or the default; without the flag, the daemon
    (`from_file`) serves where [api] listen says and the console does not serve."""
    if flag:
        listen = flag
    elif flag == "":
        listen = config.api.listen or f"127.0.0.1:{DEFAULT_PORT}"
    elif from_file and config.api.listen:
        listen = config.api.listen
    else:
        return None
    parse_bind(listen)  # a bad address fails before anything starts
    return ApiRequest(listen, path)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loadmaster")
    except PackageNotFoundError:
        return "0"


def _warn(message: str) -> None:
    print(f"loadmaster: {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def serving(
    engine: Engine, request: ApiRequest | None, *, read_only: bool, editor: StoredEditor | None = None
) -> AsyncIterator[ApiServer | None]:
    """The API on `engine` for the duration of the block (nothing when `request` is None). `editor`: clustered,
    the stored document, which the API writes and whose mirror it reads, instead of the cluster file."""
    if request is None:
        yield None
        return
    from core.api.server import ApiServer, tls_context
    from core.api.tokens import TokenStore

    config = engine.snapshot().config
    tls = tls_context(config.api.tls_cert, config.api.tls_key) if config.api.tls_cert and config.api.tls_key else None
    path = request.path if editor is None or editor.mirror is None else editor.mirror
    server = ApiServer(engine, path, TokenStore(api_tokens_path(config)), read_only=read_only, tls=tls,
                       version=_version(), editor=editor)  # fmt: skip
    await server.start(parse_bind(request.listen), _warn)
    try:
        yield server
    finally:
        await server.close()
