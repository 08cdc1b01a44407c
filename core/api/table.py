"""The /v1 route table: method, path, the Api handler's name and what the OpenAPI document says of each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: str  # name of the Api method
    summary: str
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of boolean flags
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    responses: Mapping[int, str] = field(default_factory=dict)

    @property
    def write(self) -> bool:
        return self.method != "GET"


_SERVICE_SCHEMA = {
    "type": "object",
    "description": "The service's keys as in a [[services]] table of cluster.toml; validated like the file.",
    "properties": {
        "command": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 0},
        "cpu": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "mem": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "resources": {"type": "object"},
        "max_per_host": {"type": "integer", "minimum": 1},
        "spread_over": {"type": "string"},
        "require": {"type": "object", "additionalProperties": {"type": "string"}},
        "avoid": {"type": "array", "items": {"type": "string"}},
        "priority": {"type": "integer"},
        "min_healthy": {"type": "integer", "minimum": 0},
        "autoscale": {
            "type": "object",
            "properties": {
                "min": {"type": "integer"},
                "max": {"type": "integer"},
                "cpu_target": {"type": "number"},
                "window": {},
                "scale_down_window": {},
            },
        },
    },
}
_WRITE = {400: "bad body", 401: "no or wrong token", 403: "read-only token or --read-only", 409: "revision changed"}
_FILE_WRITE = {**_WRITE, 404: "no such service", 422: "the file would be invalid (every problem listed)"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/hosts", "get_hosts", "Every host: state, capacity, usage, replicas"),
    Route("GET", "/v1/hosts/{name}", "get_host", "One host", responses={404: "no such host"}),
    Route(
        "POST", "/v1/hosts/{name}/drain", "hold_host",
        "Drain a host: it takes no new replicas and its replicas move off (202: the moves run on)",
        responses={**_WRITE, 202: "draining", 404: "no such host"},
    ),
    Route("POST", "/v1/hosts/{name}/cordon", "hold_host", "Cordon a host: it takes no new replicas",
          responses={**_WRITE, 404: "no such host"}),
    Route("POST", "/v1/hosts/{name}/uncordon", "hold_host", "Lift a cordon or drain: the host takes replicas again",
          responses={**_WRITE, 404: "no such host"}),
    Route("GET", "/v1/services", "get_services", "Every service: desired replicas, where they run, health"),
    Route("GET", "/v1/services/{name}", "get_service", "One service", responses={404: "no such service"}),
    Route(
        "PUT", "/v1/services/{name}", "put_service", "Create or replace a service definition",
        body=_SERVICE_SCHEMA, responses={**_FILE_WRITE, 201: "created"},
    ),
    Route("DELETE", "/v1/services/{name}", "delete_service", "Remove a service", responses=_FILE_WRITE),
    Route(
        "POST", "/v1/services/{name}/scale", "scale_service", "Set a service's replicas",
        body={"type": "object", "required": ["replicas"], "additionalProperties": False,
              "properties": {"replicas": {"type": "integer", "minimum": 0}}},
        responses=_FILE_WRITE,
    ),
    Route("GET", "/v1/plans/pending", "get_pending", "The plan waiting for approval", responses={404: "none"}),
    Route("GET", "/v1/plans/{id}", "get_plan", "A plan by id, with its status", responses={404: "unknown id"}),
    Route(
        "POST", "/v1/plans", "post_plan", "Compute a plan and make it the pending one",
        query=(("repack", "1: fewest hosts before fewest moves"),), responses={**_WRITE, 201: "computed"},
    ),
    Route(
        "POST", "/v1/plans/{id}/approve", "approve_plan", "Approve and apply a plan",
        responses={**_WRITE, 202: "applying", 404: "unknown id", 409: "stale or not pending (reasons listed)"},
    ),
    Route("POST", "/v1/plans/{id}/reject", "reject_plan", "Reject a plan", responses={**_WRITE, 404: "unknown id"}),
    Route("GET", "/v1/failover", "get_failover", "The failover plan of every host and zone"),
    Route(
        "GET", "/v1/events", "get_events", "Recent events; with follow=1 a server-sent event stream",
        query=(("follow", "1: stream events as server-sent events (text/event-stream)"),),
    ),
    Route("POST", "/v1/reload", "reload", "Re-read cluster.toml", responses={**_WRITE, 422: "the file is invalid"}),
    Route("GET", "/v1/controller", "get_controller", "Who acts: leader, or standby (leader: <id>)"),
    Route("POST", "/v1/leader/step-down", "step_down", "Clustered mode: this daemon gives up the lead",
          responses={**_WRITE, 409: "not clustered, or not the leader"}),
)  # fmt: skip
