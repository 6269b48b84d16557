"""Benchmark bars: minicnn's speed relative to PyTorch, one bar per case, a line at parity.

``benchmarks/bench_ops.py`` writes ``ratio = torch time / minicnn time``: 1.0 is as fast as PyTorch,
0.5 is twice as slow, above 1.0 is faster.
"""
import math
import numbers
from collections.abc import Mapping

from minicnn.viz._figure import new_figure, save_figure

_FUNCTION = "benchmark_bars"


def is_positive_number(value):
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value > 0


def benchmark_ratio(result, index):
    """(case name, ratio) of one result dict: its "ratio", or torch_ms / minicnn_ms."""
    if not isinstance(result, Mapping) or "case" not in result:
        raise ValueError(f"{_FUNCTION}: result {index} must be a dict with 'case' and 'ratio' "
                         f"(or 'minicnn_ms' and 'torch_ms'), got {result!r:.100}")
    if "ratio" in result:
        ratio = result["ratio"]
    elif "minicnn_ms" in result and "torch_ms" in result:
        if not (is_positive_number(result["minicnn_ms"]) and is_positive_number(result["torch_ms"])):
            raise ValueError(f"{_FUNCTION}: result {index} ({result['case']!r}) needs positive times, got "
                             f"minicnn_ms={result['minicnn_ms']!r}, torch_ms={result['torch_ms']!r}")
        ratio = result["torch_ms"] / result["minicnn_ms"]
    else:
        raise ValueError(f"{_FUNCTION}: result {index} ({result['case']!r}) needs 'ratio' or both "
                         f"'minicnn_ms' and 'torch_ms', got keys {sorted(result)}")
    if not is_positive_number(ratio):
        raise ValueError(f"{_FUNCTION}: result {index} ({result['case']!r}) has ratio {ratio!r}; expected a "
                         "positive finite number")
    return str(result["case"]), float(ratio)


def benchmark_bars(results, title=None, save=None, dpi=100):
    """Horizontal bars, one per benchmark case (top to bottom in the given order), of speed relative to
    PyTorch, with a dashed line at 1.0 (parity); bars at or past parity are green, slower ones orange.

    ``results`` is a list of dicts with "case" and "ratio" (or "minicnn_ms" and "torch_ms"), or the whole
    JSON that ``benchmarks/bench_ops.py`` writes (its "results" list is used).

    >>> benchmark_bars(json.load(open("benchmarks/results/cpu_ops.json")), save="runs/cpu_ops.png")
    """
    if isinstance(results, Mapping) and "results" in results:
        results = results["results"]
    if isinstance(results, (str, bytes, Mapping)) or not hasattr(results, "__iter__"):
        raise TypeError(f"{_FUNCTION}: results must be a list of result dicts, got {type(results).__name__}")
    pairs = [benchmark_ratio(result, index) for index, result in enumerate(results)]
    if not pairs:
        raise ValueError(f"{_FUNCTION}: results is empty; expected at least one benchmark case")
    cases, ratios = zip(*pairs)

    figure = new_figure(_FUNCTION, (8.0, 0.4 * len(cases) + 1.5), dpi)
    axes = figure.add_subplot(1, 1, 1)
    positions = range(len(cases))
    colors = ["tab:green" if ratio >= 1.0 else "tab:orange" for ratio in ratios]
    bars = axes.barh(positions, ratios, color=colors)
    axes.bar_label(bars, labels=[f"{ratio:.2f}×" for ratio in ratios], padding=3, fontsize=8)
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1, label="parity with PyTorch")
    axes.set_yticks(list(positions), cases, fontsize=8)
    axes.invert_yaxis()  # the first case on top, as in the table
    axes.set_xlim(0, max(max(ratios), 1.0) * 1.15)  # room for the labels and the parity line
    axes.set_xlabel("speed relative to PyTorch (torch time / minicnn time; > 1 is faster)")
    axes.legend(loc="lower right")
    axes.set_title(title if title is not None else "minicnn vs PyTorch")
    figure.tight_layout()
    save_figure(_FUNCTION, figure, save)
    return figure
