"""benchmarks/bench_ops.py --quick runs in CI: every case, both tables, the JSON, the markdown and the plot.

It asserts nothing about speed (CI machines are shared): only that every case ran in both libraries,
that the per-algorithm table covers each VGG layer under each algorithm, and that the files are written.
"""
import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def test_bench_ops_quick_writes_both_tables_and_the_plot(tmp_path):
    pytest.importorskip("torch", reason="bench_ops compares against PyTorch, which is not installed")
    sys.path.insert(0, BENCHMARKS)
    try:
        import bench_ops
    finally:
        sys.path.remove(BENCHMARKS)
    paths = {kind: tmp_path / f"cpu_ops.{kind}" for kind in ("json", "md", "png")}
    completed = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "bench_ops.py"), "--quick", "--json", str(paths["json"]),
         "--markdown", str(paths["md"]), "--plot", str(paths["png"])],
        capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]

    report = json.loads(paths["json"].read_text())
    assert report["meta"]["quick"] is True and report["meta"]["repeats"] == 1
    expected_cases = ([case[0] for case in bench_ops.CONV_CASES] + [case[0] for case in bench_ops.POOL_CASES]
                      + [case[0] for case in bench_ops.BATCH_NORM_CASES])
    assert [row["case"] for row in report["results"]] == expected_cases
    for row in report["results"]:
        assert row["minicnn_ms"] > 0 and row["torch_ms"] > 0
        assert row["minicnn_min_ms"] <= row["minicnn_ms"] <= row["minicnn_max_ms"]
        assert abs(row["ratio"] - row["torch_ms"] / row["minicnn_ms"]) < 1e-9
    conv_rows = [row for row in report["results"] if row["family"] == "conv2d"]
    assert {row["algorithm"] for row in conv_rows} >= {"im2col", "direct"}

    pairs = {(row["layer"], row["algorithm"]) for row in report["algorithms"]}
    assert pairs == {(name, algorithm) for name, *_, algorithms in bench_ops.algorithm_cases()
                     for algorithm in algorithms}
    assert {name for name, _ in bench_ops.VGG_CASES} < {layer for layer, _ in pairs}
    assert ("mobilenet dw 8x144x56x56", "direct") in pairs and ("mobilenet dw 8x144x56x56", "im2col") in pairs
    assert all(row["gflop_per_s"] > 0 for row in report["algorithms"])

    table = paths["md"].read_text()
    assert all(f"| {case} |" in table for case in expected_cases)
    algorithm_table = table.split("under each algorithm")[1]
    assert algorithm_table.count("| winograd |") == len(bench_ops.VGG_CASES)
    assert algorithm_table.count("| im2col |") == len(pairs) - algorithm_table.count("| winograd |") \
        - algorithm_table.count("| direct |")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
