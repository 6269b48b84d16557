"""Our CUDA kernels on a GPU: each checked against its NumPy twin, then timed.

    python benchmarks/bench_gpu.py [--repeats 50] [--json benchmarks/results/gpu_ops.json]
    python benchmarks/bench_gpu.py --smoke     # tiny sizes, one repeat: the script itself runs

Four tables, all float32:

1. kernels: every kernel of the CUDA kernel set on inputs large enough to fill
   the GPU and outgrow its L2 cache, and the NumPy kernel of the same name on the
   same inputs.  Each row gives the relative error max|gpu − cpu| / max|cpu|,
   both times, the speed-up, and the bandwidth the GPU kernel reached (the
   fewest bytes it must read and write, over its time; the card's copy
   bandwidth, measured first, is the ceiling).
2. GEMM: the two teaching SGEMMs of kernels/gemm.cu (16×16 shared-memory
   tiles; "teaching SGEMM", the register-blocked one ``use_teaching_gemm`` runs)
   against cuBLAS (``cupy.matmul``): error and TFLOP/s.
3. ops: forward + backward through minicnn on "cuda", on "cpu", and through
   PyTorch on CUDA where it is installed with a GPU (ratio = torch / minicnn).
4. train step: one SGD step of the main job's model (VGG-11-BN, width 0.25,
   batch 64, 32×32) on each device; and of VGG-16 at 224×224, batch 32, on
   minicnn's GPU and CPU and on PyTorch + cuDNN (TF32 off), as issue 14 asks.

GPU times come from CUDA events around the call after a warm-up call
(compilation, allocation and cuBLAS handles stay out), the median of
``--repeats``; CPU times from the host clock, the median of ``--cpu-repeats``.
With ``--smoke`` (CI, the emulator) the sizes shrink and the host clock is used.
"""
import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minicnn
import minicnn.nn.functional as F
from minicnn import cuda, optim
from minicnn.backend import cpu as cpu_kernels

FLOAT = np.float32
BYTES = np.dtype(FLOAT).itemsize


# --- timing ----------------------------------------------------------------------
class Clock:
    """Median milliseconds of a callable: CUDA events on a GPU, the host clock otherwise."""

    def __init__(self, cupy, repeats, cpu_repeats, events=True):
        self.cupy, self.repeats, self.cpu_repeats = cupy, repeats, cpu_repeats
        self.events = events and hasattr(cupy.cuda, "Event")

    def synchronize(self):
        if self.events:
            self.cupy.cuda.Device().synchronize()

    def gpu(self, run):
        run()
        self.synchronize()
        times = []
        for _ in range(self.repeats):
            if self.events:
                start, stop = self.cupy.cuda.Event(), self.cupy.cuda.Event()
                start.record()
                run()
                stop.record()
                stop.synchronize()
                times.append(self.cupy.cuda.get_elapsed_time(start, stop))
            else:
                began = time.perf_counter()
                run()
                times.append((time.perf_counter() - began) * 1e3)
        return statistics.median(times)

    def cpu(self, run, warm_up=True):
        if warm_up:
            run()
        times = []
        for _ in range(self.cpu_repeats):
            began = time.perf_counter()
            run()
            times.append((time.perf_counter() - began) * 1e3)
        return statistics.median(times)


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return math.inf
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    error = float(np.abs(actual - expected).max(initial=0.0)) / scale
    return error if np.isfinite(actual).all() == np.isfinite(expected).all() else math.inf


def first_output(result):
    return result[0] if isinstance(result, tuple) else result


