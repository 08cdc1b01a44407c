"""The shared model: resource arithmetic, replica ids, placements and the actions between them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.model import (
    Action,
    ActionKind,
    Host,
    Placement,
    ReplicaId,
    Resources,
    Service,
    diff_actions,
    total,
)

amount = st.integers(min_value=0, max_value=10**12)
resources = st.builds(
    Resources,
    cpu=amount,
    mem=amount,
    extra=st.dictionaries(st.sampled_from(["gpu", "fpga"]), st.integers(min_value=0, max_value=64), max_size=2),
)


@given(resources, resources)
def test_add_then_sub_gives_back_every_dimension(a: Resources, b: Resources) -> None:
    back = (a + b) - b
    for dim in set(a.dimensions) | set(b.dimensions):
        assert back.get(dim) == a.get(dim)


@given(resources, resources)
def test_addition_is_per_dimension_and_commutative(a: Resources, b: Resources) -> None:
    s = a + b
    assert s.cpu == a.cpu + b.cpu and s.mem == a.mem + b.mem
    assert s == b + a
    assert hash(s) == hash(b + a)


@given(resources, resources)
def test_fits_within_any_larger_amount(a: Resources, b: Resources) -> None:
    assert a.fits(a)
    assert a.fits(a + b)
    if any(b.get(d) > 0 for d in b.dimensions):
        assert not (a + b).fits(a)


def test_fits_checks_every_dimension() -> None:
    cap = Resources(4000, 8 * 2**30)
    assert Resources(4000, 8 * 2**30).fits(cap)
    assert not Resources(4001, 1).fits(cap)
    assert not Resources(1, 8 * 2**30 + 1).fits(cap)
    assert not Resources(1, 1, {"gpu": 1}).fits(cap)  # a dimension the capacity lacks holds nothing
    assert Resources(1, 1, {"gpu": 1}).fits(Resources(1, 1, {"gpu": 2}))
    assert Resources().fits(Resources())


def test_resources_are_frozen_and_hashable() -> None:
    r = Resources(1, 2, {"gpu": 1})
    with pytest.raises(AttributeError):
        r.cpu = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.extra["gpu"] = 2  # type: ignore[index]
    assert {r: "x"}[Resources(1, 2, {"gpu": 1})] == "x"
    assert Resources.of({"cpu": 1, "mem": 2, "gpu": 1}) == r
    assert r.as_dict() == {"cpu": 1, "mem": 2, "gpu": 1}


def test_multiply_and_total() -> None:
    r = Resources(500, 256, {"gpu": 1})
    assert r * 3 == Resources(1500, 768, {"gpu": 3})
    assert total([r, r, r]) == r * 3
    assert total([]) == Resources()


def test_host_usable_is_pin_or_probe_minus_reserve() -> None:
    reserve = Resources(500, 512)
    pinned = Host("a", "10.0.0.1", capacity=Resources(4000, 8192), reserve=reserve)
    probed = Host("b", "10.0.0.2", reserve=reserve)
    assert pinned.usable() == Resources(3500, 7680)
    assert pinned.usable(Resources(1, 1)) == Resources(3500, 7680)  # the pin wins over a probe
    assert probed.usable(Resources(2000, 1024)) == Resources(1500, 512)
    # issue 12, item 9: a host never probed (down from the start) has no capacity, not a negative one
    assert probed.usable() == Resources() and probed.usable(None).cpu == 0
    assert Host("c", "local").is_local and not pinned.is_local


def test_service_matches_required_labels_and_names_its_replicas() -> None:
    svc = Service("db", "sleep 1", 3, Resources(1, 1), require={"disk": "ssd"})
    assert svc.replica_ids() == (ReplicaId("db", 0), ReplicaId("db", 1), ReplicaId("db", 2))
    assert svc.matches(Host("a", "x", labels={"disk": "ssd", "zone": "1"}))
    assert not svc.matches(Host("b", "x", labels={"disk": "hdd"}))
    assert not svc.matches(Host("c", "x"))


names = st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True)


@given(names, st.integers(min_value=0, max_value=10**6))
def test_replica_id_round_trips(service: str, index: int) -> None:
    rid = ReplicaId(service, index)
    assert ReplicaId.parse(str(rid)) == rid
    assert str(rid) == f"{service}/{index}"


@pytest.mark.parametrize("text", ["web", "web/", "/3", "web/x", "web/-1", "", "web/3/"])
def test_replica_id_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="service/index"):
        ReplicaId.parse(text)


def test_replica_ids_sort_by_service_then_index() -> None:
    ids = [ReplicaId.parse(t) for t in ["web/10", "api/1", "web/2"]]
    assert [str(r) for r in sorted(ids)] == ["api/1", "web/2", "web/10"]


def test_diff_actions_start_stop_move_in_replica_order() -> None:
    web0, web1, web2, api0 = (ReplicaId.parse(t) for t in ["web/0", "web/1", "web/2", "api/0"])
    current = Placement({web0: "a", web1: "a", api0: "b"})
    target = Placement({web0: "a", web1: "b", web2: "c"})
    assert diff_actions(current, target) == (
        Action(ActionKind.STOP, api0, from_host="b"),
        Action(ActionKind.MOVE, web1, from_host="a", to_host="b"),
        Action(ActionKind.START, web2, to_host="c"),
    )
    assert [str(a) for a in diff_actions(current, target)] == [
        "stop api/0 on b",
        "move web/1 a → b",
        "start web/2 on c",
    ]
    assert diff_actions(target, target) == ()


placements = st.dictionaries(
    st.builds(ReplicaId, st.sampled_from(["web", "api", "db"]), st.integers(min_value=0, max_value=5)),
    st.sampled_from(["h1", "h2", "h3"]),
    max_size=12,
).map(Placement)


@given(placements, placements)
def test_applying_the_diff_reaches_the_target(current: Placement, target: Placement) -> None:
    state = dict(current.assignments)
    actions = diff_actions(current, target)
    for action in actions:
        if action.kind is ActionKind.START:
            assert action.replica not in state
            state[action.replica] = action.to_host
        elif action.kind is ActionKind.STOP:
            assert state.pop(action.replica) == action.from_host
        else:
            assert state[action.replica] == action.from_host != action.to_host
            state[action.replica] = action.to_host
    assert state == dict(target.assignments)
    assert len(actions) == sum(
        current.host_of(r) != target.host_of(r) for r in {*current.assignments, *target.assignments}
    )


def test_placement_queries() -> None:
    p = Placement({ReplicaId("web", 1): "a", ReplicaId("web", 0): "b", ReplicaId("db", 0): "a"})
    assert list(p.assignments) == [ReplicaId("db", 0), ReplicaId("web", 0), ReplicaId("web", 1)]
    assert p.on_host("a") == (ReplicaId("db", 0), ReplicaId("web", 1))
    assert p.hosts_used() == frozenset({"a", "b"})
    assert p.host_of(ReplicaId("x", 0)) is None
    assert hash(p) == hash(Placement(dict(p.assignments)))


def test_zero_extra_dimensions_do_not_change_equality():
    a, b = Resources(1, 1, {"gpu": 2}), Resources(0, 0, {"gpu": 2})
    assert (a + b) - b == a
    assert Resources(1, 1, {"gpu": 0}) == Resources(1, 1)


@pytest.mark.parametrize("text", ["web/٣", "web/³"])
def test_replica_ids_take_ascii_digits_only(text):
    with pytest.raises(ValueError, match="is not a replica id"):
        ReplicaId.parse(text)
