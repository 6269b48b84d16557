"""CPU against GPU: read what the benchmark scripts recorded and draw each device's time per case.

Two scripts write into ``benchmarks/results/``:

* ``benchmarks/bench_ops.py`` writes ``cpu_ops.json``: minicnn against PyTorch, both on the CPU,
  forward + backward of conv and pooling layers;
* ``benchmarks/bench_gpu.py`` (run by ``benchmarks/gpu_session.sh`` on a machine with a GPU) writes
  ``gpu_ops.json``, which times the same work on both devices three ways: each CUDA kernel against the
  NumPy kernel of the same name ("kernels"), forward + backward ops through minicnn ("ops", with PyTorch
  CUDA beside them where it was installed) and one training step of a model ("train_step").  The session
  script also leaves ``gpu_machine.txt`` and JUnit files of the GPU tests.

* ``load_benchmark_results(folder)``: all of those files, parsed (None for each one missing);
* ``cpu_gpu_rows(gpu_ops)``: each case timed on both devices as one row with its speed-up;
* ``cpu_torch_times(cpu_ops)`` and ``cpu_gpu_times(gpu_ops)``: the two pictures, returned as Figures.

Times are drawn on a log axis: a GPU can be 10 to 1000 times faster than NumPy, and on a log axis the
gap between a case's two dots *is* its speed-up, read the same at every scale.

>>> from minicnn.viz.device_benchmarks import cpu_gpu_times, load_benchmark_results
>>> results = load_benchmark_results("benchmarks/results")
>>> if results["gpu_ops"] is not None:
...     cpu_gpu_times(results, save="runs/cpu_gpu.png")
"""
import json
import os
from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree

from minicnn.viz._figure import new_figure, save_figure
from minicnn.viz.benchmarks import is_positive_number

__all__ = ["cpu_gpu_rows", "cpu_gpu_times", "cpu_torch_times", "load_benchmark_results"]

CPU_RESULTS, GPU_RESULTS, GPU_MACHINE = "cpu_ops.json", "gpu_ops.json", "gpu_machine.txt"
GPU_TEST_REPORTS = ("gpu_cuda_ops.xml", "gpu_functions.xml")  # JUnit XML written by gpu_session.sh
TRAIN_STEP_MODEL = "VGG-11-BN w0.25"  # what bench_gpu.py's bench_train_step trains (its JSON does not say)
_TABLES = ("kernels", "ops", "train_step")
_COLORS = {"cpu": "tab:blue", "gpu": "tab:green", "torch": "black"}


def _milliseconds(function, row, key, where):
    value = row.get(key) if isinstance(row, Mapping) else None
    if not is_positive_number(value):
        raise ValueError(f"{function}: {where} needs a positive number of milliseconds under {key!r}, "
                         f"got {row!r:.120}")
    return float(value)


# --- reading ------------------------------------------------------------------------------------------
def _read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"load_benchmark_results: {path} is not valid JSON ({error})") from None


def _junit_counts(path):
    """tests, failures, errors and skipped summed over the test suites of one JUnit XML file."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"load_benchmark_results: {path} is not valid JUnit XML ({error})") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    return {key: sum(int(suite.get(key, 0)) for suite in suites) for key in keys}


def load_benchmark_results(folder):
    """Everything the benchmark scripts left in ``folder``, parsed; what is missing is None (or empty).

    Returns ``{"cpu_ops": dict or None, "gpu_ops": dict or None, "gpu_machine": str or None,
    "gpu_tests": {report file name: {"tests", "failures", "errors", "skipped"}}}``: the two JSON files as
    written, the GPU session's description of its machine, and the counts of its JUnit reports.

    >>> results = load_benchmark_results("benchmarks/results")
    >>> results["gpu_ops"] is None   # no GPU session has recorded anything yet
    True
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"load_benchmark_results: folder must be a path (str or os.PathLike), "
                        f"got {type(folder).__name__}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_benchmark_results: {folder} is not a folder (benchmarks/results/ "
                                "of a minicnn checkout holds the recorded results)")
    cpu, gpu, machine = (folder / name for name in (CPU_RESULTS, GPU_RESULTS, GPU_MACHINE))
    return {
        "cpu_ops": _read_json(cpu) if cpu.is_file() else None,
        "gpu_ops": _read_json(gpu) if gpu.is_file() else None,
        "gpu_machine": machine.read_text(encoding="utf-8") if machine.is_file() else None,
        "gpu_tests": {name: _junit_counts(folder / name)
                      for name in GPU_TEST_REPORTS if (folder / name).is_file()},
    }


