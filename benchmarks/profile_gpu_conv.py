"""Where a VGG conv's forward + backward time goes on the GPU, piece by piece (needs a GPU and CuPy).

    python benchmarks/profile_gpu_conv.py      # results/gpu_profile_conv.log came from this, on an H200

Times conv2d through minicnn (forward; forward + backward with a gradient of ones; with sum().backward()),
then each step of it alone: im2col, the three matrix products (forward, weight gradient, column gradient),
col2im; and batch norm in training mode against CuPy's own mean over the same array.  GPU times are
cupyx.profiler.benchmark's (CUDA events, 3 warm-ups, 20 repeats).
"""
import cupy
from cupyx.profiler import benchmark

import minicnn
import minicnn.nn.functional as F
from minicnn.backend.cuda import kernels as K


def t(name, fn, n=20):
    r = benchmark(fn, n_repeat=n, n_warmup=3)
    print(f"{name:45s} gpu {r.gpu_times.mean()*1e3:9.3f} ms   cpu {r.cpu_times.mean()*1e3:9.3f} ms", flush=True)


rng = cupy.random.default_rng(0)
for shape, wshape, kw in [((32, 128, 56, 56), (128, 128, 3, 3), dict(padding=1)),
                          ((32, 64, 112, 112), None, None)]:
    x = rng.standard_normal(shape, dtype=cupy.float32)
    if wshape is None:
        xt = minicnn.tensor(x, requires_grad=True, device="cuda")
        t("batch_norm fwd", lambda: F.batch_norm(xt, None, None, training=True))

        def bn():
            y = F.batch_norm(xt, None, None, training=True)
            y.sum().backward()
        t("batch_norm fwd+bwd", bn)
        t("K.batch_norm_statistics?", lambda: x.mean(axis=(0, 2, 3)))
        continue
    w = rng.standard_normal(wshape, dtype=cupy.float32) * 0.1
    xt = minicnn.tensor(x, requires_grad=True, device="cuda")
    wt = minicnn.tensor(w, requires_grad=True, device="cuda")
    t("conv fwd", lambda: F.conv2d(xt, wt, **kw))

    def fb():
        y = F.conv2d(xt, wt, **kw)
        y.backward(cupy.ones(y.shape, cupy.float32))
    t("conv fwd+bwd (backward with ones grad)", fb)

    def fbs():
        y = F.conv2d(xt, wt, **kw)
        y.sum().backward()
    t("conv fwd+bwd (sum().backward())", fbs)
    cols = K.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), (56, 56))
    print("cols", cols.shape, cols.dtype, cols.flags.c_contiguous)
    t("im2col", lambda: K.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), (56, 56)))
    c3 = cols.reshape(1, 1152, -1)
    t("K.matmul (1,128,1152)@(1,1152,M)", lambda: K.matmul(w.reshape(1, 128, -1), c3))
    t("cupy.matmul 2-D", lambda: cupy.matmul(w.reshape(128, -1), cols.reshape(1152, -1)))
    gy = rng.standard_normal((1, 128, c3.shape[2]), dtype=cupy.float32)
    t("K.matmul dW gy@cols^T", lambda: K.matmul(gy, c3.transpose(0, 2, 1)))
    t("K.matmul dcols W^T@gy", lambda: K.matmul(w.reshape(1, 128, -1).transpose(0, 2, 1), gy))
    gc = cols.reshape(128, 3, 3, 32, 56, 56)
    t("col2im", lambda: K.col2im(gc, x.shape, (3, 3), (1, 1), (1, 1), (1, 1)))
    t("transpose copy of y", lambda: cupy.ascontiguousarray(x.transpose(1, 0, 2, 3)))
