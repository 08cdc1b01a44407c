"""The HTTP server: aiohttp on its own event loop in its own thread, bearer tokens, JSON errors, optional TLS.

On the engine's loop, a request waited behind every tick, solve set-up and render the engine did there (p99
141 ms at 200 requests/s with the handler itself at 4.5 ms); on its own loop it reads the state the engine
publishes (core/api/bridge.py) and hands the engine's part of a write to the engine's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from core.api import openapi
from core.api.bind import Bind, BindError
from core.api.http import MAX_BODY, ApiError, json_response
from core.api.routes import TOKEN, Api, Handler, ServedEngine
from core.api.table import ROUTES
from core.api.tokens import Access, TokenFileError, TokenStore
from core.desired import Editor
from core.errors import LoadmasterError

log = logging.getLogger("loadmaster.api")
_READS = ("GET", "HEAD")
# How long a request that arrives during a tick waits for it (seconds). The API's thread and the engine's
# share the GIL: served meanwhile, a request stretched the tick it landed in (tick p99 +12% at 200 GET/s).
ENGINE_FIRST = 0.02
T = TypeVar("T")


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise LoadmasterError(f"API TLS: cannot load certificate {cert} with key {key}: {exc}") from None
    return context


class ApiServer:
    """Serves `engine` on /v1 until `close()`; every request but the OpenAPI document needs a token."""

    def __init__(
        self,
        engine: ServedEngine,
        config_path: Path,
        tokens: TokenStore,
        *,
        read_only: bool = False,
        tls: ssl.SSLContext | None = None,
        version: str = "0",
        editor: Editor | None = None,
    ):
        self.api = Api(engine, config_path, editor)
        self._engine = engine
        self.tokens = tokens
        self.read_only = read_only or engine.read_only
        self.tls = tls
        self._openapi = openapi.document(version)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the API's own, run by `_thread`
        self._thread: threading.Thread | None = None
        self.url = ""
        self.app = self._build()

    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        for route in ROUTES:
            app.router.add_route(route.method, route.path, getattr(self.api, route.handler))
        app.router.add_get(openapi.OPENAPI_PATH, self._get_openapi)
        return app

    async def start(self, bind: Bind, warn: Callable[[str], None]) -> str:
        """On the engine's loop: listen on `bind` (port 0 picks a free one) from the API's own thread; returns
        the base URL."""
        self.tokens.ensure()
        self.tokens.tokens()  # a token file with a bad mode or content stops the start, not the first request
        if not bind.loopback and self.tls is None:
            warn(
                f"warning: the API listens on {bind} without TLS: tokens and cluster data cross the network "
                "in clear text; give [api] tls_cert and tls_key, or bind to 127.0.0.1"
            )
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(loop,), name="loadmaster-api", daemon=True)
        self._thread.start()
        self.api.bridge.start(loop)
        try:
            self.url = await self.on_api_loop(self._listen(bind))
        except BaseException:
            await self.close()
            raise
        return self.url

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())  # the list renders' threads
            loop.close()

    def on_api_loop(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `work` on the API's loop; awaitable from another loop."""
        assert self._loop is not None, "the API server is not started"
        done: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return asyncio.wrap_future(done)

    async def _listen(self, bind: Bind) -> str:
        await self.api.file.view()  # read before the first request, which would otherwise wait for it
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)  # no log line holds a token
        await self._runner.setup()
        site = web.TCPSite(self._runner, bind.host, bind.port, ssl_context=self.tls)
        try:
            await site.start()
        except OSError as exc:
            raise BindError(f"API cannot listen on {bind}: {exc.strerror or exc}") from None
        host, port = self._runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"

    async def close(self) -> None:
        """On the engine's loop: end the event streams, stop serving, stop the API's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            await self.on_api_loop(self._stop())
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
        await self.api.bridge.close()
        self._loop = self._thread = None

    async def _stop(self) -> None:
        self.api.close()
        if self._runner is not None:
            await self._runner.cleanup()  # waits (shutdown_timeout) for the handlers under way
            self._runner = None

    async def _get_openapi(self, request: web.Request) -> web.Response:
        return json_response(self._openapi)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path != openapi.OPENAPI_PATH:
                self._authorize(request)
            await self._after_tick()
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:
            return self._http_error(request, exc)
        except LoadmasterError as exc:
            return ApiError(400, str(exc)).response()
        except Exception:  # never a traceback to the client; the server log has it
            log.exception("API %s %s failed", request.method, request.path)
            return ApiError(500, "internal error; the loadmaster log has the details").response()

    async def _after_tick(self) -> None:
        """Let a tick under way finish first, for at most ENGINE_FIRST: the engine keeps its 1 Hz loop, and a
        request waits a few milliseconds at worst. Sleeping releases the GIL to the engine's thread."""
        deadline = time.monotonic() + ENGINE_FIRST
        while self._engine.ticking and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="loadmaster"'}
        if not header:
            raise ApiError(401, "no token: send 'Authorization: Bearer <token>' (loadmaster api-token prints one)",
                           headers=challenge)  # fmt: skip
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(401, "the Authorization header must be 'Bearer <token>'", headers=challenge)
        try:
            token = self.tokens.check(presented.strip())
        except TokenFileError as exc:
            raise ApiError(503, f"the API cannot check tokens: {exc}") from None
        if token is None:
            raise ApiError(401, "the token is not valid (rotated? loadmaster api-token prints the current one)",
                           headers=challenge)  # fmt: skip
        request[TOKEN] = token
        if request.method not in _READS:
            if self.read_only:
                raise ApiError(403, f"{request.method} {request.path}: refused, loadmaster runs with --read-only")
            if token.access is not Access.READ_WRITE:
                raise ApiError(403, f"{request.method} {request.path}: the read-only token cannot change anything; "
                               "use the read-write token (loadmaster api-token)")  # fmt: skip

    def _http_error(self, request: web.Request, exc: web.HTTPException) -> web.Response:
        if isinstance(exc, web.HTTPNotFound):
            message = f"no endpoint {request.method} {request.path}; the endpoints are listed at {openapi.OPENAPI_PATH}"
        elif isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
        elif isinstance(exc, web.HTTPRequestEntityTooLarge):
            message = f"the body is too large; the limit is {MAX_BODY} bytes"
        else:
            message = exc.text or exc.reason
        return ApiError(exc.status, message).response()