# --- rows -----------------------------------------------------------------------------------------------
def _gpu_tables(function, gpu_ops):
    if isinstance(gpu_ops, Mapping) and "gpu_ops" in gpu_ops:  # the whole load_benchmark_results dict
        if gpu_ops["gpu_ops"] is None:
            raise ValueError(f"{function}: no GPU results are recorded ({GPU_RESULTS} is missing); "
                             "benchmarks/gpu_session.sh on a machine with a GPU writes them")
        gpu_ops = gpu_ops["gpu_ops"]
    if not isinstance(gpu_ops, Mapping):
        raise TypeError(f"{function}: gpu_ops must be the dict bench_gpu.py writes, "
                        f"got {type(gpu_ops).__name__}")
    missing = [table for table in _TABLES if not isinstance(gpu_ops.get(table), list)]
    if missing:
        raise ValueError(f"{function}: gpu_ops must be what bench_gpu.py writes, with lists under "
                         f"{list(_TABLES)}; missing {missing} (keys: {sorted(gpu_ops)})")
    return gpu_ops


def _row(table, case, cpu_ms, gpu_ms, torch_gpu_ms=None):
    return {"table": table, "case": str(case), "cpu_ms": cpu_ms, "gpu_ms": gpu_ms, "speedup": cpu_ms / gpu_ms,
            "torch_gpu_ms": torch_gpu_ms}


def _train_step_rows(function, train_step):
    """bench_gpu.py times one step per device; the pair becomes one row."""
    if not train_step:
        return []
    steps = {row.get("device"): row for row in train_step if isinstance(row, Mapping)}
    if set(steps) != {"cuda", "cpu"} or len(train_step) != 2:
        raise ValueError(f"{function}: train_step must hold one row for device 'cuda' and one for 'cpu', "
                         f"got {train_step!r:.160}")
    cpu_ms = _milliseconds(function, steps["cpu"], "step_ms", "train_step (cpu)")
    gpu_ms = _milliseconds(function, steps["cuda"], "step_ms", "train_step (cuda)")
    case = f"training step, {TRAIN_STEP_MODEL}, batch {steps['cuda'].get('batch')}"
    return [_row("model", case, cpu_ms, gpu_ms)]


def _vgg16_step_rows(function, vgg16_step):
    """bench_gpu.py's VGG-16 step (files before it was added have none): minicnn per device, PyTorch's GPU."""
    if not vgg16_step:
        return []
    steps = {(row.get("framework"), row.get("device")): row for row in vgg16_step if isinstance(row, Mapping)}
    if not {("minicnn", "cuda"), ("minicnn", "cpu")} <= set(steps):
        raise ValueError(f"{function}: vgg16_step must hold minicnn's 'cuda' and 'cpu' rows, got {vgg16_step!r:.160}")
    cpu_ms = _milliseconds(function, steps[("minicnn", "cpu")], "step_ms", "vgg16_step (cpu)")
    gpu_ms = _milliseconds(function, steps[("minicnn", "cuda")], "step_ms", "vgg16_step (cuda)")
    torch_ms = None
    if ("torch", "cuda") in steps:
        torch_ms = _milliseconds(function, steps[("torch", "cuda")], "step_ms", "vgg16_step (torch)")
    row = steps[("minicnn", "cuda")]
    case = f"training step, VGG-16 {row.get('size')}x{row.get('size')}, batch {row.get('batch')}"
    return [_row("model", case, cpu_ms, gpu_ms, torch_ms)]


