"""The immutable model every part of loadmaster shares.

Resources are integers (millicores, bytes, whole units of further dimensions)
because the solver works on integers and equal inputs must give equal plans.
"""

from __future__ import annotations

from core.model.config import (
    ApiSettings,
    Autoscale,
    CheckKind,
    ClusterConfig,
    HealthCheck,
    Host,
    HostKeyPolicy,
    Policy,
    Service,
    SshDefaults,
    Strategy,
)
from core.model.observed import (
    NO_TOKEN,
    Claim,
    ClaimOutcome,
    Fence,
    Health,
    HostObservation,
    HostState,
    MachineIdentity,
    ReplicaStatus,
    Token,
)
from core.model.plans import (
    Action,
    ActionKind,
    Basis,
    FailoverPlan,
    Placement,
    Plan,
    ReplicaId,
    SolverStatus,
    diff_actions,
)
from core.model.resources import CPU, MEM, Resources, total

__all__ = [
    "CPU",
    "MEM",
    "NO_TOKEN",
    "Action",
    "ActionKind",
    "ApiSettings",
    "Autoscale",
    "Basis",
    "CheckKind",
    "Claim",
    "ClaimOutcome",
    "ClusterConfig",
    "FailoverPlan",
    "Fence",
    "Health",
    "HealthCheck",
    "Host",
    "HostKeyPolicy",
    "HostObservation",
    "HostState",
    "MachineIdentity",
    "Placement",
    "Plan",
    "Policy",
    "ReplicaId",
    "ReplicaStatus",
    "Resources",
    "Service",
    "SolverStatus",
    "SshDefaults",
    "Strategy",
    "Token",
    "diff_actions",
    "total",
]
