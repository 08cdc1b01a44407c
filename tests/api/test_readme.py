"""The README's curl examples: every route has one, and each runs against a served API as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from core.api.table import ROUTES
from tests.sshd import require_tool

from .conftest import CLUSTER, Served

ROOT = Path(__file__).resolve().parents[2]


def examples() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-examples:.*?-->\n```sh\n(.*?)```", readme, re.S)
    assert block, "README.md has no api-examples block"
    return block.group(1).splitlines()


def test_every_route_has_a_curl_example() -> None:
    lines = [line.split("  #")[0] for line in examples() if line.startswith("curl ")]
    for route in ROUTES:
        path = re.escape(route.path.removeprefix("/v1")).replace(r"\{name\}", r"[\w-]+").replace(r"\{id\}", r"\$PLAN")
        found = re.compile(r'"\$API' + path + r'(\?[\w=&]*)?"')
        if route.method == "GET":
            hits = [line for line in lines if found.search(line) and "-X " not in line]
        else:
            hits = [line for line in lines if found.search(line) and f"-X {route.method} " in line]
        assert hits, f"README has no curl example for {route.method} {route.path}"


async def test_the_curl_examples_run(serve) -> None:
    require_tool("curl", "curl")  # fails under CI=true, where .ci/run installs it
    api: Served = await serve(CLUSTER.replace('name = "a"', 'name = "node-a"'))
    setup = [line for line in examples() if line.startswith(("API=", "AUTH="))]
    assert setup == ["API=http://127.0.0.1:7400/v1", 'AUTH="Authorization: Bearer $TOKEN"']
    env = f'TOKEN={api.rw}\nAPI={api.url}/v1\nAUTH="Authorization: Bearer $TOKEN"\n'
    plan_line = next(line for line in examples() if line.startswith("PLAN="))
    for line in examples():
        if not line.startswith("curl "):
            continue
        script = env + plan_line + "\n" + line.split("  #")[0] + " -o /dev/null -w '%{http_code}'"
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        status = out.decode()[-3:]
        if "follow=1" in line:
            assert proc.returncode == 28 and status == "200", (line, out, err)  # -m 2 ends the stream
            continue
        assert proc.returncode == 0, (line, err)
        expected = {"pending": {"200", "404"}, "step-down": {"409"}}  # not clustered: nothing to step down from
        allowed = next((v for k, v in expected.items() if k in line), {"200", "201", "202"})
        assert status in allowed, (line, status)
    writes = [e.data["request"] for e in api.engine.recent_events() if e.data.get("by") == "read-write"]
    assert "PUT /v1/services/api" in writes and "DELETE /v1/services/api" in writes
    assert writes.count("POST /v1/services/api/scale") == 2
