"""benchmarks/bench_distributed.py --quick: the main job timed at 1 rank and under mpiexec at 2, the bytes
its allreduce moves (4 a gradient plus the buckets' headers), and the six files it writes.

One quick run (1 warm-up step and 4 timed ones per rank count, about 15 s on 2 cores) serves every test;
the numbers are only checked for sign and bookkeeping, never for speed.
"""
import json
import os
import subprocess
import sys

import pytest

from minicnn import cli
from minicnn.distributed import DataParallel
from minicnn.distributed.communicator import SingleProcess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")
sys.path.insert(0, BENCHMARKS)
try:
    import bench_distributed
finally:
    sys.path.remove(BENCHMARKS)

MPI_MISSING = bench_distributed.mpi_missing_reason()
pytestmark = pytest.mark.skipif(MPI_MISSING is not None,
                                reason=f"bench_distributed.py runs 2 ranks under mpiexec: {MPI_MISSING}")
FILES = [f"{name}.{kind}" for name in ("distributed_cpu", "scaling_model") for kind in ("json", "md", "png")]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick --output-dir`` run: its folder, its report and its rows by rank count."""
    folder = tmp_path_factory.mktemp("bench_distributed")
    command = [sys.executable, os.path.join(BENCHMARKS, "bench_distributed.py"), "--quick",
               "--output-dir", str(folder)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"bench_distributed.py --quick failed:\n{done.stdout}\n{done.stderr}"
    with open(folder / "distributed_cpu.json") as file:
        report = json.load(file)
    return {"folder": folder, "report": report, "rows": {row["ranks"]: row for row in report["rows"]},
            "stdout": done.stdout}


def test_quick_run_times_the_main_job_at_one_and_two_ranks(quick_run):
    rows = quick_run["rows"]
    assert sorted(rows) == [1, 2]
    for ranks, row in rows.items():
        assert row["images_per_s"] > 0 and row["seconds_per_step"] > 0, row
        assert (row["model"], row["width"], row["dataset"]) == ("vgg11_bn", 0.25, "mnist5k")
        assert (row["global_batch"], row["per_rank_batch"]) == (64, 64 // ranks)
        assert (row["warmup_steps"], row["timed_steps"]) == (1, 4)
        assert row["images"] == 4 * 64  # the timed steps only, every rank's images counted
    assert rows[1]["optimizer"] == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}


def test_allreduce_costs_nothing_alone_and_runs_once_a_step_over_two_ranks(quick_run):
    alone, pair = quick_run["rows"][1], quick_run["rows"][2]
    assert alone["allreduce_s_per_step"] == 0 and alone["allreduce_bytes_per_step"] == 0
    assert alone["synchronized_steps"] == 0 and alone["bandwidth_bytes_per_s"] is None
    assert pair["allreduce_s_per_step"] > 0 and pair["packing_s_per_step"] > 0
    assert all(seconds > 0 for seconds in pair["allreduce_s_per_step_by_rank"])
    assert pair["synchronized_steps"] == pair["timed_steps"]  # counted over the timed steps, not the warm-up
    assert pair["bandwidth_bytes_per_s"] > 0 and pair["probe_bandwidth_bytes_per_s"] > 0
    assert 0 < pair["allreduce_share"] < 1


def test_bytes_per_step_are_four_per_gradient_plus_one_value_per_tensor_and_per_bucket(quick_run):
    pair = quick_run["rows"][2]
    model = cli._build_model("vgg11_bn", num_classes=10, in_channels=1, width=0.25)  # mnist5k: 10 grey digits
    parameters = [param for param in model.parameters() if param.requires_grad]
    count = sum(param.data.size for param in parameters)
    buckets = len(DataParallel(model, communicator=SingleProcess()).buckets)  # the same 25 MB plan
    assert pair["parameters"] == count
    assert (pair["parameter_tensors"], pair["buckets"]) == (len(parameters), buckets)
    # each bucket: its float32 gradients | one has-grad flag per parameter | the batch size
    assert pair["allreduce_bytes_per_step"] == 4 * (count + len(parameters) + buckets)
    assert pair["bandwidth_bytes_per_s"] == pytest.approx(pair["allreduce_bytes_per_step"]
                                                          / pair["allreduce_s_per_step"])


def test_ranks_share_the_cores_and_the_run_records_its_threads(quick_run):
    alone, pair = quick_run["rows"][1], quick_run["rows"][2]
    cores = quick_run["report"]["meta"]["cores"]
    assert pair["ranks_on_this_machine"] == 2 and alone["cores"] == pair["cores"] == cores
    if "MINICNN_NUM_THREADS" not in os.environ:  # else the user's choice, which init keeps
        assert alone["minicnn_threads_per_rank"] == cores
        assert pair["minicnn_threads_per_rank"] == max(1, cores // 2)
    assert pair["mpi_library"] and alone["mpi_library"] is None


def test_quick_run_writes_its_report_and_the_scaling_model_with_the_measured_rows(quick_run):
    folder = quick_run["folder"]
    for name in FILES:
        assert os.path.getsize(folder / name) > 0, name
    for name in ("distributed_cpu.png", "scaling_model.png"):
        with open(folder / name, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n", name
        assert os.path.getsize(folder / name) > 1000, name
    with open(folder / "scaling_model.json") as file:
        scaling = json.load(file)
    assert [row["ranks"] for row in scaling["measured"]] == [1, 2]
    assert scaling["measured"] == quick_run["report"]["scaling_model_rows"]
    markdown = (folder / "distributed_cpu.md").read_text()
    lines = [line.replace(" ", "") for line in markdown.splitlines()]
    for ranks in (1, 2):
        assert sum(line.startswith(f"|{ranks}|") for line in lines) == 1, ranks
    assert "GB/s" in markdown and "--quick --output-dir" in markdown and "What it means." in markdown
    assert quick_run["stdout"].lstrip().startswith("| ranks")  # the table on stdout, nothing before it
