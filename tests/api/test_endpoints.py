"""Every /v1 endpoint through a real HTTP client against a real server on loopback."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

import aiohttp

from core import config as config_io
from core import desired
from core.engine.events import EventKind
from core.errors import ConfigError, StalePlan

from .conftest import CLUSTER, Served, until


async def test_hosts(api: Served) -> None:
    status, doc, _ = await api.call("GET", "/v1/hosts")
    assert status == 200
    assert [h["name"] for h in doc["hosts"]] == ["a", "b", "c"]
    a = doc["hosts"][0]
    assert a["state"] == "up" and a["labels"] == {"zone": "z1"} and a["capacity"] == {"cpu": 4000, "mem": 8 << 30}
    status, one, _ = await api.call("GET", "/v1/hosts/b")
    assert status == 200 and one["name"] == "b" and one["address"] == "10.0.0.2"
    status, err, _ = await api.call("GET", "/v1/hosts/bb")
    assert status == 404 and 'no host "bb"' in err["error"] and "b" in err["hint"]


async def test_services_carry_the_file_revision_and_where_replicas_run(api: Served) -> None:
    status, doc, headers = await api.call("GET", "/v1/services")
    revision = desired.revision_of(api.path.read_bytes())
    assert status == 200 and doc["revision"] == revision and headers["ETag"] == f'"{revision}"'
    web = next(s for s in doc["services"] if s["name"] == "web")
    assert web["replicas"] == 3 and web["running"] == 0 and web["health"] == "down"
    assert web["definition"] == {"name": "web", "command": "sleep 1000", "replicas": 3, "cpu": "100m",
                                 "mem": "64MiB", "min_healthy": 1}  # fmt: skip
    await api.engine.approve(api.engine.snapshot().pending or await api.engine.plan())
    status, one, headers = await api.call("GET", "/v1/services/web")
    assert status == 200 and one["running"] == 3 and one["health"] == "healthy"
    assert set(one["where"]) == {"web/0", "web/1", "web/2"} and set(one["where"].values()) <= {"a", "b", "c"}
    assert one["revision"] == revision
    _, listed, _ = await api.call("GET", "/v1/services")  # the list rendered before is not served again
    assert next(s for s in listed["services"] if s["name"] == "web")["where"] == one["where"]
    status, err, _ = await api.call("GET", "/v1/services/wbe")
    assert status == 404 and "web" in err["hint"]


async def test_scale_writes_the_file_reloads_the_engine_and_journals_who(api: Served) -> None:
    status, doc, _ = await api.call("POST", "/v1/services/web/scale", json={"replicas": 5})
    assert status == 200, doc
    revision = desired.revision_of(api.path.read_bytes())
    assert doc == {"service": "web", "replicas": 5, "previous": 3, "revision": revision}
    text = api.path.read_text(encoding="utf-8")
    assert "replicas = 5   # the front end" in text and text.startswith("# The API test cluster")
    assert api.engine.snapshot().config.service("web").replicas == 5
    write = [e for e in api.engine.recent_events() if e.kind is EventKind.API_WRITE]
    assert write[-1].data["by"] == "read-write" and write[-1].data["request"] == "POST /v1/services/web/scale"
    assert "scale web to 5" in write[-1].message
    journal = sqlite3.connect(api.engine._journal.path).execute("SELECT doc FROM events").fetchall()
    docs = [json.loads(d) for (d,) in journal]
    assert any(d["event"] == "api.write" and d["by"] == "read-write" for d in docs)
    assert not any(api.rw in d or api.ro in d for (d,) in journal)  # no secret in the journal


async def test_a_stale_if_match_is_refused_with_the_current_revision(api: Served) -> None:
    _, _, headers = await api.call("GET", "/v1/services/web")
    old = headers["ETag"]
    status, _, _ = await api.call("POST", "/v1/services/web/scale", json={"replicas": 4}, headers={"If-Match": old})
    assert status == 200
    status, err, headers = await api.call(
        "POST", "/v1/services/web/scale", json={"replicas": 6}, headers={"If-Match": old}
    )
    current = desired.revision_of(api.path.read_bytes())
    assert status == 409 and err["revision"] == current and headers["ETag"] == f'"{current}"'
    assert config_io.load(api.path).service("web").replicas == 4


async def test_fifty_concurrent_scale_calls_retry_and_lose_nothing(api: Served) -> None:
    conflicts = 0

    async def add_one() -> None:
        nonlocal conflicts
        while True:
            _, doc, headers = await api.call("GET", "/v1/services/web")
            status, body, _ = await api.call(
                "POST", "/v1/services/web/scale", json={"replicas": doc["replicas"] + 1},
                headers={"If-Match": headers["ETag"]},
            )  # fmt: skip
            if status == 200:
                return
            assert status == 409 and body["revision"], body
            conflicts += 1

    await asyncio.gather(*(add_one() for _ in range(50)))
    assert config_io.load(api.path).service("web").replicas == 3 + 50
    assert api.engine.snapshot().config.service("web").replicas == 3 + 50  # reloads happened in order
    assert conflicts > 0
    assert sum(e.kind is EventKind.API_WRITE for e in api.engine.recent_events()) == 50


async def test_put_creates_replaces_and_validates_like_the_file(api: Served) -> None:
    body = {"command": "run api", "replicas": 2, "cpu": "250m", "mem": "128MiB", "require": {"zone": "z1"}}
    status, doc, _ = await api.call("PUT", "/v1/services/api", json=body)
    assert status == 201 and doc["created"] and doc["replicas"] == 2
    status, one, _ = await api.call("GET", "/v1/services/api")
    assert one["definition"]["require"] == {"zone": "z1"} and one["replicas"] == 2
    assert api.engine.snapshot().config.service("api").resources.cpu == 250
    status, doc, _ = await api.call("PUT", "/v1/services/api", json={**body, "replicas": 1})
    assert status == 200 and not doc["created"]
    bad = {"command": "x", "cpu": "lots", "mem": "12XB", "colour": "red", "require": {"zone": "z9"}}
    status, err, _ = await api.call("PUT", "/v1/services/bad", json=bad)
    assert status == 422
    # the very texts `loadmaster validate` prints for the same file
    toml = (
        '\n[[services]]\nname = "bad"\ncommand = "x"\ncpu = "lots"\nmem = "12XB"\ncolour = "red"\n'
        'require = { zone = "z9" }\n'
    )
    try:
        config_io.parse(api.path.read_text(encoding="utf-8") + toml, str(api.path))
    except ConfigError as exc:
        assert err["problems"] == [str(p) for p in exc.problems]
    assert len(err["problems"]) == 4 and any("colour is not a known key" in p for p in err["problems"])
    nulled = {"command": "x", "cpu": 1, "mem": "1GiB", "priority": None}
    status, err, _ = await api.call("PUT", "/v1/services/x", json=nulled)
    assert status == 422 and "priority is null" in err["problems"][0]


async def test_delete(api: Served) -> None:
    status, doc, _ = await api.call("DELETE", "/v1/services/db")
    assert status == 200 and doc["deleted"]
    assert [s.name for s in api.engine.snapshot().config.services] == ["web"]
    status, err, _ = await api.call("DELETE", "/v1/services/db")
    assert status == 404 and err["services"] == ["web"]
    assert "this comment must survive every write" in api.path.read_text(encoding="utf-8")


async def test_plans_compute_approve_reject_and_stale(api: Served) -> None:
    status, plan, _ = await api.call("POST", "/v1/plans")
    assert status == 201 and plan["status"] == "pending" and plan["schema"] == "loadmaster.plan/1"
    assert {a["replica"] for a in plan["actions"]} == {"web/0", "web/1", "web/2", "db/0"}
    status, pending, _ = await api.call("GET", "/v1/plans/pending")
    assert status == 200 and pending["id"] == plan["id"]
    status, accepted, _ = await api.call("POST", f"/v1/plans/{plan['id']}/approve")
    assert status == 202 and accepted["status"] == "applying"
    await until(lambda: len(api.fleet.running()) == 4)
    await until(lambda: api.engine.snapshot().applying is not None and api.engine.snapshot().applying.finished)
    status, done, _ = await api.call("GET", f"/v1/plans/{plan['id']}")
    assert status == 200 and done["status"] == "applied"
    status, err, _ = await api.call("POST", f"/v1/plans/{plan['id']}/approve")
    assert status == 409 and err["reasons"] == ["the plan is applied"]

    status, repack, _ = await api.call("POST", "/v1/plans?repack=1")
    assert status == 201 and repack["reason"] == "repack"
    status, _, _ = await api.call("POST", "/v1/services/web/scale", json={"replicas": 4})  # the file moves on
    status, err, _ = await api.call("POST", f"/v1/plans/{repack['id']}/approve")
    assert status == 409 and "stale" in err["error"]
    assert err["reasons"] == ["web has 4 replicas in the cluster file, the plan assumed 3"]
    status, rejected, _ = await api.call("POST", f"/v1/plans/{repack['id']}/reject")
    assert status == 200 and rejected["status"] == "rejected"
    status, err, _ = await api.call("GET", "/v1/plans/0123456789abcdef")
    assert status == 404


async def test_failover_and_events(api: Served) -> None:
    await api.engine.approve(api.engine.snapshot().pending or await api.engine.plan())
    await api.engine.wait_failover()
    status, doc, _ = await api.call("GET", "/v1/failover")
    assert status == 200 and doc["schema"] == "loadmaster.failover/1"
    assert {(p["scope"], p["target"]) for p in doc["plans"]} >= {("host", "a"), ("host", "b"), ("host", "c")}
    status, events, _ = await api.call("GET", "/v1/events")
    assert status == 200
    assert {"plan.approved", "apply.finished"} <= {e["event"] for e in events["events"]}
    assert events["events"] == [e.as_json() for e in api.engine.recent_events()]


async def test_reload(api: Served) -> None:
    api.path.write_text(CLUSTER.replace("replicas = 3", "replicas = 2"), encoding="utf-8")
    status, doc, _ = await api.call("POST", "/v1/reload")
    assert status == 200 and doc["services"] == 2
    assert api.engine.snapshot().config.service("web").replicas == 2
    api.path.write_text(CLUSTER.replace('cpu = "100m"', 'cpu = "lots"'), encoding="utf-8")
    status, err, _ = await api.call("POST", "/v1/reload")
    assert status == 422 and len(err["problems"]) == 1 and 'services "web": cpu' in err["problems"][0]
    assert api.engine.snapshot().config.service("web").replicas == 2  # the old config stays in force
    status, doc, _ = await api.call("GET", "/v1/services")
    assert doc["file_problems"] == err["problems"]


async def test_cordon_drain_and_uncordon_hold_a_host_and_journal_who(api: Served) -> None:
    await api.engine.approve(api.engine.snapshot().pending or await api.engine.plan())
    status, doc, _ = await api.call("POST", "/v1/hosts/a/cordon")
    assert status == 200 and doc == {"host": "a", "hold": "cordoned"}
    status, doc, _ = await api.call("POST", "/v1/hosts/b/drain")
    assert status == 202 and doc == {"host": "b", "hold": "draining"}
    await until(lambda: api.engine.snapshot().holds.get("b") == "drained")
    assert not api.engine.snapshot().placement.on_host("b")
    status, doc, _ = await api.call("POST", "/v1/hosts/a/uncordon")
    assert status == 200 and doc == {"host": "a", "hold": None}
    status, err, _ = await api.call("POST", "/v1/hosts/zz/cordon")
    assert status == 404 and 'no host "zz"' in err["error"]
    writes = [e.data["request"] for e in api.engine.recent_events() if e.kind is EventKind.API_WRITE]
    assert writes[-3:] == ["POST /v1/hosts/a/cordon", "POST /v1/hosts/b/drain", "POST /v1/hosts/a/uncordon"]


async def test_events_follow_streams_what_the_headless_log_prints(api: Served) -> None:
    async with api.session.get(api.url + "/v1/events?follow=1", headers=api.headers(api.ro)) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        assert (await resp.content.readline()).startswith(b": following")
        await api.call("POST", "/v1/services/web/scale", json={"replicas": 4})
        got: list[dict] = []
        while not any(d["event"] == "api.write" for d in got):
            line = (await asyncio.wait_for(resp.content.readline(), 5)).decode()
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
        recent = [e.as_json() for e in api.engine.recent_events()]
        end = recent.index(got[-1]) + 1  # the engine may have said more since (a plan for the new count)
        assert got == recent[end - len(got) : end]  # the same documents, in the same order, as the JSON lines
        assert {"config.reloaded", "api.write"} <= {d["event"] for d in got}
        assert "state.updated" not in {d["event"] for d in got}
    await until(lambda: not api.server.api.followers)  # the follower is gone once the client leaves


async def test_the_api_module_imports_no_textual() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, core.api.server; print('textual' in sys.modules)",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert out.decode().strip() == "False"


async def test_a_follower_that_never_reads_holds_neither_the_engine_nor_other_clients(api: Served) -> None:
    _, writer = await asyncio.open_connection(*api.url.removeprefix("http://").split(":"))
    writer.write(f"GET /v1/events?follow=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.ro}\r\n\r\n".encode())
    await writer.drain()
    await until(lambda: len(api.server.api.followers) == 1)
    for i in range(300):  # ~20 MB of events: far more than the socket buffers hold
        api.engine.record(EventKind.API_WRITE, f"filler {i} " + "x" * 65_000)
        if i % 50 == 0:
            await asyncio.sleep(0)
    ticks = 0
    queue = api.engine.subscribe()
    status, _, _ = await asyncio.wait_for(api.call("POST", "/v1/services/web/scale", json={"replicas": 4}), 5)
    assert status == 200
    while ticks < 3:  # the engine keeps ticking
        ticks += (await asyncio.wait_for(queue.get(), 5)).kind is EventKind.STATE_UPDATED
    writer.close()


async def test_unknown_endpoint_and_method_are_json(api: Served) -> None:
    status, err, _ = await api.call("GET", "/v1/nope")
    assert status == 404 and "/v1/openapi.json" in err["error"]
    status, err, _ = await api.call("PATCH", "/v1/services/web")
    assert status == 405 and "allowed" in err["error"]
    async with aiohttp.ClientSession() as plain, plain.get(api.url + "/v1/openapi.json") as resp:
        assert resp.status == 200  # the document needs no token


async def test_autoscale_through_the_api(api: Served) -> None:
    body = {"command": "x", "replicas": 2, "cpu": "100m", "mem": "64MiB",
            "autoscale": {"min": 2, "max": 5, "cpu_target": 0.6}}  # fmt: skip
    status, doc, _ = await api.call("PUT", "/v1/services/api", json=body)
    assert status == 201, doc
    assert "autoscale = {min = 2, max = 5, cpu_target = 0.6}" in api.path.read_text(encoding="utf-8")
    status, one, _ = await api.call("GET", "/v1/services/api")
    assert one["autoscale"] == {"min": 2, "max": 5, "cpu_target": 0.6, "cpu_ratio": None, "last_decision": None}
    api.engine.record(EventKind.AUTOSCALE_UP, "autoscale.up api 2→3: cpu 0.90 of requested, target 0.6",
                      data={"service": "api", "from": 2, "to": 3})  # fmt: skip
    status, one, _ = await api.call("GET", "/v1/services/api")
    assert one["autoscale"]["last_decision"] == "autoscale.up api 2→3: cpu 0.90 of requested, target 0.6"
    status, err, _ = await api.call("PUT", "/v1/services/api", json={**body, "autoscale": {"min": 3, "max": 2}})
    assert status == 422 and any("autoscale.cpu_target is required" in p for p in err["problems"])


async def test_an_approval_refused_after_the_answer_is_reported(api: Served, monkeypatch) -> None:
    status, plan, _ = await api.call("POST", "/v1/plans")

    async def refuse(_plan) -> None:
        raise StalePlan(["h1 went down meanwhile"])

    monkeypatch.setattr(api.engine, "approve", refuse)
    status, _, _ = await api.call("POST", f"/v1/plans/{plan['id']}/approve")
    assert status == 202
    await until(lambda: any("was not applied" in e.message for e in api.engine.recent_events()))
    status, now, _ = await api.call("GET", f"/v1/plans/{plan['id']}")
    assert now["status"] in ("refused", "pending")  # the engine may still hold it as its pending plan
    event = next(e for e in api.engine.recent_events() if "was not applied" in e.message)
    assert "h1 went down meanwhile" in event.message and event.data["plan"] == plan["id"]
