"""Why replicas are left unplaced, in words an operator can act on.

Pre-checks find the common causes directly (nothing matches `require`, too few hosts
for `max_per_host`, a dimension short cluster-wide, `avoid` blocking every host with
room). When none applies, a CP-SAT feasibility model asks for every service in full
under one assumption literal each; `sufficient_assumptions_for_infeasibility` then names
a set of services that cannot all be placed together.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from core.model import CPU, MEM
from core.optimizer.compiled import Compiled, Counts, loads
from core.optimizer.cpsat import DETERMINISTIC_PER_SECOND, Budget, CountsModel, model_size, run
from core.units import human_cpu, human_size

MAX_CORE_VARS = 100_000
CORE_SECONDS = 0.5 / DETERMINISTIC_PER_SECOND  # of search for an infeasible core (0.5 deterministic units)


def amount(dim: str, value: int) -> str:
    if dim == CPU:
        return f"{human_cpu(value)} cores"
    if dim == MEM:
        return human_size(value)
    return f"{value} {dim}"


def _require_text(c: Compiled, s: int) -> str:
    req = c.problem.services[s].require
    return "require={" + ", ".join(f'{k}="{v}"' for k, v in sorted(req.items())) + "}"


def explain(c: Compiled, x: Counts, *, seconds: float = CORE_SECONDS, seed: int = 0) -> dict[int, str]:
    """A reason for each service s that has fewer replicas placed in `x` than it asks for."""
    short = [s for s in range(c.n_services) if sum(x[s]) < c.replicas[s]]
    reasons: dict[int, str] = {}
    for s in short:
        reason = _precheck(c, x, s)
        if reason:
            reasons[s] = reason
    rest = [s for s in short if s not in reasons]
    if rest:
        reasons.update(_core_reasons(c, rest, seconds=seconds, seed=seed))
    return reasons


def _precheck(c: Compiled, x: Counts, s: int) -> str | None:
    service = c.problem.services[s]
    hosts = c.problem.hosts
    name = service.name
    if not any(c.takes_new):
        states = sorted({h.state.value for h in hosts})
        return f"no host accepts new replicas (hosts are {', '.join(states) or 'none'})"
    matching = [h for h in range(c.n_hosts) if c.matches[s][h]]
    if service.require and not matching:
        return f"{name} has {_require_text(c, s)} but no host has those labels"
    live = [h for h in matching if c.takes_new[h] or c.cur[s][h]]
    if service.require and not live:
        names = ", ".join(hosts[h].name for h in matching)
        return f"{name} has {_require_text(c, s)}; the hosts that match ({names}) take no new replicas"
    if service.spread_over:
        labelled = [h for h in live if service.spread_over in hosts[h].labels]
        if not labelled:
            return f'{name} spreads over "{service.spread_over}" but no usable host has that label'
    big_enough = [h for h in live if c.ub[s][h] > 0 or all(c.demand[s][d] <= c.cap[h][d] for d in range(len(c.dims)))]
    if not big_enough:
        for d, dim in enumerate(c.dims):
            largest = max((c.cap[h][d] for h in live), default=0)
            if c.demand[s][d] > largest:
                return (
                    f"{name} needs {amount(dim, c.demand[s][d])} per replica "
                    f"but the largest host it may use has {amount(dim, largest)}"
                )
    eligible = [h for h in range(c.n_hosts) if c.ub[s][h] > 0]
    if service.max_per_host is not None:
        room = sum(c.ub[s][h] for h in eligible)
        if room < c.replicas[s]:
            need = -(-c.replicas[s] // service.max_per_host)
            where = f"match {_require_text(c, s)}" if service.require else "are up with room for one replica"
            return (
                f"{name} needs {need} hosts with max_per_host={service.max_per_host} "
                f"but only {len(eligible)} hosts {where}"
            )
    usable = [h for h in range(c.n_hosts) if c.takes_new[h] or any(c.cur[t][h] for t in range(c.n_services))]
    for d, dim in enumerate(c.dims):
        need = sum(c.demand[t][d] * c.replicas[t] for t in range(c.n_services))
        have = sum(c.cap[h][d] for h in usable)
        if need > have:
            return f"{dim} short by {amount(dim, need - have)} cluster-wide"
    for d, dim in enumerate(c.dims):
        need = c.demand[s][d] * c.replicas[s]
        have = sum(c.cap[h][d] for h in eligible)
        if need > have:
            return (
                f"{name} needs {amount(dim, need)} in total "
                f"but the {len(eligible)} hosts it may use have {amount(dim, have)}"
            )
    avoided = sorted(c.conflicts[s])
    if avoided:
        load = loads(c, x)
        with_room = [
            h
            for h in eligible
            if x[s][h] < c.ub[s][h] and all(load[h][d] + c.demand[s][d] <= c.cap[h][d] for d in range(len(c.dims)))
        ]
        blockers = {t for h in with_room for t in avoided if x[t][h]}
        if with_room and all(any(x[t][h] for t in avoided) for h in with_room):
            names = " or ".join(sorted(c.problem.services[t].name for t in blockers))
            return f"{name} avoids {names} and every host with room runs {names}"
    return None


def _core_reasons(c: Compiled, short: list[int], *, seconds: float, seed: int) -> dict[int, str]:
    """Ask for every service in full under assumptions; the infeasible core names the culprits.

    Skipped for fleets whose model would be too large to build quickly (the plain reason remains).
    """
    core: list[int] = []
    if model_size(c, range(c.n_hosts)) <= MAX_CORE_VARS:
        core = _infeasible_core(c, seconds=seconds, seed=seed)
    reasons: dict[int, str] = {}
    for s in short:
        service = c.problem.services[s]
        per = ", ".join(amount(dim, c.demand[s][d]) for d, dim in enumerate(c.dims) if c.demand[s][d])
        if len(core) > 1 and s in core:
            names = [c.problem.services[t].name for t in core]
            together = ", ".join(names[:-1]) + " and " + names[-1]
            limits = "; ".join(_limits(c, t) for t in core if _limits(c, t))
            reasons[s] = f"{together} cannot all be placed together: the hosts they may use run out of room" + (
                f" ({limits})" if limits else ""
            )
        else:
            reasons[s] = (
                f"no host has room left for {service.name} ({per} per replica) "
                f"after services of higher priority were placed"
            )
    return reasons


def _limits(c: Compiled, s: int) -> str:
    service = c.problem.services[s]
    parts = []
    if service.max_per_host is not None:
        parts.append(f"max_per_host={service.max_per_host}")
    if service.require:
        parts.append(_require_text(c, s))
    if service.avoid:
        parts.append("avoids " + ", ".join(service.avoid))
    if service.spread_over:
        parts.append(f"spread_over={service.spread_over}")
    return f"{service.name} " + ", ".join(parts) if parts else ""


def _infeasible_core(c: Compiled, *, seconds: float, seed: int) -> list[int]:
    """Services that cannot all be placed in full together (empty when all can, or unknown)."""
    model = CountsModel(c, binpack=True)
    m = model.model
    lits = {}
    for s in range(c.n_services):
        if c.replicas[s]:
            lit = lits[s] = m.new_bool_var(f"full{s}")
            m.add(model.placed[s] == c.replicas[s]).only_enforce_if(lit)
    m.add_assumptions(list(lits.values()))
    # one worker: assumption cores are reported by a single search thread
    solver, status = run(m, budget=Budget.of(seconds), seconds=seconds, seed=seed, workers=1)
    if status != cp_model.INFEASIBLE:
        return []
    names = {lit.index: s for s, lit in lits.items()}
    return sorted({names[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in names})
