"""minicnn.viz.device_benchmarks: reading benchmarks/results/ and drawing CPU against GPU.

No GPU session has recorded results yet, so the GPU half is fed a synthetic gpu_ops.json whose rows
carry exactly the keys benchmarks/bench_gpu.py writes (read from the script's own source, so the two
cannot drift apart), and the figures are checked to hold exactly those numbers.
"""
import ast
import json
import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from minicnn.viz.device_benchmarks import cpu_gpu_rows, cpu_gpu_times, cpu_torch_times, load_benchmark_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench_gpu_dict_keys():
    """The keyword names of every ``dict(...)`` call in bench_gpu.py: the rows and the file it writes."""
    with open(os.path.join(REPO, "benchmarks", "bench_gpu.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    return [{keyword.arg for keyword in node.keywords} for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict"]


def synthetic_gpu_ops():
    """A gpu_ops.json as bench_gpu.py writes it, with made-up but plausible H100-sized numbers."""
    def kernel(name, gpu_ms, cpu_ms):
        return {"kernel": name, "rel_error": 1e-7, "gpu_ms": gpu_ms, "cpu_ms": cpu_ms,
                "speedup": cpu_ms / gpu_ms, "gpu_GBps": 1000.0}

    def gemm(name, gpu_ms):
        return {"gemm": name, "m": 1024, "k": 1024, "n": 1024, "rel_error": 1e-6, "gpu_ms": gpu_ms,
                "tflops": 2 * 1024**3 / gpu_ms / 1e9}

    def op(name, cuda_ms, cpu_ms, torch_cuda_ms):
        ratio_torch = None if torch_cuda_ms is None else torch_cuda_ms / cuda_ms
        return {"op": name, "rel_error": 2e-6, "cuda_ms": cuda_ms, "cpu_ms": cpu_ms,
                "torch_cuda_ms": torch_cuda_ms, "ratio_torch": ratio_torch}

    def step(device, step_ms):
        return {"device": device, "batch": 64, "step_ms": step_ms, "images_per_s": 64 / step_ms * 1e3}

    def vgg16(framework, device, step_ms):
        return {"model": "vgg16", "framework": framework, "device": device, "batch": 32, "size": 224,
                "step_ms": step_ms}

    machine = {"gpu": "NVIDIA H100 80GB HBM3", "multiprocessors": 132, "memory_GiB": 79.1, "driver": 12040,
               "cuda_runtime": 12040, "cupy": "13.3.0", "numpy": "2.4.6", "python": "3.12.3", "cpu": "x86_64"}
    return {"machine": machine, "copy_GBps": 2900.0, "repeats": 50, "cpu_repeats": 3,
            "kernels": [kernel("relu_forward", 0.08, 40.0), kernel("im2col 3x3", 0.5, 120.0),
                        kernel("softmax_forward 4096x1000", 0.04, 0.03)],
            "gemm": [gemm("tiled SGEMM (lesson 1)", 0.9), gemm("teaching SGEMM", 0.4),
                     gemm("cuBLAS (cupy.matmul)", 0.05)],
            "ops": [op("conv 3x3 vgg conv2_2", 3.0, 900.0, 1.5), op("max_pool 3/2", 1.0, 300.0, None)],
            "train_step": [step("cuda", 8.0), step("cpu", 2400.0)],
            "vgg16_step": [vgg16("minicnn", "cuda", 400.0), vgg16("minicnn", "cpu", 30000.0),
                           vgg16("torch", "cuda", 120.0)]}


def test_the_synthetic_results_have_exactly_the_keys_bench_gpu_writes():
    written = bench_gpu_dict_keys()
    results = synthetic_gpu_ops()
    assert set(results) in written
    assert set(results["machine"]) in written
    for table in ("kernels", "gemm", "ops", "train_step", "vgg16_step"):
        for row in results[table]:
            assert set(row) in written, (table, sorted(row))


def write_gpu_session(folder, gpu_ops, failures=0):
    (folder / "gpu_ops.json").write_text(json.dumps(gpu_ops, indent=1))
    (folder / "gpu_machine.txt").write_text("NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n")
    (folder / "gpu_cuda_ops.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" '
        f'failures="{failures}" skipped="1" tests="53" time="12.0"></testsuite></testsuites>')
    (folder / "gpu_functions.xml").write_text(  # an older pytest: a bare testsuite root
        '<testsuite name="pytest" errors="1" failures="0" skipped="4" tests="900"></testsuite>')


def test_load_benchmark_results_reads_the_recorded_cpu_results_and_no_gpu_results():
    results = load_benchmark_results(RESULTS)
    with open(os.path.join(RESULTS, "cpu_ops.json"), encoding="utf-8") as file:
        assert results["cpu_ops"] == json.load(file)
    if not os.path.exists(os.path.join(RESULTS, "gpu_ops.json")):
        assert results["gpu_ops"] is None and results["gpu_machine"] is None and results["gpu_tests"] == {}


def test_load_benchmark_results_reads_a_gpu_session(tmp_path):
    write_gpu_session(tmp_path, synthetic_gpu_ops(), failures=2)
    results = load_benchmark_results(tmp_path)
    assert results["cpu_ops"] is None
    assert results["gpu_ops"] == synthetic_gpu_ops()
    assert results["gpu_machine"].startswith("NVIDIA H100")
    assert results["gpu_tests"] == {
        "gpu_cuda_ops.xml": {"tests": 53, "failures": 2, "errors": 0, "skipped": 1},
        "gpu_functions.xml": {"tests": 900, "failures": 0, "errors": 1, "skipped": 4}}


def test_load_benchmark_results_rejects_a_bad_folder_and_bad_files(tmp_path):
    with pytest.raises(TypeError, match="load_benchmark_results: folder must be a path"):
        load_benchmark_results(3)
    with pytest.raises(FileNotFoundError, match="load_benchmark_results: .*nowhere is not a folder"):
        load_benchmark_results(tmp_path / "nowhere")
    (tmp_path / "gpu_ops.json").write_text('{"kernels": [')
    with pytest.raises(ValueError, match="load_benchmark_results: .*gpu_ops.json is not valid JSON"):
        load_benchmark_results(tmp_path)
    (tmp_path / "gpu_ops.json").unlink()
    (tmp_path / "gpu_cuda_ops.xml").write_text("<testsuite")
    with pytest.raises(ValueError, match="load_benchmark_results: .*gpu_cuda_ops.xml is not valid JUnit XML"):
        load_benchmark_results(tmp_path)


def test_cpu_gpu_rows_pair_each_case_on_both_devices_in_file_order():
    rows = cpu_gpu_rows(synthetic_gpu_ops())
    assert [(row["table"], row["case"]) for row in rows] == [
        ("kernel", "relu_forward"), ("kernel", "im2col 3x3"), ("kernel", "softmax_forward 4096x1000"),
        ("op", "conv 3x3 vgg conv2_2"), ("op", "max_pool 3/2"),
        ("model", "training step, VGG-11-BN w0.25, batch 64"), ("model", "training step, VGG-16 224x224, batch 32")]
    assert [(row["cpu_ms"], row["gpu_ms"]) for row in rows] == [
        (40.0, 0.08), (120.0, 0.5), (0.03, 0.04), (900.0, 3.0), (300.0, 1.0), (2400.0, 8.0), (30000.0, 400.0)]
    np.testing.assert_allclose([row["speedup"] for row in rows], [500, 240, 0.75, 300, 300, 300, 75])
    assert [row["torch_gpu_ms"] for row in rows] == [None, None, None, 1.5, None, None, 120.0]
    # files written before bench_gpu timed VGG-16 have no such table, and still give their rows
    older = synthetic_gpu_ops()
    del older["vgg16_step"]
    assert cpu_gpu_rows(older) == rows[:-1]
    # the whole load_benchmark_results dict works as well
    assert cpu_gpu_rows({"cpu_ops": None, "gpu_ops": synthetic_gpu_ops()}) == rows


def test_cpu_gpu_rows_reject_what_bench_gpu_never_writes():
    with pytest.raises(ValueError, match=r"cpu_gpu_rows: no GPU results are recorded \(gpu_ops.json is"):
        cpu_gpu_rows({"cpu_ops": {}, "gpu_ops": None})
    with pytest.raises(TypeError, match="cpu_gpu_rows: gpu_ops must be the dict bench_gpu.py writes, got"):
        cpu_gpu_rows([])
    with pytest.raises(ValueError, match=r"cpu_gpu_rows: .*missing \['ops', 'train_step'\]"):
        cpu_gpu_rows({"kernels": []})
    broken = synthetic_gpu_ops()
    broken["kernels"][1]["gpu_ms"] = 0.0
    with pytest.raises(ValueError, match=r"cpu_gpu_rows: kernels\[1\] needs a positive number .* 'gpu_ms'"):
        cpu_gpu_rows(broken)
    with pytest.raises(ValueError, match="cpu_gpu_times: gpu_ops holds no timed case"):
        cpu_gpu_times({"kernels": [], "ops": [], "train_step": []})
    one_device = synthetic_gpu_ops()
    one_device["train_step"].pop()
    with pytest.raises(ValueError, match="cpu_gpu_rows: train_step must hold one row for device 'cuda'"):
        cpu_gpu_rows(one_device)
    no_cpu_step = synthetic_gpu_ops()
    del no_cpu_step["vgg16_step"][1]
    with pytest.raises(ValueError, match="cpu_gpu_rows: vgg16_step must hold minicnn's 'cuda' and 'cpu' rows"):
        cpu_gpu_rows(no_cpu_step)


def test_cpu_gpu_times_draw_every_case_on_a_log_axis_with_its_speedup(tmp_path):
    path = tmp_path / "runs" / "cpu_gpu.png"
    figure = cpu_gpu_times(synthetic_gpu_ops(), save=path)
    assert isinstance(figure, Figure)
    kernels, ops, model = figure.axes
    for axes, cases in ((kernels, 3), (ops, 2), (model, 2)):
        assert axes.get_xscale() == "log"
        assert len(axes.get_yticklabels()) == cases
    cpu_dots, gpu_dots, torch_dots = ops.collections
    assert (cpu_dots.get_label(), gpu_dots.get_label(), torch_dots.get_label()) == (
        "CPU (NumPy)", "GPU (minicnn CUDA)", "PyTorch CUDA")
    np.testing.assert_array_equal(cpu_dots.get_offsets(), [[900.0, 0], [300.0, 1]])
    np.testing.assert_array_equal(gpu_dots.get_offsets(), [[3.0, 0], [1.0, 1]])
    np.testing.assert_array_equal(torch_dots.get_offsets(), [[1.5, 0]])  # max_pool had no PyTorch CUDA time
    assert len(kernels.collections) == 2  # no PyTorch in the kernel table
    assert [text.get_text() for text in kernels.texts] == ["500× faster", "240× faster", "1.33× slower",
                                                           "GPU against CPU"]
    (legend,) = figure.legends  # one for all panels, PyTorch CUDA included though only the ops have it
    assert [text.get_text() for text in legend.get_texts()] == ["CPU (NumPy)", "GPU (minicnn CUDA)",
                                                                 "PyTorch CUDA"]
    assert "NVIDIA H100" in figure._suptitle.get_text()
    assert "log scale" in model.get_xlabel()
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC


def test_cpu_torch_times_draw_the_recorded_cpu_results_with_their_ratios():
    with open(os.path.join(RESULTS, "cpu_ops.json"), encoding="utf-8") as file:
        cpu_ops = json.load(file)
    figure = cpu_torch_times(cpu_ops)
    (axes,) = figure.axes
    assert axes.get_xscale() == "log"
    ours, theirs = axes.collections
    np.testing.assert_array_equal(ours.get_offsets()[:, 0], [row["minicnn_ms"] for row in cpu_ops["results"]])
    np.testing.assert_array_equal(theirs.get_offsets()[:, 0], [row["torch_ms"] for row in cpu_ops["results"]])
    ratios = [f"{row['ratio']:.2f}×" for row in cpu_ops["results"]]
    assert [text.get_text() for text in axes.texts] == [*ratios, "torch / minicnn"]
    cases = [row["case"] for row in cpu_ops["results"]]
    assert [label.get_text() for label in axes.get_yticklabels()] == cases


def test_cpu_torch_times_reject_bad_results():
    with pytest.raises(TypeError, match="cpu_torch_times: cpu_ops must be what bench_ops.py writes"):
        cpu_torch_times("cpu_ops.json")
    with pytest.raises(ValueError, match="cpu_torch_times: cpu_ops holds no results"):
        cpu_torch_times({"results": []})
    with pytest.raises(ValueError, match=r"cpu_torch_times: results\[0\] needs a positive .* 'torch_ms'"):
        cpu_torch_times([{"case": "conv", "minicnn_ms": 3.0}])


def test_the_cpu_against_gpu_notebook_reports_a_gpu_session(tmp_path, monkeypatch):
    """examples/notebooks/09_cpu_against_gpu.ipynb up to its GPU report, run on a synthetic GPU session (the
    notebook's CI run covers the other state, today's: no GPU results)."""
    nbformat = pytest.importorskip("nbformat", reason="running the notebook needs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="running the notebook needs nbclient")
    pytest.importorskip("ipykernel", reason="running the notebook needs a Jupyter kernel (ipykernel)")
    folder = os.path.join(REPO, "examples", "notebooks")
    notebook = nbformat.read(os.path.join(folder, "09_cpu_against_gpu.ipynb"), as_version=4)
    last = next(i for i, cell in enumerate(notebook.cells) if "report_gpu_results(results)" in cell.source)
    notebook.cells = notebook.cells[:last + 1]  # the live timings after it are the CI run's business
    with open(os.path.join(RESULTS, "cpu_ops.json"), encoding="utf-8") as file:
        (tmp_path / "cpu_ops.json").write_text(file.read())
    write_gpu_session(tmp_path, synthetic_gpu_ops())
    monkeypatch.setenv("MINICNN_BENCHMARK_RESULTS", str(tmp_path))
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": folder}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")
    assert "GPU results recorded: gpu_ops.json" in text
    assert "No GPU results are recorded yet" not in text and "None of this has run" not in text
    assert "GPU: NVIDIA H100 80GB HBM3" in text
    assert "GPU tests (gpu_cuda_ops.xml): 53 run, 0 failed" in text
    assert "speed-up 500×" in text and "speed-up 0.75×" in text
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2  # CPU, then CPU against GPU
