"""The /v1 endpoints: one handler per route, and the route table the OpenAPI document is built from."""

from __future__ import annotations

import asyncio
import collections
import difflib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web

from core import desired
from core.api import views
from core.api.bridge import Bridge, Hub, Published
from core.api.document import DesiredFile, FileView
from core.api.http import ApiError, json_body, json_response, only_fields, whole_number
from core.api.leader import LeaderRoutes, Leading
from core.api.lists import RenderedLists
from core.api.stream import follow
from core.api.tokens import Token
from core.autoscale import last_decisions
from core.engine.api import Snapshot
from core.engine.engine import plan_id
from core.engine.events import EventKind
from core.errors import ConfigError, LoadmasterError, RevisionConflict, UnknownService
from core.model import Plan

log = logging.getLogger("loadmaster.api")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLANS_KEPT = 50
SERVICE_EXAMPLE = '{"command": "python3 -m http.server {port}", "replicas": 2, "cpu": "500m", "mem": "256MiB"}'
SCALE_EXAMPLE = '{"replicas": 3}'
TOKEN = web.RequestKey("token", Token)  # who is asking: set by the server's guard before any handler runs
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class ServedEngine(Leading, Protocol):
    """What the API needs of the engine beyond the console's calls."""

    read_only: bool
    ticking: bool  # a tick is under way on the engine's loop

    def check_stale(self, plan: Plan) -> list[str]: ...

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None: ...


def _flag(request: web.Request, allowed: tuple[str, ...]) -> dict[str, bool]:
    unknown = [k for k in request.query if k not in allowed]
    if unknown:
        known = ", ".join(allowed) or "none"
        raise ApiError(400, f"unknown query parameter {', '.join(unknown)} (this endpoint takes: {known})")
    out = {}
    for name in allowed:
        value = request.query.get(name, "0").lower()
        if value not in _FLAGS:
            raise ApiError(400, f"{name}={value!r} is not a flag; use {name}=1 or {name}=0")
        out[name] = _FLAGS[value]
    return out


def _etag(revision: str) -> dict[str, str]:
    return {"ETag": f'"{revision}"'} if revision else {}


