"""CPU kernels against PyTorch CPU, in the same process: forward + backward throughput ratios.

    python benchmarks/bench_ops.py [--repeats 5] [--save]          # the full run, ~5 minutes on 2 cores
    python benchmarks/bench_ops.py --quick                          # every case at batch 1, 1 repeat (CI)

For each case both libraries run forward and backward on the same float32 inputs,
with as many threads as the process may use cores (torch's intra-op pool set to the
same count; --threads changes both).  After one warm-up run the median of
``--repeats`` runs is reported, with the fastest and slowest.  ratio = torch time /
minicnn time: 1.0 is parity, higher is better for minicnn.

Two tables:
  ops          every kernel family on real network shapes, minicnn as it runs by default
               (conv_algorithm "auto": the algorithm column says what it picked);
  algorithms   each 3×3 stride-1 VGG conv under every algorithm that can compute it
               (im2col, winograd), and each depthwise conv (im2col, direct), in direct-convolution
               GFLOP/s, so a student sees when each wins.
--save writes benchmarks/results/cpu_ops.{json,md,png}; --json/--markdown/--plot pick the paths.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn.backend import cpu

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# (name, input shape, weight shape, conv keyword arguments).  The eight VGG shapes are the targets:
# CIFAR-size maps at batch 32 and ImageNet-size maps at batch 8.
VGG_CASES = [
    ("vgg conv1_2 32x64x32x32", (32, 64, 32, 32)), ("vgg conv2_2 32x128x16x16", (32, 128, 16, 16)),
    ("vgg conv3_2 32x256x8x8", (32, 256, 8, 8)), ("vgg conv4_2 32x512x4x4", (32, 512, 4, 4)),
    ("vgg conv1_2  8x64x112x112", (8, 64, 112, 112)), ("vgg conv2_2  8x128x56x56", (8, 128, 56, 56)),
    ("vgg conv3_2  8x256x28x28", (8, 256, 28, 28)), ("vgg conv4_2  8x512x14x14", (8, 512, 14, 14)),
]
CONV_CASES = [(name, shape, (shape[1], shape[1], 3, 3), dict(padding=1)) for name, shape in VGG_CASES] + [
    ("resnet stem  8x3x224x224 7x7/2", (8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    ("resnext 3x3 g32 8x128x56x56", (8, 128, 56, 56), (128, 4, 3, 3), dict(padding=1, groups=32)),
    ("mobilenet dw 8x144x56x56", (8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144)),
    ("mobilenet dw/2 8x96x112x112", (8, 96, 112, 112), (96, 1, 3, 3), dict(stride=2, padding=1, groups=96)),
]
POOL_CASES = [
    ("max_pool 3/2 8x64x112x112", (8, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool 2/2 8x128x56x56", (8, 128, 56, 56), dict(kernel_size=2, stride=2)),
]
BATCH_NORM_CASES = [("batch_norm 32x64x32x32", (32, 64, 32, 32)), ("batch_norm 8x128x56x56", (8, 128, 56, 56))]
ALGORITHMS = ("im2col", "winograd")  # for the 3×3 VGG layers
DEPTHWISE_ALGORITHMS = ("im2col", "direct")  # for MobileNet's depthwise layers


def algorithm_cases():
    """(name, x shape, weight shape, kwargs, algorithms): each layer with every algorithm that computes it."""
    for name, x_shape, w_shape, kwargs in CONV_CASES:
        if name.startswith("vgg"):
            yield name, x_shape, w_shape, kwargs, ALGORITHMS
        elif name.startswith("mobilenet dw"):
            yield name, x_shape, w_shape, kwargs, DEPTHWISE_ALGORITHMS


def median_seconds(run, repeats):
    """Median seconds of ``repeats`` calls after one warm-up (allocator, BLAS thread pool, caches)."""
    return timed(run, repeats)["median"]


def timed(run, repeats):
    """{"median", "min", "max"} seconds of ``repeats`` calls of ``run`` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return dict(median=statistics.median(times), min=min(times), max=max(times))


def quick_shape(shape):
    """--quick: the same layer at batch 1."""
    return (1, *shape[1:])


def forward_backward(forward, inputs, ones_like):
    """A callable running forward on ``inputs`` and backward from a gradient of ones, clearing the grads."""
    def run():
        y = forward(*inputs)
        y.backward(ones_like(y))
        for tensor in inputs:
            tensor.grad = None
    return run