def cpu_gpu_rows(gpu_ops):
    """One row for each thing ``bench_gpu.py`` timed on both devices: its kernels, its ops, then the model.

    Each row is ``{"table": "kernel" | "op" | "model", "case": str, "cpu_ms", "gpu_ms", "speedup": cpu_ms /
    gpu_ms, "torch_gpu_ms": float or None}``.  A kernel row is the CUDA kernel against the NumPy kernel of
    the same name on the same inputs; an op row is forward + backward through minicnn on "cuda" and on
    "cpu", with PyTorch CUDA's time where it ran; the model rows are one SGD step on each device (the main
    job's model, then VGG-16 at 224×224 with PyTorch + cuDNN's time where the file has it).
    ``gpu_ops`` is the parsed ``gpu_ops.json`` (or the whole ``load_benchmark_results`` dict).

    >>> rows = cpu_gpu_rows(json.load(open("benchmarks/results/gpu_ops.json")))
    >>> [row["case"] for row in rows if row["speedup"] < 1]     # where the GPU lost
    """
    function = "cpu_gpu_rows"
    gpu_ops = _gpu_tables(function, gpu_ops)
    rows = []
    for index, kernel in enumerate(gpu_ops["kernels"]):
        where = f"kernels[{index}]"
        cpu_ms, gpu_ms = (_milliseconds(function, kernel, key, where) for key in ("cpu_ms", "gpu_ms"))
        rows.append(_row("kernel", kernel.get("kernel"), cpu_ms, gpu_ms))
    for index, op in enumerate(gpu_ops["ops"]):
        where = f"ops[{index}]"
        cpu_ms, gpu_ms = (_milliseconds(function, op, key, where) for key in ("cpu_ms", "cuda_ms"))
        torch_ms = op.get("torch_cuda_ms")  # None where PyTorch had no GPU
        if torch_ms is not None:
            torch_ms = _milliseconds(function, op, "torch_cuda_ms", where)
        rows.append(_row("op", op.get("op"), cpu_ms, gpu_ms, torch_ms))
    return (rows + _train_step_rows(function, gpu_ops["train_step"])
            + _vgg16_step_rows(function, gpu_ops.get("vgg16_step")))


# --- pictures -----------------------------------------------------------------------------------------
def _dumbbells(axes, cases, series, notes, notes_heading):
    """One row per case (the first on top): a grey line joining the case's times and a dot per series;
    the notes stand in a column right of the axes, under ``notes_heading``.
    ``series`` is [(label, color, marker, [ms or None per case])]."""
    positions = range(len(cases))
    for position in positions:
        times = [values[position] for _, _, _, values in series if values[position] is not None]
        axes.plot([min(times), max(times)], [position, position], color="0.75", linewidth=2, zorder=1)
        # x in axes units (just right of the frame), y in data units (the case's row)
        axes.annotate(notes[position], (1.02, position), xycoords=axes.get_yaxis_transform(), va="center",
                      fontsize=8)
    axes.annotate(notes_heading, (1.02, 1.0), xycoords="axes fraction", va="bottom", fontsize=8,
                  style="italic")
    for label, color, marker, values in series:
        shown = [(value, position) for position, value in zip(positions, values) if value is not None]
        if shown:
            axes.scatter(*zip(*shown), color=color, marker=marker, label=label, zorder=2)
    axes.set_xscale("log")
    axes.set_yticks(list(positions), cases, fontsize=8)
    axes.set_ylim(len(cases) - 0.5, -0.5)  # the first case on top, as in the table
    axes.grid(axis="x", which="both", alpha=0.3)


def cpu_torch_times(cpu_ops, title=None, save=None, dpi=100):
    """minicnn against PyTorch on the CPU, per layer: both times (ms, log axis) and, beside each row,
    ratio = torch time / minicnn time (1.0 is parity, 0.5 is minicnn taking twice as long).

    ``cpu_ops`` is the parsed ``cpu_ops.json`` of ``benchmarks/bench_ops.py`` (or its "results" list, or the
    whole ``load_benchmark_results`` dict).

    >>> cpu_torch_times(load_benchmark_results("benchmarks/results"), save="runs/cpu_ops.png")
    """
    function = "cpu_torch_times"
    if isinstance(cpu_ops, Mapping) and "cpu_ops" in cpu_ops:
        cpu_ops = cpu_ops["cpu_ops"]
    results = cpu_ops.get("results") if isinstance(cpu_ops, Mapping) else cpu_ops
    if not isinstance(results, list):
        raise TypeError(f"{function}: cpu_ops must be what bench_ops.py writes (a dict with a 'results' "
                        f"list) or that list, got {type(cpu_ops).__name__}")
    if not results:
        raise ValueError(f"{function}: cpu_ops holds no results; expected at least one benchmark case")
    ours = [_milliseconds(function, row, "minicnn_ms", f"results[{i}]") for i, row in enumerate(results)]
    theirs = [_milliseconds(function, row, "torch_ms", f"results[{i}]") for i, row in enumerate(results)]
    cases = [str(row.get("case")) for row in results]

    figure = new_figure(function, (8.0, 0.35 * len(cases) + 1.8), dpi)
    axes = figure.add_subplot(1, 1, 1)
    series = [("minicnn (NumPy)", _COLORS["cpu"], "o", ours), ("PyTorch", _COLORS["torch"], "x", theirs)]
    ratios = [f"{torch_ms / minicnn_ms:.2f}×" for minicnn_ms, torch_ms in zip(ours, theirs)]
    _dumbbells(axes, cases, series, ratios, "torch / minicnn")
    axes.set_xlabel("milliseconds, forward + backward (log scale)")
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(title if title is not None else "minicnn against PyTorch, both on the CPU")
    figure.tight_layout()
    save_figure(function, figure, save)
    return figure