def _if_match(request: web.Request) -> str | None:
    """The revision the client based its change on; None when it sent no If-Match (or `*`)."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    if "," in header:
        raise ApiError(400, "If-Match must name one revision (the ETag of the last read)")
    return header.removeprefix("W/").strip('"')


class Api(LeaderRoutes):
    """The handlers run on the API's own loop (core/api/server.py): reads from the state the engine published
    (`bridge.fresh()`), and the engine's part of a write on the engine's loop (`_on_engine`)."""

    engine: ServedEngine

    def __init__(self, engine: ServedEngine, config_path: Path, editor: desired.Editor | None = None):
        """`editor`: where writes go (clustered: the stored document, core.store.desired_doc.StoredEditor,
        whose mirror is `config_path`); the cluster file by default."""
        self.engine = engine  # touched only on the engine's loop: in what `_on_engine` runs
        self.hub = Hub()
        self.bridge = Bridge(engine, self.hub)
        self.file = DesiredFile(config_path)
        self.editor = editor or desired.FileEditor(config_path)
        self._write_lock = asyncio.Lock()  # writes and their reloads happen in revision order
        self._plans: collections.OrderedDict[str, Plan] = collections.OrderedDict()
        # plan id → approved | refused (set on the engine's loop, in that order) | rejected, of plans no longer
        # pending; each a single dict operation, which the other thread sees whole
        self._outcomes: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()  # on the engine's loop
        self.followers: set[asyncio.Task[Any]] = set()
        self.lists = RenderedLists()

    async def _on_engine(self, work: Callable[[], Awaitable[T]]) -> T:
        return await self.bridge.call(work)

    # -- reads -----------------------------------------------------------------------------

    async def get_hosts(self, request: web.Request) -> web.Response:
        state = await self.bridge.fresh()

        def gather() -> Callable[[], Any]:
            snap = state.snap
            return lambda: {"at": snap.at, "hosts": views.hosts(snap)}

        body = await self.lists.body("hosts", "", state.seq, gather)
        return web.Response(body=body, content_type="application/json")

    async def get_host(self, request: web.Request) -> web.Response:
        snap, name = (await self.bridge.fresh()).snap, request.match_info["name"]
        obs = snap.hosts.get(name)
        if obs is None:
            raise ApiError(404, f'no host "{name}" in {snap.config.source}', hint=_near(name, snap.hosts))
        return json_response(views.host(snap, obs))

    @staticmethod
    def _services(
        state: Published, file: FileView, only: str | None = None
    ) -> Callable[[], tuple[str, list[dict[str, Any]], tuple[str, ...], list[str]]]:
        """Desired services from the `file` (its revision with them), run-time state from the engine's `state`:
        rendered by the function returned (pure: it may run in a thread).

        It returns the revision, the service documents (just `only` when given), the file's problems
        and every declared name.
        """
        snap = state.snap
        declared = file.config.services if file.config else snap.config.services
        chosen = tuple(s for s in declared if only is None or s.name == only)
        events = state.events if any(s.autoscale for s in chosen) else ()

        def render() -> tuple[str, list[dict[str, Any]], tuple[str, ...], list[str]]:
            decisions = {name: e.message for name, e in last_decisions(events).items()}
            documents = views.services(snap, chosen, file.definitions, decisions)
            return file.revision, documents, file.problems, [s.name for s in declared]

        return render

    async def get_services(self, request: web.Request) -> web.Response:
        state, file = await self.bridge.fresh(), await self.file.view()
        revision = file.revision

        def gather() -> Callable[[], Any]:
            services = self._services(state, file)

            def render() -> dict[str, Any]:
                revision, documents, problems, _ = services()
                doc: dict[str, Any] = {"revision": revision, "services": documents}
                if problems:
                    doc["file_problems"] = list(problems)  # shown from the config in force until the file is fixed
                return doc

            return render

        body = await self.lists.body("services", revision, state.seq, gather)
        return web.Response(body=body, content_type="application/json", headers=_etag(revision))

    async def get_service(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        revision, services, _, names = self._services(await self.bridge.fresh(), await self.file.view(), name)()
        if not services:
            raise ApiError(404, f'no service "{name}"', hint=_near(name, names))
        return json_response({"revision": revision, **services[0]}, headers=_etag(revision))

    async def get_pending(self, request: web.Request) -> web.Response:
        snap = (await self.bridge.fresh()).snap
        if snap.pending is None:
            raise ApiError(404, "no plan is pending; POST /v1/plans computes one")
        pid = self._remember(snap.pending)
        return json_response(views.plan(snap, snap.pending, pid, "pending"))

    async def get_plan(self, request: web.Request) -> web.Response:
        snap, pid = (await self.bridge.fresh()).snap, request.match_info["id"]
        plan = self._find(snap, pid)
        return json_response(views.plan(snap, plan, pid, self._status(snap, pid)))

    async def get_failover(self, request: web.Request) -> web.Response:
        return json_response(views.failover((await self.bridge.fresh()).snap))

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        if _flag(request, ("follow",))["follow"]:
            return await follow(self.hub, request, self.followers)
        return json_response({"events": [e.as_json() for e in (await self.bridge.fresh()).events]})

    # -- writes of the desired-state document --------------------------------------------

    async def _change(
        self, request: web.Request, what: str, change: Callable[[str | None], desired.Document]
    ) -> desired.Document:
        """Run one change of cluster.toml (in a thread: it reads and writes files), reload, journal."""
        expect = _if_match(request)
        async with self._write_lock:
            try:
                doc = await asyncio.to_thread(change, expect)
            except RevisionConflict as exc:
                raise ApiError(
                    409, str(exc), headers=_etag(exc.current), revision=exc.current, expected=exc.expected
                ) from None
            except ConfigError as exc:
                problems = [str(p) for p in exc.problems]
                message = f"{what}: refused, {len(problems)} problem(s) in the result"
                raise ApiError(422, message, problems=problems) from None
            except UnknownService as exc:
                raise ApiError(404, str(exc), services=exc.known) from None
            said = self._said(request, what, revision=doc.revision)

            async def adopt() -> None:
                # a change asked for with a token: meant as asked; the revision: the file watch need not adopt it
                self.engine.reload(doc.config, guarded=False, revision=doc.revision)
                self._journal(said)

            await self._on_engine(adopt)
        return doc

    async def put_service(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await json_body(request, SERVICE_EXAMPLE)
        editor = self.editor
        created = False

        def change(expect: str | None) -> desired.Document:
            nonlocal created
            doc, created = desired.put_service(editor, name, body, expect=expect)
            return doc

        doc = await self._change(request, f"put service {name}", change)
        service = doc.config.service(name)
        return json_response(
            {"service": name, "created": created, "replicas": service.replicas, "revision": doc.revision},
            201 if created else 200,
            _etag(doc.revision),
        )

    async def delete_service(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        editor = self.editor
        doc = await self._change(
            request, f"delete service {name}", lambda e: desired.delete_service(editor, name, expect=e)
        )
        return json_response({"service": name, "deleted": True, "revision": doc.revision}, headers=_etag(doc.revision))

    async def scale_service(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await json_body(request, SCALE_EXAMPLE)
        only_fields(body, ("replicas",))
        replicas = whole_number(body, "replicas")
        editor = self.editor
        before = await self.file.view()
        old = next((s.replicas for s in before.config.services if s.name == name), None) if before.config else None
        doc = await self._change(
            request, f"scale {name} to {replicas}", lambda e: desired.scale(editor, name, replicas, expect=e)
        )
        return json_response(
            {"service": name, "replicas": replicas, "previous": old, "revision": doc.revision},
            headers=_etag(doc.revision),
        )

    async def reload(self, request: web.Request) -> web.Response:
        _flag(request, ())
        try:
            doc = await asyncio.to_thread(self.editor.read)
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
            raise ApiError(422, "the file is invalid; the configuration in force stays", problems=problems) from None
        said = self._said(request, "reload", revision=doc.revision)

        async def adopt() -> None:
            self.engine.reload(doc.config)
            self._journal(said)

        async with self._write_lock:
            await self._on_engine(adopt)
        cfg = doc.config
        return json_response(
            {"revision": doc.revision, "hosts": len(cfg.hosts), "services": len(cfg.services)},
            headers=_etag(doc.revision),
        )

    # -- plans ---------------------------------------------------------------------------------

    async def post_plan(self, request: web.Request) -> web.Response:
        repack = _flag(request, ("repack",))["repack"]

        async def compute() -> Plan:
            return await self.engine.plan(repack=repack)

        try:
            plan = await self._on_engine(compute)
        except LoadmasterError as exc:
            raise ApiError(422, f"cannot plan: {exc}") from None
        pid = self._remember(plan)
        said = self._said(request, f"plan {pid} computed" + (" (repack)" if repack else ""))

        async def journal() -> None:
            self._journal(said)

        await self._on_engine(journal)
        snap = self.bridge.state.snap
        return json_response(views.plan(snap, plan, pid, self._status(snap, pid)), 201)

    async def approve_plan(self, request: web.Request) -> web.Response:
        pid = request.match_info["id"]
        snap = (await self.bridge.fresh()).snap
        plan = self._find(snap, pid)
        status = self._status(snap, pid)
        if status not in ("pending", "superseded"):  # a superseded plan may still fit: staleness decides
            raise ApiError(409, f"plan {pid} is {status} already; compute a new one with POST /v1/plans",
                           reasons=[f"the plan is {status}"])  # fmt: skip
        said = self._said(request, f"plan {pid} approved")

        async def approve() -> list[str]:
            reasons = self.engine.check_stale(plan)
            if reasons:
                return reasons
            self._outcomes[pid] = "approved"
            self._journal(said)
            self._spawn(self._apply(plan, pid), f"api-approve-{pid}")
            await asyncio.sleep(0)  # let the engine take the plan before the answer says "applying"
            return []

        reasons = await self._on_engine(approve)
        if reasons:
            raise ApiError(409, f"plan {pid} is stale: " + "; ".join(reasons), reasons=reasons)
        return json_response({"id": pid, "status": "applying", "actions": len(plan.actions)}, 202)

    async def _apply(self, plan: Plan, pid: str) -> None:
        try:
            await self.engine.approve(plan)
        except LoadmasterError as exc:  # e.g. StalePlan: the fleet moved between the check and the start
            # Nobody awaits this task: the outcome goes to the plan's status and the event stream.
            self._outcomes[pid] = "refused"
            self.engine.record(EventKind.API_WRITE, f"plan {pid} was not applied: {exc}", data={"plan": pid})

    async def reject_plan(self, request: web.Request) -> web.Response:
        pid = request.match_info["id"]
        plan = self._find((await self.bridge.fresh()).snap, pid)
        said = self._said(request, f"plan {pid} rejected")

        async def reject() -> None:
            await self.engine.reject(plan)
            self._outcomes[pid] = "rejected"
            self._journal(said)

        await self._on_engine(reject)
        return json_response({"id": pid, "status": "rejected"})

    async def hold_host(self, request: web.Request) -> web.Response:
        _flag(request, ())
        snap, name = (await self.bridge.fresh()).snap, request.match_info["name"]
        if name not in snap.hosts:
            raise ApiError(404, f'no host "{name}" in {snap.config.source}', hint=_near(name, snap.hosts))
        what = request.path.rsplit("/", 1)[-1]
        said = self._said(request, f"{what} {name}")

        async def hold() -> None:
            self._journal(said)
            if what == "drain":  # the moves may take minutes: answered at once, followed in the events
                self._spawn(self._drain(name), f"api-drain-{name}")
                await asyncio.sleep(0)  # the hold is set before the answer says so
            else:
                await (self.engine.cordon if what == "cordon" else self.engine.uncordon)(name)

        await self._on_engine(hold)
        if what == "drain":
            return json_response({"host": name, "hold": "draining"}, 202)
        return json_response({"host": name, "hold": self.bridge.state.snap.holds.get(name)})

    async def _drain(self, host: str) -> None:
        try:
            await self.engine.drain(host)
        except LoadmasterError as exc:  # nobody awaits this task: the outcome goes to the event stream
            self.engine.record(EventKind.API_WRITE, f"drain {host} failed: {exc}", data={"host": host})

    # -- helpers ---------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """On the engine's loop: work that runs on after the answer (an approved plan, a drain)."""
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _remember(self, plan: Plan) -> str:
        pid = plan_id(plan)
        self._plans[pid] = plan
        self._plans.move_to_end(pid)
        while len(self._plans) > PLANS_KEPT:
            old, _ = self._plans.popitem(last=False)
            self._outcomes.pop(old, None)
        return pid

    def _find(self, snap: Snapshot, pid: str) -> Plan:
        for plan in (snap.pending, snap.applying.plan if snap.applying else None):
            if plan is not None and plan_id(plan) == pid:
                self._remember(plan)
        if pid not in self._plans:
            raise ApiError(404, f"no plan {pid} (the API keeps the last {PLANS_KEPT}); GET /v1/plans/pending")
        return self._plans[pid]

    def _status(self, snap: Snapshot, pid: str) -> str:
        if snap.applying is not None and plan_id(snap.applying.plan) == pid:
            if not snap.applying.finished:
                return "applying"
            return "failed" if snap.applying.failed else "applied"
        if snap.pending is not None and plan_id(snap.pending) == pid:
            return "pending"
        return self._outcomes.get(pid, "superseded")

    def _said(self, request: web.Request, what: str, **data: object) -> tuple[str, dict[str, object]]:
        """The api.write event of a change: what, and which token asked (read from the request on the API's loop)."""
        token = request[TOKEN]
        message = f'{what} (by token "{token.name}" through the API)'
        return message, {"by": token.name, "request": f"{request.method} {request.path}", **data}

    def _journal(self, said: tuple[str, dict[str, object]]) -> None:
        """On the engine's loop: journal and stream a change made through the API."""
        self.engine.record(EventKind.API_WRITE, said[0], data=said[1])

    def close(self) -> None:
        """End the event streams; an approved plan being applied is left to the engine to finish."""
        for task in self.followers:
            task.cancel()


def _near(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"did you mean {', '.join(close)}?" if close else ""