def pair(make_inputs, ours, theirs, torch):
    """(minicnn run, torch run) for the op ``ours``/``theirs`` on the same float32 inputs."""
    arrays = make_inputs(np.random.default_rng(0))
    ours_inputs = [minicnn.Tensor(a, requires_grad=True) for a in arrays]
    theirs_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return (forward_backward(ours, ours_inputs, lambda y: np.ones(y.shape, dtype=np.float32)),
            forward_backward(theirs, theirs_inputs, torch.ones_like))


def conv_inputs(x_shape, w_shape):
    def make(rng):
        return [rng.standard_normal(x_shape, dtype=np.float32),
                (rng.standard_normal(w_shape, dtype=np.float32) * 0.1).astype(np.float32)]
    return make


def conv_gflops(x_shape, w_shape, kwargs):
    """Forward + backward (3 products of the direct convolution's size) in GFLOP."""
    stride, padding = kwargs.get("stride", 1), kwargs.get("padding", 0)
    n, _, h, w = x_shape
    out_channels, per_group, kh, kw = w_shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    return 3 * 2 * n * out_channels * per_group * kh * kw * oh * ow / 1e9


def chosen_algorithm(x_shape, w_shape, kwargs):
    return cpu.conv2d_algorithm(x_shape, w_shape, (kwargs.get("stride", 1),) * 2, (1, 1), kwargs.get("groups", 1))


def op_cases(torch, quick):
    """(case, family, minicnn run, torch run, extra fields) for every op case."""
    functional = torch.nn.functional
    for name, x_shape, w_shape, kwargs in CONV_CASES:
        x_shape = quick_shape(x_shape) if quick else x_shape
        ours, theirs = pair(conv_inputs(x_shape, w_shape), lambda x, w, k=kwargs: F.conv2d(x, w, **k),
                            lambda x, w, k=kwargs: functional.conv2d(x, w, **k), torch)
        extra = dict(algorithm=chosen_algorithm(x_shape, w_shape, kwargs), gflop=conv_gflops(x_shape, w_shape, kwargs))
        yield name, "conv2d", ours, theirs, extra
    for name, x_shape, kwargs in POOL_CASES:
        x_shape = quick_shape(x_shape) if quick else x_shape
        ours, theirs = pair(lambda rng, s=x_shape: [rng.standard_normal(s, dtype=np.float32)],
                            lambda x, k=kwargs: F.max_pool2d(x, **k), lambda x, k=kwargs: functional.max_pool2d(x, **k),
                            torch)
        yield name, "max_pool2d", ours, theirs, {}
    for name, x_shape in BATCH_NORM_CASES:
        x_shape = quick_shape(x_shape) if quick else x_shape
        channels = x_shape[1]

        def make(rng, s=x_shape, c=channels):
            return [rng.standard_normal(s, dtype=np.float32), np.ones(c, np.float32), np.zeros(c, np.float32)]

        ours, theirs = pair(make, lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            lambda x, w, b: functional.batch_norm(x, None, None, w, b, training=True), torch)
        yield name, "batch_norm", ours, theirs, {}


def result_row(case, ours, theirs, extra=None):
    return dict(case=case, minicnn_ms=ours["median"] * 1e3, minicnn_min_ms=ours["min"] * 1e3,
                minicnn_max_ms=ours["max"] * 1e3, torch_ms=theirs["median"] * 1e3,
                torch_min_ms=theirs["min"] * 1e3, torch_max_ms=theirs["max"] * 1e3,
                ratio=theirs["median"] / ours["median"], **(extra or {}))


def run_ops(torch, repeats, quick):
    rows = []
    print(f"{'op, forward + backward, float32':36s} {'algorithm':>9s} {'minicnn ms':>11s} {'torch ms':>9s} "
          f"{'ratio':>6s}")
    for case, family, ours, theirs, extra in op_cases(torch, quick):
        theirs_time, ours_time = timed(theirs, repeats), timed(ours, repeats)
        row = result_row(case, ours_time, theirs_time, dict(family=family, **extra))
        rows.append(row)
        print(f"{case:36s} {extra.get('algorithm', ''):>9s} {row['minicnn_ms']:11.1f} {row['torch_ms']:9.1f} "
              f"{row['ratio']:6.2f}", flush=True)
    return rows