_PANELS = {"kernel": "kernels: our CUDA kernel against the NumPy kernel of the same name",
           "op": "ops through minicnn, forward + backward",
           "model": "a model: one SGD training step"}


def _speedup_note(speedup):
    return f"{speedup:.3g}× faster" if speedup >= 1 else f"{1 / speedup:.3g}× slower"


def cpu_gpu_times(gpu_ops, title=None, save=None, dpi=100):
    """CPU against GPU from ``bench_gpu.py``'s results: one panel per table (kernels, ops, the model), each
    case's CPU and GPU times as two dots on a shared log axis, PyTorch CUDA as a cross where it ran, and
    the speed-up (CPU time / GPU time) beside each row.

    ``gpu_ops`` is the parsed ``gpu_ops.json`` (or the whole ``load_benchmark_results`` dict).

    >>> cpu_gpu_times(load_benchmark_results("benchmarks/results"), save="runs/cpu_gpu.png")
    """
    function = "cpu_gpu_times"
    rows = cpu_gpu_rows(gpu_ops)
    if not rows:
        raise ValueError(f"{function}: gpu_ops holds no timed case (its kernels, ops and train_step are "
                         "all empty)")
    machine = _gpu_tables(function, gpu_ops).get("machine")
    tables = [table for table in _PANELS if any(row["table"] == table for row in rows)]
    counts = [sum(row["table"] == table for row in rows) for table in tables]

    figure = new_figure(function, (9.0, 0.3 * len(rows) + 1.0 * len(tables) + 1.0), dpi)
    figure.set_layout_engine("constrained")  # makes room for the legend above the panels
    grid = figure.add_gridspec(len(tables), 1, height_ratios=counts)
    first = None
    for index, table in enumerate(tables):
        axes = figure.add_subplot(grid[index], sharex=first)
        first = first or axes
        chosen = [row for row in rows if row["table"] == table]
        series = [("CPU (NumPy)", _COLORS["cpu"], "o", [row["cpu_ms"] for row in chosen]),
                  ("GPU (minicnn CUDA)", _COLORS["gpu"], "o", [row["gpu_ms"] for row in chosen])]
        if any(row["torch_gpu_ms"] is not None for row in chosen):
            series.append(("PyTorch CUDA", _COLORS["torch"], "x", [row["torch_gpu_ms"] for row in chosen]))
        notes = [_speedup_note(row["speedup"]) for row in chosen]
        _dumbbells(axes, [row["case"] for row in chosen], series, notes, "GPU against CPU")
        axes.set_title(_PANELS[table], fontsize=9, loc="left")
    axes.set_xlabel("milliseconds (log scale): the gap between the dots is the speed-up")
    legend = {}  # one legend for all panels: PyTorch CUDA may appear in the ops panel only
    for panel in figure.axes:
        handles, labels = panel.get_legend_handles_labels()
        legend.update(zip(labels, handles))
    figure.legend(list(legend.values()), list(legend), loc="outside upper right", ncols=len(legend),
                  fontsize=8)
    gpu_name = machine.get("gpu") if isinstance(machine, Mapping) else None
    default_title = "CPU against GPU" + (f" ({gpu_name})" if gpu_name else "")
    figure.suptitle(title if title is not None else default_title, x=0.02, ha="left")
    save_figure(function, figure, save)
    return figure
