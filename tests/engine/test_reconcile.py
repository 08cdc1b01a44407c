from core.engine.reconcile import reconcile
from core.model import HostState, Placement, ReplicaId, ReplicaStatus

UP, DOWN = HostState.UP, HostState.DOWN
W0, W1 = ReplicaId("web", 0), ReplicaId("web", 1)


def st(replica, host, running=True, started=1.0):
    return ReplicaStatus(replica, host, pid=1, running=running, started_at=started)


def test_one_copy_each_is_the_placement(small_config):
    rec = reconcile(small_config, {"a": UP, "b": UP}, {"a": (st(W0, "a"),), "b": (st(W1, "b"),)})
    assert dict(rec.current.assignments) == {W0: "a", W1: "b"}
    assert rec.duplicates == rec.stale == rec.crashed == ()
    assert rec.running["web"] == 2


def test_duplicate_keeps_the_intended_copy(small_config):
    records = {"a": (st(W0, "a", started=1.0),), "b": (st(W0, "b", started=5.0),)}
    rec = reconcile(small_config, {"a": UP, "b": UP}, records, intended=Placement({W0: "b"}))
    assert rec.current.host_of(W0) == "b"
    assert rec.duplicates == ((W0, "a"),)


def test_duplicate_without_intent_keeps_the_oldest(small_config):
    records = {"a": (st(W0, "a", started=9.0),), "b": (st(W0, "b", started=5.0),)}
    rec = reconcile(small_config, {"a": UP, "b": UP}, records)
    assert rec.current.host_of(W0) == "b"
    assert rec.duplicates == ((W0, "a"),)


def test_dead_record_with_live_copy_elsewhere_is_stale(small_config):
    records = {"a": (st(W0, "a", running=False),), "b": (st(W0, "b"),)}
    rec = reconcile(small_config, {"a": UP, "b": UP}, records)
    assert rec.stale == ((W0, "a"),) and rec.crashed == ()
    assert rec.current.host_of(W0) == "b"


def test_dead_record_alone_is_crashed_and_stays_in_place(small_config):
    rec = reconcile(small_config, {"a": UP}, {"a": (st(W0, "a", running=False),)})
    assert rec.crashed == ((W0, "a"),)
    assert rec.current.host_of(W0) == "a"
    assert rec.running["web"] == 0


def test_given_up_crash_leaves_the_placement(small_config):
    rec = reconcile(small_config, {"a": UP}, {"a": (st(W0, "a", running=False),)}, given_up=frozenset({(W0, "a")}))
    assert rec.current.host_of(W0) is None
    assert rec.stale == ((W0, "a"),)


def test_lost_host_keeps_its_last_known_replicas_unless_they_run_elsewhere(small_config):
    records = {"a": (st(W0, "a"), st(W1, "a")), "b": (st(W1, "b"),)}
    rec = reconcile(small_config, {"a": DOWN, "b": UP}, records)
    assert rec.current.host_of(W0) == "a"  # displaced: the optimizer must move it
    assert rec.current.host_of(W1) == "b"
    assert rec.duplicates == ()  # the copy on the lost host cannot be stopped now
    assert rec.running["web"] == 1
