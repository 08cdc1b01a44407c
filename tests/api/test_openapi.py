"""The OpenAPI document validates, is served without a token, and lists every route the server has."""

from __future__ import annotations

from openapi_spec_validator import validate

from .conftest import Served


async def test_openapi_validates_and_lists_every_route(api: Served) -> None:
    async with api.session.get(api.url + "/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    validate(doc)
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in api.server.app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert served == listed
    assert len(served) == 21  # with GET /v1/controller and POST /v1/leader/step-down (clustered mode)
    assert all(p.startswith("/v1/") for _, p in served)
    for method, path in served:
        op = doc["paths"][path][method.lower()]
        assert op["summary"] and op["responses"]