# --- 1. the kernel set -------------------------------------------------------------
def kernel_cases(smoke):
    """(name, kernel, args built from rng, minimum bytes moved): sizes that fill an H100 and pass its L2."""
    rng = np.random.default_rng(0)
    n, c, h = (2, 8, 12) if smoke else (32, 64, 112)  # 32x64x112x112: 25.7 M values, 103 MB
    x = rng.standard_normal((n, c, h, h), dtype=FLOAT)
    gy = rng.standard_normal(x.shape, dtype=FLOAT)
    size = x.size * BYTES
    conv_n, conv_c, conv_h = (2, 4, 9) if smoke else (16, 64, 56)  # columns: 9 x 3.2 M values
    conv_x = rng.standard_normal((conv_n, conv_c, conv_h, conv_h), dtype=FLOAT)
    conv_geometry = ((3, 3), (1, 1), (1, 1), (1, 1), (conv_h, conv_h))
    cols = cpu_kernels.im2col(conv_x, *conv_geometry)
    half = h // 2
    pool_y, pool_argmax = cpu_kernels.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), (half, half))
    pool_gy = rng.standard_normal(pool_y.shape, dtype=FLOAT)
    depthwise_w = rng.standard_normal((c, 1, 3, 3), dtype=FLOAT)
    ncl = x.reshape(n, c, -1)
    mean, _, invstd = cpu_kernels.batch_norm_statistics(ncl, 1e-5)
    weight = rng.standard_normal(c, dtype=FLOAT)
    classes, batch = (10, 8) if smoke else (1000, 4096)
    logits = rng.standard_normal((batch, classes), dtype=FLOAT)
    target = rng.integers(0, classes, batch)
    _, log_probs, _ = cpu_kernels.cross_entropy_forward(logits, target, None, -100, 0.1)
    lrn_y, lrn_scale = cpu_kernels.local_response_norm_forward(x, 5, 1e-4, 0.75, 2.0)
    return [
        ("relu_forward", "relu_forward", (x,), 2 * size),
        ("relu_backward", "relu_backward", (gy, x), 3 * size),
        ("hardswish_forward", "hardswish_forward", (x,), 2 * size),
        ("hardswish_backward", "hardswish_backward", (gy, x), 3 * size),
        ("dropout_mask p=0.5", "dropout_mask", (x.shape, 0.5, 1234, 0, FLOAT), size),
        ("im2col 3x3", "im2col", (conv_x, *conv_geometry), conv_x.nbytes + cols.nbytes),
        ("col2im 3x3", "col2im", (cols, conv_x.shape, *conv_geometry[:4]), conv_x.nbytes + cols.nbytes),
        ("max_pool2d_forward 3/2", "max_pool2d_forward", (x, (3, 3), (2, 2), (1, 1), (1, 1), (half, half)),
         size + 2 * pool_y.nbytes),
        ("max_pool2d_backward 3/2", "max_pool2d_backward",
         (pool_gy, pool_argmax, x.shape, (3, 3), (2, 2), (1, 1), (1, 1)), size + 2 * pool_y.nbytes),
        ("avg_pool2d_forward 3/2", "avg_pool2d_forward", (x, (3, 3), (2, 2), (1, 1), (half, half)),
         size + pool_y.nbytes),
        ("adaptive_avg_pool2d_forward 1x1", "adaptive_avg_pool2d_forward", (x, (1, 1)), size),
        ("depthwise_conv2d_forward 3x3", "depthwise_conv2d_forward",
         (x, depthwise_w, (1, 1), (1, 1), (1, 1), (h, h)), 2 * size),
        ("batch_norm_statistics", "batch_norm_statistics", (ncl, 1e-5), size),
        ("batch_norm_forward", "batch_norm_forward", (ncl, mean, invstd, weight, weight), 2 * size),
        ("batch_norm_backward", "batch_norm_backward", (gy.reshape(ncl.shape), ncl, mean, invstd, weight, True),
         5 * size),
        ("local_response_norm_forward", "local_response_norm_forward", (x, 5, 1e-4, 0.75, 2.0), 3 * size),
        ("local_response_norm_backward", "local_response_norm_backward",
         (gy, x, lrn_y, lrn_scale, 5, 1e-4, 0.75), 5 * size),
        ("softmax_forward 4096x1000", "softmax_forward", (logits, 1), 2 * logits.nbytes),
        ("cross_entropy_forward 4096x1000", "cross_entropy_forward", (logits, target, None, -100, 0.1),
         2 * logits.nbytes),
        ("cross_entropy_backward 4096x1000", "cross_entropy_backward",
         (np.ones(batch, dtype=FLOAT), log_probs, target, None, -100, 0.1), 2 * logits.nbytes),
    ]


def to_gpu(value, cupy):
    """Arrays go to the GPU; shapes, sizes and hyper-parameters stay as they are."""
    return cupy.asarray(value) if isinstance(value, np.ndarray) else value


def bench_kernels(clock, cupy, gpu_kernels, smoke):
    rows = []
    for label, name, args, minimum_bytes in kernel_cases(smoke):
        gpu_args = [to_gpu(a, cupy) for a in args]
        gpu_result = getattr(gpu_kernels, name)(*gpu_args)
        cpu_result = getattr(cpu_kernels, name)(*args)
        error = relative_error(first_output(gpu_result).get(), first_output(cpu_result))
        gpu_ms = clock.gpu(lambda name=name, gpu_args=gpu_args: getattr(gpu_kernels, name)(*gpu_args))
        cpu_ms = clock.cpu(lambda name=name, args=args: getattr(cpu_kernels, name)(*args))
        rows.append(dict(kernel=label, rel_error=error, gpu_ms=gpu_ms, cpu_ms=cpu_ms, speedup=cpu_ms / gpu_ms,
                         gpu_GBps=minimum_bytes / gpu_ms / 1e6))
        print(f"{label:36s} {error:9.1e} {cpu_ms:10.3f} {gpu_ms:9.4f} {cpu_ms / gpu_ms:8.1f} "
              f"{minimum_bytes / gpu_ms / 1e6:8.0f}", flush=True)
    return rows