def run_algorithms(torch, repeats, quick):
    """Each VGG and depthwise conv under each algorithm that computes it, against the same torch run."""
    rows = []
    print(f"\n{'conv, forward + backward':28s} {'algorithm':>9s} {'ms':>8s} {'GFLOP/s':>8s} {'torch ms':>9s} "
          f"{'ratio':>6s}")
    for name, x_shape, w_shape, kwargs, algorithms in algorithm_cases():
        x_shape = quick_shape(x_shape) if quick else x_shape
        gflop = conv_gflops(x_shape, w_shape, kwargs)
        ours, theirs = pair(conv_inputs(x_shape, w_shape), lambda x, w, k=kwargs: F.conv2d(x, w, **k),
                            lambda x, w, k=kwargs: torch.nn.functional.conv2d(x, w, **k), torch)
        theirs_time = timed(theirs, repeats)
        for algorithm in algorithms:
            with cpu.using_conv_algorithm(algorithm):
                ours_time = timed(ours, repeats)
            row = result_row(f"{name} [{algorithm}]", ours_time, theirs_time,
                             dict(layer=name, algorithm=algorithm, gflop_per_s=gflop / ours_time["median"],
                                  torch_gflop_per_s=gflop / theirs_time["median"]))
            rows.append(row)
            print(f"{name:28s} {algorithm:>9s} {row['minicnn_ms']:8.1f} {row['gflop_per_s']:8.1f} "
                  f"{row['torch_ms']:9.1f} {row['ratio']:6.2f}", flush=True)
    return rows


def machine_description(torch):
    processor = platform.processor()
    try:
        with open("/proc/cpuinfo") as file:
            processor = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                machine=platform.machine(), processor=processor, cores=len(os.sched_getaffinity(0)),
                python=platform.python_version(), numpy=np.__version__, torch=torch.__version__,
                torch_threads=torch.get_num_threads(), minicnn_threads=cpu.num_threads())


def markdown(report):
    meta = report["meta"]
    lines = ["# minicnn against PyTorch on the CPU, forward + backward, float32",
             "",
             f"{meta['date']}, {meta['processor']} ({meta['cores']} cores), NumPy {meta['numpy']}, "
             f"PyTorch {meta['torch']} ({meta['torch_threads']} threads), {meta['repeats']} repeats"
             + (", --quick (batch 1)" if meta["quick"] else ""),
             "", "ratio = PyTorch time / minicnn time: above 1 minicnn is faster.", "",
             "| op | algorithm | minicnn ms (min–max) | PyTorch ms (min–max) | ratio |", "|---|---|---|---|---|"]
    for row in report["results"]:
        lines.append(f"| {row['case']} | {row.get('algorithm', '')} | {row['minicnn_ms']:.1f} "
                     f"({row['minicnn_min_ms']:.1f}–{row['minicnn_max_ms']:.1f}) | {row['torch_ms']:.1f} "
                     f"({row['torch_min_ms']:.1f}–{row['torch_max_ms']:.1f}) | {row['ratio']:.2f} |")
    lines += ["", "Each VGG 3×3 conv and each depthwise conv under each algorithm (GFLOP/s counts the direct "
              "convolution's multiply-adds, so Winograd's are 'effective'):", "",
              "| layer | algorithm | ms | GFLOP/s | PyTorch GFLOP/s | ratio |", "|---|---|---|---|---|---|"]
    for row in report["algorithms"]:
        lines.append(f"| {row['layer']} | {row['algorithm']} | {row['minicnn_ms']:.1f} | {row['gflop_per_s']:.0f} "
                     f"| {row['torch_gflop_per_s']:.0f} | {row['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(report, args, markdown_text, bars, title):
    """The report as --json, its tables as --markdown, ``bars`` (rows with a ratio) as a --plot PNG."""
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(markdown_text)
    if args.plot and bars:
        from minicnn.viz import benchmark_bars

        benchmark_bars(bars, title=title, save=args.plot)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: the cores this process may use)")
    parser.add_argument("--quick", action="store_true", help="every case at batch 1, one repeat (CI)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/cpu_ops.{json,md,png}")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--markdown", default=None, help="write the tables as markdown to this file")
    parser.add_argument("--plot", default=None, help="draw the ratios (minicnn.viz.benchmark_bars) to this PNG")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("bench_ops: PyTorch is the reference here; install it with pip install -e '.[test]'")
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    cpu.set_num_threads(threads)
    repeats = 1 if args.quick else args.repeats
    started = time.perf_counter()
    report = dict(meta=dict(machine_description(torch), repeats=repeats, quick=args.quick),
                  results=run_ops(torch, repeats, args.quick), algorithms=run_algorithms(torch, repeats, args.quick))
    report["meta"]["seconds"] = time.perf_counter() - started
    if args.save:
        args.json = args.json or os.path.join(RESULTS, "cpu_ops.json")
        args.markdown = args.markdown or os.path.join(RESULTS, "cpu_ops.md")
        args.plot = args.plot or os.path.join(RESULTS, "cpu_ops.png")
    write_report(report, args, markdown(report), report["results"] + report["algorithms"],
                 "minicnn vs PyTorch on the CPU, forward + backward")
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
