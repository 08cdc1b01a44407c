"""The benchmark readers, on instances written here (the public sets are never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_data import instances, read_trace, to_problem, trace_problem
from core.optimizer import solve


def test_bpp_and_vbp_files_become_placement_problems(tmp_path: Path) -> None:
    (tmp_path / "tiny_1.txt").write_text("6\r\n10\r\n5\r\n5\r\n4\r\n6\r\n3\r\n7\r\n")  # three bins filled exactly
    (tmp_path / "class1_4_2_0.vbp").write_text("2\n10 10\n2\n5 4 2\n5 6 2\n")  # two bins filled exactly
    (tmp_path / "optima.csv").write_text("instance,optimum\ntiny_1,3\nclass1_4_2_0,2\n")
    found = {i.name: i for i in instances(tmp_path)}
    assert found["tiny_1"].capacity == (10,) and found["tiny_1"].n_items == 6 and found["tiny_1"].optimum == 3
    assert found["class1_4_2_0"].items == (((5, 4), 2), ((5, 6), 2))
    for inst in found.values():
        result = solve(to_problem(inst), time_limit=2.0)
        assert result.hosts_used == inst.optimum and not result.unplaced


def test_trace_takes_the_pods_alive_at_the_busiest_moment(tmp_path: Path) -> None:
    (tmp_path / "openb_node_list_all_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,8000,1024,1,T4\nn1,8000,1024,0,\n"
    )
    (tmp_path / "openb_pod_list_default.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
        "p0,4000,512,1,500,,LS,Running,0,100,0\n"
        "p1,4000,512,0,0,,BE,Running,10,50,10\n"
        "p2,4000,512,0,0,,BE,Running,60,70,60\n"
    )
    trace = read_trace(tmp_path)
    assert trace.at == 10 and sorted(trace.pods) == [(4000, 512 * 2**20, 0), (4000, 512 * 2**20, 500)]
    result = solve(trace_problem(trace), time_limit=1.0)
    assert result.hosts_used == 1 and not result.unplaced