def copy_bandwidth(clock, cupy, smoke):
    """GB/s of a device-to-device copy (bytes read + written): the ceiling for the memory-bound kernels."""
    source = cupy.asarray(np.ones(1 << (10 if smoke else 28), dtype=FLOAT))  # 1 GiB on the GPU
    target = cupy.empty_like(source)
    ms = clock.gpu(lambda: cupy.copyto(target, source))
    return 2 * source.nbytes / ms / 1e6


# --- 2. GEMM ----------------------------------------------------------------------
def bench_gemm(clock, cupy, gpu_kernels, smoke):
    rows = []
    for m, k, n in ([(32, 48, 40)] if smoke else [(1024, 1024, 1024), (4096, 4096, 4096), (576, 50176, 64)]):
        rng = np.random.default_rng(1)
        a, b = (cupy.asarray(rng.standard_normal(s, dtype=FLOAT)) for s in ((m, k), (k, n)))
        reference = np.asarray(a.get(), dtype=np.float64) @ np.asarray(b.get(), dtype=np.float64)
        flops = 2.0 * m * n * k
        products = (("tiled SGEMM (lesson 1)", lambda a, b: gpu_kernels.gemm(a, b, kernel="tiled")),
                    ("teaching SGEMM", gpu_kernels.gemm), ("cuBLAS (cupy.matmul)", cupy.matmul))
        for label, product in products:
            error = relative_error(product(a, b).get(), reference)
            ms = clock.gpu(lambda product=product, a=a, b=b: product(a, b))
            rows.append(dict(gemm=label, m=m, k=k, n=n, rel_error=error, gpu_ms=ms, tflops=flops / ms / 1e9))
            print(f"{label:22s} {m:5d}x{k:5d}x{n:5d} {error:9.1e} {ms:9.3f} {flops / ms / 1e9:8.2f}", flush=True)
    return rows


# --- 3. ops through the engine ----------------------------------------------------------
OP_CASES = [
    ("conv 3x3 vgg conv2_2", (32, 128, 56, 56), lambda x, w: F.conv2d(x, w, padding=1), (128, 128, 3, 3)),
    ("conv 7x7/2 resnet stem", (32, 3, 224, 224), lambda x, w: F.conv2d(x, w, stride=2, padding=3), (64, 3, 7, 7)),
    ("conv 3x3 g32 resnext", (32, 128, 56, 56), lambda x, w: F.conv2d(x, w, padding=1, groups=32), (128, 4, 3, 3)),
    ("conv dw 3x3 mobilenet", (32, 144, 56, 56), lambda x, w: F.conv2d(x, w, padding=1, groups=144),
     (144, 1, 3, 3)),
    ("max_pool 3/2", (32, 64, 112, 112), lambda x: F.max_pool2d(x, 3, stride=2, padding=1), None),
    ("batch_norm train", (32, 64, 112, 112), lambda x: F.batch_norm(x, None, None, training=True), None),
]


