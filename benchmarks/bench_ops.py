"""CPU kernels against PyTorch CPU, in the same process: forward + backward throughput ratios.

    python benchmarks/bench_ops.py [--repeats 5] [--json benchmarks/results/cpu_ops.json]

For each case both libraries run forward and backward on the same float32
inputs with the same number of threads (BLAS and torch's intra-op pool are
both left at their defaults unless --threads is given); after one warm-up run the median
of ``--repeats`` runs is reported.  ratio = torch time / minicnn time, so 1.0
means parity and higher is better for minicnn.
"""
import argparse
import json
import platform
import statistics
import time

import numpy as np

import minicnn
import minicnn.nn.functional as F

# (name, input shape, weight shape, conv kwargs): VGG-16 stages at batch 8, a ResNet stem, MobileNet depthwise.
CONV_CASES = [
    ("vgg conv1_2  8x64x112x112", (8, 64, 112, 112), (64, 64, 3, 3), dict(padding=1)),
    ("vgg conv2_2  8x128x56x56", (8, 128, 56, 56), (128, 128, 3, 3), dict(padding=1)),
    ("vgg conv3_2  8x256x28x28", (8, 256, 28, 28), (256, 256, 3, 3), dict(padding=1)),
    ("vgg conv4_2  8x512x14x14", (8, 512, 14, 14), (512, 512, 3, 3), dict(padding=1)),
    ("resnet stem  8x3x224x224 7x7/2", (8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    ("resnext 3x3 g32 8x128x56x56", (8, 128, 56, 56), (128, 4, 3, 3), dict(padding=1, groups=32)),
    ("mobilenet dw 8x144x56x56", (8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144)),
]
POOL_CASES = [
    ("max_pool 3/2 8x64x112x112", (8, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool 2/2 8x128x56x56", (8, 128, 56, 56), dict(kernel_size=2, stride=2)),
]


def median_seconds(run, repeats):
    run()  # warm-up: allocator, BLAS thread pool, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_pair(x_shape, w_shape, kwargs, torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = (rng.standard_normal(w_shape, dtype=np.float32) * 0.1).astype(np.float32)
    ours_x, ours_w = minicnn.Tensor(x, requires_grad=True), minicnn.Tensor(w, requires_grad=True)
    theirs_x, theirs_w = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)

    def ours():
        y = F.conv2d(ours_x, ours_w, **kwargs)
        y.backward(np.ones(y.shape, dtype=np.float32))
        ours_x.grad = ours_w.grad = None

    def theirs():
        y = torch.nn.functional.conv2d(theirs_x, theirs_w, **kwargs)
        y.backward(torch.ones_like(y))
        theirs_x.grad = theirs_w.grad = None

    return ours, theirs


def pool_pair(x_shape, kwargs, torch):
    x = np.random.default_rng(0).standard_normal(x_shape, dtype=np.float32)
    ours_x, theirs_x = minicnn.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)

    def ours():
        y = F.max_pool2d(ours_x, **kwargs)
        y.backward(np.ones(y.shape, dtype=np.float32))
        ours_x.grad = None

    def theirs():
        y = torch.nn.functional.max_pool2d(theirs_x, **kwargs)
        y.backward(torch.ones_like(y))
        theirs_x.grad = None

    return ours, theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("bench_ops: PyTorch is the reference here; install it with pip install -e '.[test]'")
    if args.threads:
        torch.set_num_threads(args.threads)

    results = []
    cases = [(name, *conv_pair(x, w, kw, torch)) for name, x, w, kw in CONV_CASES]
    cases += [(name, *pool_pair(x, kw, torch)) for name, x, kw in POOL_CASES]
    print(f"{'case (forward + backward, float32)':40s} {'minicnn ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    for name, ours, theirs in cases:
        ours_s, theirs_s = median_seconds(ours, args.repeats), median_seconds(theirs, args.repeats)
        results.append(dict(case=name, minicnn_ms=ours_s * 1e3, torch_ms=theirs_s * 1e3, ratio=theirs_s / ours_s))
        print(f"{name:40s} {ours_s * 1e3:11.1f} {theirs_s * 1e3:9.1f} {theirs_s / ours_s:6.2f}")
    if args.json:
        meta = dict(machine=platform.machine(), processor=platform.processor(), python=platform.python_version(),
                    numpy=np.__version__, torch=torch.__version__, torch_threads=torch.get_num_threads())
        with open(args.json, "w") as file:
            json.dump(dict(meta=meta, results=results), file, indent=1)


if __name__ == "__main__":
    main()