def bench_ops(clock, cupy, smoke):
    torch = _torch_cuda()
    rows = []
    for name, x_shape, op, w_shape in OP_CASES:
        if smoke:
            x_shape = (1, x_shape[1], 6, 6)
        rng = np.random.default_rng(2)
        arrays = [rng.standard_normal(x_shape, dtype=FLOAT)]
        if w_shape is not None:
            arrays.append((rng.standard_normal(w_shape, dtype=FLOAT) * 0.1).astype(FLOAT))
        times = {}
        outputs = {}
        for device in ("cuda", "cpu"):
            leaves = [minicnn.tensor(a, requires_grad=True, device=device) for a in arrays]

            def step(leaves=leaves, op=op):
                y = op(*leaves)
                y.backward(minicnn.ones_like(y))
                return y

            outputs[device] = step().numpy()
            for leaf in leaves:
                leaf.grad = None
            timer = clock.gpu if device == "cuda" else clock.cpu
            times[device] = timer(step)
        row = dict(op=name, rel_error=relative_error(outputs["cuda"], outputs["cpu"]),
                   cuda_ms=times["cuda"], cpu_ms=times["cpu"], torch_cuda_ms=None, ratio_torch=None)
        if torch is not None:
            leaves = [torch.tensor(a, device="cuda", requires_grad=True) for a in arrays]
            torch_op = _torch_op(torch, name)

            def torch_step(leaves=leaves, torch_op=torch_op):
                y = torch_op(*leaves)
                y.backward(torch.ones_like(y))

            row["torch_cuda_ms"] = _torch_time(torch, torch_step, clock.repeats)
            row["ratio_torch"] = row["torch_cuda_ms"] / row["cuda_ms"]
        rows.append(row)
        torch_text = "-" if row["torch_cuda_ms"] is None else f"{row['torch_cuda_ms']:.3f}"
        print(f"{name:26s} {row['rel_error']:9.1e} {row['cpu_ms']:10.2f} {row['cuda_ms']:9.3f} {torch_text:>9s}",
              flush=True)
    return rows


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    # PyTorch runs cuDNN convolutions in TF32 by default (10-bit mantissa, tensor cores); our kernels and
    # cuBLAS here compute in full float32, so the comparison is made at the same precision.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return torch


def _torch_op(torch, name):
    functional = torch.nn.functional
    return {
        "conv 3x3 vgg conv2_2": lambda x, w: functional.conv2d(x, w, padding=1),
        "conv 7x7/2 resnet stem": lambda x, w: functional.conv2d(x, w, stride=2, padding=3),
        "conv 3x3 g32 resnext": lambda x, w: functional.conv2d(x, w, padding=1, groups=32),
        "conv dw 3x3 mobilenet": lambda x, w: functional.conv2d(x, w, padding=1, groups=144),
        "max_pool 3/2": lambda x: functional.max_pool2d(x, 3, stride=2, padding=1),
        "batch_norm train": lambda x: functional.batch_norm(x, None, None, training=True),
    }[name]


def _torch_time(torch, run, repeats):
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


# --- 4. a training step of the main job -------------------------------------------------------
def sgd_step(build_model, device, images, labels):
    """One SGD training step (forward, cross-entropy, backward, update) of a freshly built model on ``device``."""
    minicnn.manual_seed(0)
    model = build_model().to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = minicnn.tensor(images, device=device), minicnn.tensor(labels, device=device)

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def bench_train_step(clock, smoke):
    from minicnn.models import vgg11_bn

    batch = 1 if smoke else 64
    rng = np.random.default_rng(3)
    images = rng.standard_normal((batch, 1, 32, 32), dtype=FLOAT)
    labels = rng.integers(0, 10, batch)
    rows = []
    for device in ("cuda", "cpu"):
        step = sgd_step(lambda: vgg11_bn(num_classes=10, in_channels=1, width_mult=0.25), device, images, labels)
        timer = clock.gpu if device == "cuda" else clock.cpu
        ms = timer(step)
        rows.append(dict(device=device, batch=batch, step_ms=ms, images_per_s=batch / ms * 1e3))
        print(f"vgg11_bn w0.25 batch {batch} on {device:4s} {ms:9.2f} ms/step {batch / ms * 1e3:9.0f} images/s",
              flush=True)
    return rows


def bench_vgg16_step(clock, smoke, rows, save):
    """One SGD step of VGG-16 (224×224, batch 32): torchvision's on CUDA, then minicnn on cuda and cpu.

    Appends a row to ``rows`` and calls ``save`` after each, the slow CPU step last.
    """
    from minicnn.models import vgg16

    batch, size, width, steps = (1, 32, 1 / 64, 1) if smoke else (32, 224, 1.0, 5)
    rng = np.random.default_rng(4)
    images = rng.standard_normal((batch, 3, size, size), dtype=FLOAT)
    labels = rng.integers(0, 1000, batch)

    def report(framework, device, step_ms):
        rows.append(dict(model="vgg16", framework=framework, device=device, batch=batch, size=size, step_ms=step_ms))
        save()
        mine = [row["step_ms"] for row in rows if (row["framework"], row["device"]) == ("minicnn", "cuda")]
        # > 1: minicnn on the GPU is that many times faster than this row (50x the CPU is issue 14's target);
        # < 1: slower (0.5x PyTorch + cuDNN is the target).
        versus = f"   minicnn on cuda: {step_ms / mine[0]:.2f}x this speed" if mine else ""
        print(f"vgg16 {size}x{size} batch {batch} {framework:8s} {device:4s} {step_ms:10.1f} ms/step{versus}",
              flush=True)

    torch = None if smoke else _torch_cuda()
    torchvision = None
    if torch is not None:
        try:
            import torchvision
        except ImportError:
            pass
    if torchvision is not None:
        model = torchvision.models.vgg16().cuda()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.tensor(images, device="cuda"), torch.tensor(labels, device="cuda")

        def torch_step(model=model, optimizer=optimizer, x=x, y=y):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        torch_ms = _torch_time(torch, torch_step, steps)
        del torch_step, model, optimizer, x, y  # PyTorch's memory back before minicnn allocates its own
        torch.cuda.empty_cache()
    for device in ("cuda", "cpu"):
        step = sgd_step(lambda: vgg16(width_mult=width), device, images, labels)
        timer = Clock(clock.cupy, steps, 1, clock.events)
        # One timed CPU step without a warm-up: at full size it takes seconds, and GPU time is short.
        report("minicnn", device, timer.gpu(step) if device == "cuda" else timer.cpu(step, warm_up=smoke))
        if device == "cuda" and torchvision is not None:
            report("torch", "cuda", torch_ms)
        del step  # the GPU model freed before the CPU one is built
    return rows


def describe_machine(cupy):
    properties = cupy.cuda.runtime.getDeviceProperties(0)
    name = properties["name"]
    return dict(gpu=name.decode() if isinstance(name, bytes) else str(name),
                multiprocessors=int(properties["multiProcessorCount"]),
                memory_GiB=round(int(properties["totalGlobalMem"]) / 2**30, 1),
                driver=int(cupy.cuda.runtime.driverGetVersion()),
                cuda_runtime=int(cupy.cuda.runtime.runtimeGetVersion()), cupy=cupy.__version__,
                numpy=np.__version__, python=platform.python_version(), cpu=platform.processor() or platform.machine())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="GPU timings: median of this many (default 50)")
    parser.add_argument("--cpu-repeats", type=int, default=3, help="CPU timings: median of this many (default 3)")
    parser.add_argument("--json", default=None, help="also write everything to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat, host clock")
    args = parser.parse_args(argv)
    if not cuda.is_available():
        raise SystemExit(f"bench_gpu: needs a GPU: {cuda.unavailable_reason()}")
    import cupy

    from minicnn.backend.cuda import kernels as gpu_kernels

    repeats, cpu_repeats = (1, 1) if args.smoke else (args.repeats, args.cpu_repeats)
    clock = Clock(cupy, repeats, cpu_repeats, events=not args.smoke)
    machine = {} if args.smoke else describe_machine(cupy)
    print(json.dumps(machine))
    results = dict(machine=machine, copy_GBps=None, repeats=repeats, cpu_repeats=cpu_repeats,
                   kernels=[], gemm=[], ops=[], train_step=[], vgg16_step=[])

    def save():  # after every table: GPU time is short, and a run cut off still leaves what it measured
        if args.json:
            with open(args.json, "w") as file:
                json.dump(results, file, indent=1)

    bandwidth = None if args.smoke else copy_bandwidth(clock, cupy, args.smoke)
    if bandwidth is not None:
        print(f"device-to-device copy: {bandwidth:.0f} GB/s (bytes read + written)")
    results["copy_GBps"] = bandwidth
    print(f"\n{'kernel (float32)':36s} {'rel err':>9s} {'numpy ms':>10s} {'cuda ms':>9s} {'speedup':>8s} {'GB/s':>8s}")
    results["kernels"] = kernels = bench_kernels(clock, cupy, gpu_kernels, args.smoke)
    save()
    print(f"\n{'GEMM':22s} {'M x K x N':>17s} {'rel err':>9s} {'ms':>9s} {'TFLOP/s':>8s}")
    results["gemm"] = gemm = bench_gemm(clock, cupy, gpu_kernels, args.smoke)
    save()
    print("\nPyTorch with TF32 off (full float32, as ours)")
    print(f"\n{'op (forward + backward)':26s} {'rel err':>9s} {'cpu ms':>10s} {'cuda ms':>9s} {'torch ms':>9s}")
    results["ops"] = ops = bench_ops(clock, cupy, args.smoke)
    save()
    print()
    results["train_step"] = bench_train_step(clock, args.smoke)
    save()
    print()
    bench_vgg16_step(clock, args.smoke, results["vgg16_step"], save)
    worst = max(row["rel_error"] for row in kernels + gemm + ops)
    print(f"\nworst relative error against NumPy / float64: {worst:.1e}")
    return results


if __name__ == "__main__":
    main()
