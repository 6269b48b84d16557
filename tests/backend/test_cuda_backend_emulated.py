"""The CuPy backend's Python side, run end to end on the CPU: no GPU, no CuPy.

``minicnn.backend.cuda.kernels`` is driven through a fake ``cupy`` whose
``RawModule`` hands each launch to the CPU emulator of tests/cuda_emulation
(the unmodified kernels/*.cu compiled with g++).  So each wrapper's argument
list is checked against the kernel's real C signature (count, pointer dtypes,
and the exact width of every scalar, which CuPy packs by NumPy dtype), its
launch configuration is launch.py's, and its result is compared with the NumPy
kernel on the same inputs.  What this cannot catch: CuPy's own behaviour
(allocation, streams) and anything only real GPU hardware shows.
"""
from pathlib import Path

import fake_cupy
import numpy as np
import pytest
from fake_cupy import FakeGpuArray, on_fake_gpu

from minicnn.backend import cpu, kernels_for
from minicnn.backend.cuda import kernels as cuda_kernels
from minicnn.backend.cuda import runtime as cuda_runtime

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulated_gpu(monkeypatch, emulator):
    return fake_cupy.install_emulated(monkeypatch, emulator, REPO / "kernels")


def random(shape, dtype, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def assert_same(gpu_result, cpu_result, dtype):
    if isinstance(cpu_result, tuple):
        assert isinstance(gpu_result, tuple) and len(gpu_result) == len(cpu_result)
        for g, c in zip(gpu_result, cpu_result):
            assert_same(g, c, dtype)
        return
    if cpu_result is None:
        assert gpu_result is None
        return
    assert isinstance(gpu_result, FakeGpuArray), f"expected a GPU array, got {type(gpu_result).__name__}"
    assert gpu_result.shape == np.shape(cpu_result) and gpu_result.dtype == np.asarray(cpu_result).dtype
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}
    np.testing.assert_allclose(np.asarray(gpu_result), np.asarray(cpu_result), **tolerance)


def gpu_args(args):
    return tuple(on_fake_gpu(a) if isinstance(a, np.ndarray) else a for a in args)


DTYPES = [np.float32, np.float64]


def run_both(name, *args):
    return getattr(cuda_kernels, name)(*gpu_args(args)), getattr(cpu, name)(*args)


def test_kernels_for_picks_the_cuda_set_for_gpu_arrays(emulated_gpu):
    assert kernels_for(on_fake_gpu(np.zeros(2))) is cuda_kernels
    assert kernels_for(np.zeros(2)) is cpu


def test_the_cuda_set_has_every_numpy_kernel_with_its_signature():
    import inspect

    names = [n for n in dir(cpu) if not n.startswith("_") and callable(getattr(cpu, n))
             and getattr(getattr(cpu, n), "__module__", "").startswith("minicnn.backend.cpu")
             and n not in cpu.CPU_ONLY]
    assert len(names) > 30
    assert "conv2d_algorithm" in names and "winograd_conv2d_forward" not in names
    for name in names:
        assert hasattr(cuda_kernels, name), f"the CUDA kernel set lacks {name}"
        assert inspect.signature(getattr(cuda_kernels, name)) == inspect.signature(getattr(cpu, name)), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu"])
def test_activation_wrappers(emulated_gpu, name, dtype):
    x = random((2, 3, 5), dtype, low=-7, high=7)
    gy = random((2, 3, 5), dtype, seed=1)
    hyper = (0.1,) if name == "leaky_relu" else ()
    assert_same(*run_both(f"{name}_forward", x, *hyper), dtype)
    saved = getattr(cpu, f"{name}_forward")(x, *hyper) if name in ("sigmoid", "tanh") else x
    assert_same(*run_both(f"{name}_backward", gy, saved, *hyper), dtype)
    assert emulated_gpu == [f"{name}_forward_{'f32' if dtype == np.float32 else 'f64'}",
                            f"{name}_backward_{'f32' if dtype == np.float32 else 'f64'}"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), [((4, 2, 3, 5), 0), ((2, 4, 3, 5), 1), ((3, 2, 4), -1), ((4,), 0)])
def test_bias_add_and_channel_sum_wrappers(emulated_gpu, dtype, shape, axis):
    y, bias = random(shape, dtype), random((4,), dtype, seed=1)
    y_gpu = on_fake_gpu(y.copy())
    added = cuda_kernels.bias_add(y_gpu, on_fake_gpu(bias), axis)
    expected = cpu.bias_add(y.copy(), bias, axis)
    assert_same(added, expected, dtype)
    assert_same(y_gpu, expected, dtype)  # in place, as the NumPy kernel
    assert_same(*run_both("channel_sum", y, axis), dtype)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert emulated_gpu == [f"bias_add_{suffix}", f"channel_sum_{suffix}"]
    with pytest.raises(ValueError, match=r"bias_add: bias must have shape \(3,\) for axis 0, got \(3, 4\), \(4,\)"):
        cuda_kernels.bias_add(on_fake_gpu(random((3, 4), dtype)), on_fake_gpu(bias), 0)


CONV_GEOMETRIES = [  # kernel, stride, padding, dilation
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2), (2, 1), (0, 1), (1, 2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kernel_size", "stride", "padding", "dilation"), CONV_GEOMETRIES)
def test_im2col_col2im_and_depthwise_wrappers(emulated_gpu, dtype, kernel_size, stride, padding, dilation):
    x = random((2, 3, 5, 6), dtype)
    out_size = tuple(cpu.conv_output_size(s, k, st, p, d)
                     for s, k, st, p, d in zip(x.shape[2:], kernel_size, stride, padding, dilation))
    cols_gpu, cols_cpu = run_both("im2col", x, kernel_size, stride, padding, dilation, out_size)
    assert_same(cols_gpu, cols_cpu, dtype)
    assert_same(*run_both("im2col", x, kernel_size, stride, padding, dilation, out_size, -np.inf), dtype)
    assert_same(*run_both("col2im", cols_cpu, x.shape, kernel_size, stride, padding, dilation), dtype)
    weight = random((3, 1, *kernel_size), dtype, seed=2)
    y_gpu, y_cpu = run_both("depthwise_conv2d_forward", x, weight, stride, padding, dilation, out_size)
    assert_same(y_gpu, y_cpu, dtype)
    gy = random(y_cpu.shape, dtype, seed=3)
    assert_same(*run_both("depthwise_conv2d_backward", gy, x, weight, stride, padding, dilation), dtype)
    assert_same(*run_both("depthwise_conv2d_backward", gy, x, weight, stride, padding, dilation, False, True),
                dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_wrappers(emulated_gpu, dtype):
    x = random((2, 2, 5, 7), dtype)
    geometry = ((3, 2), (2, 2), (1, 1))
    out_size = tuple(cpu.conv_output_size(s, k, st, p) for s, k, st, p in zip(x.shape[2:], *geometry))
    (y_gpu, argmax_gpu), (y_cpu, argmax_cpu) = run_both("max_pool2d_forward", x, *geometry, (1, 1), out_size)
    assert_same(y_gpu, y_cpu, dtype)
    np.testing.assert_array_equal(np.asarray(argmax_gpu), argmax_cpu)
    assert argmax_gpu.dtype == np.int32
    gy = random(y_cpu.shape, dtype, seed=4)
    assert_same(*run_both("max_pool2d_backward", gy, argmax_cpu, x.shape, *geometry, (1, 1)), dtype)
    for include_pad, override in ((True, None), (False, None), (True, 5)):
        assert_same(*run_both("avg_pool2d_forward", x, *geometry, out_size, include_pad, override), dtype)
        assert_same(*run_both("avg_pool2d_backward", gy, x.shape, *geometry, include_pad, override), dtype)
    for adaptive_out in ((3, 4), (1, 1)):
        assert_same(*run_both("adaptive_avg_pool2d_forward", x, adaptive_out), dtype)
        gy_adaptive = random((2, 2, *adaptive_out), dtype, seed=5)
        assert_same(*run_both("adaptive_avg_pool2d_backward", gy_adaptive, x.shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_wrappers(emulated_gpu, dtype, affine):
    x = random((4, 3, 5), dtype) + 3
    gy = random(x.shape, dtype, seed=6)
    weight, bias = (random((3,), dtype, seed=7), random((3,), dtype, seed=8)) if affine else (None, None)
    (mean, var, invstd), _ = stats = run_both("batch_norm_statistics", x, 1e-5)
    assert_same(*stats, dtype)
    assert_same(*run_both("batch_norm_invstd", np.asarray(var), 1e-3), dtype)
    mean, invstd = np.asarray(mean).view(np.ndarray), np.asarray(invstd).view(np.ndarray)
    assert_same(*run_both("batch_norm_forward", x, mean, invstd, weight, bias), dtype)
    for batch_statistics in (True, False):
        assert_same(*run_both("batch_norm_backward", gy, x, mean, invstd, weight, batch_statistics), dtype)
    assert_same(*run_both("batch_norm_backward", gy, x, mean, invstd, weight, True, False), dtype)
    running_cpu = [random((3,), dtype, seed=9), random((3,), dtype, seed=10) + 3]
    running_gpu = [on_fake_gpu(a.copy()) for a in running_cpu]
    batch_var = np.asarray(var).view(np.ndarray)
    cuda_kernels.batch_norm_update_running_stats(*running_gpu, on_fake_gpu(mean), on_fake_gpu(batch_var), 20, 0.1)
    cpu.batch_norm_update_running_stats(*running_cpu, mean, batch_var, 20, 0.1)
    for g, c in zip(running_gpu, running_cpu):
        assert_same(g, c, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_response_norm_wrappers(emulated_gpu, dtype):
    x = random((2, 6, 3, 2), dtype)
    (y_gpu, scale_gpu), (y_cpu, scale_cpu) = run_both("local_response_norm_forward", x, 5, 1e-2, 0.75, 2.0)
    assert_same((y_gpu, scale_gpu), (y_cpu, scale_cpu), dtype)
    gy = random(x.shape, dtype, seed=11)
    assert_same(*run_both("local_response_norm_backward", gy, x, y_cpu, scale_cpu, 5, 1e-2, 0.75), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_softmax_wrappers(emulated_gpu, dtype, axis):
    x = random((3, 5, 4), dtype, low=-5, high=5)
    gy = random(x.shape, dtype, seed=12)
    for name in ("softmax", "log_softmax"):
        y_gpu, y_cpu = run_both(f"{name}_forward", x, axis)
        assert_same(y_gpu, y_cpu, dtype)
        assert_same(*run_both(f"{name}_backward", gy, y_cpu, axis), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("weighted", "smoothing"), [(False, 0.0), (True, 0.1)])
def test_cross_entropy_wrappers(emulated_gpu, dtype, weighted, smoothing):
    logits = random((4, 5, 3), dtype)
    target = np.random.default_rng(13).integers(0, 5, size=(4, 3)).astype(np.int64)
    target[0, 1] = -100
    weight = random((5,), dtype, seed=14, low=0.5, high=2) if weighted else None
    forward_gpu, forward_cpu = run_both("cross_entropy_forward", logits, target, weight, -100, smoothing)
    assert_same(forward_gpu, forward_cpu, dtype)
    grad_losses = random((4, 3), dtype, seed=15)
    assert_same(*run_both("cross_entropy_backward", grad_losses, forward_cpu[1], target, weight, -100, smoothing),
                dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_are_bit_identical(emulated_gpu, dtype):
    for p in (0.0, 0.3, 0.5):
        mask_gpu, mask_cpu = run_both("dropout_mask", (3, 7, 5), p, 1234, 99, dtype)
        assert isinstance(mask_gpu, FakeGpuArray)
        np.testing.assert_array_equal(np.asarray(mask_gpu), mask_cpu)


@pytest.mark.parametrize("dtype", DTYPES)
def test_teaching_gemm_matches_matmul(emulated_gpu, dtype):
    a, b = random((5, 19), dtype), random((19, 17), dtype, seed=16)
    cuda_kernels.use_teaching_gemm(True)
    try:
        product = cuda_kernels.matmul(on_fake_gpu(a), on_fake_gpu(b))
    finally:
        cuda_kernels.use_teaching_gemm(False)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert emulated_gpu == [f"gemm_blocked_{suffix}"]
    assert_same(product, a @ b, dtype)
    assert type(cuda_kernels.matmul(on_fake_gpu(a), on_fake_gpu(b))) is FakeGpuArray  # cuBLAS path
    assert len(emulated_gpu) == 1
    assert_same(cuda_kernels.gemm(on_fake_gpu(a), on_fake_gpu(b), kernel="tiled"), a @ b, dtype)
    assert emulated_gpu == [f"gemm_blocked_{suffix}", f"gemm_{suffix}"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_teaching_gemm_batches_grouped_products(emulated_gpu, dtype):
    """(G, M, K) @ (G, K, N), grouped convolution's product, one grid layer per group."""
    a, b = random((3, 5, 7), dtype), random((3, 7, 4), dtype, seed=17)
    cuda_kernels.use_teaching_gemm(True)
    try:
        product = cuda_kernels.matmul(on_fake_gpu(a), on_fake_gpu(b))
    finally:
        cuda_kernels.use_teaching_gemm(False)
    assert emulated_gpu == [f"gemm_blocked_{'f32' if dtype == np.float32 else 'f64'}"]
    assert_same(product, a @ b, dtype)


@pytest.mark.parametrize("kernel, rows", [("tiled", 1_048_561), ("blocked", 8_388_481)])
def test_teaching_gemm_refuses_grids_it_cannot_launch(emulated_gpu, kernel, rows):
    with pytest.raises(ValueError, match=rf"gemm: the grid holds at most 65535 row tiles \(M <= {rows - 1:,} for the "
                                         rf"{kernel} kernel\) .* got M={rows}, batch=1"):
        cuda_kernels.gemm(on_fake_gpu(np.zeros((rows, 1), np.float32)), on_fake_gpu(np.zeros((1, 1), np.float32)),
                          kernel=kernel)
    assert emulated_gpu == []


def test_teaching_gemm_names_the_kernels_it_has(emulated_gpu):
    with pytest.raises(ValueError, match=r"gemm: kernel must be one of \['blocked', 'tiled'\], got 'fast'"):
        cuda_kernels.gemm(on_fake_gpu(np.zeros((2, 2), np.float32)), on_fake_gpu(np.zeros((2, 2), np.float32)),
                          kernel="fast")


def test_each_kernel_file_is_compiled_once(emulated_gpu):
    compiled = []
    original = cuda_runtime._modules
    x = on_fake_gpu(random((8,), np.float32))
    for _ in range(3):
        cuda_kernels.relu_forward(x)
        cuda_kernels.relu6_forward(x)
    compiled.append(set(original))
    assert compiled == [{"activation"}]
    assert len(cuda_runtime._functions) == 2


# --- bad input: clear errors naming the op and the shapes -------------------------------
def test_unsupported_dtypes_are_refused(emulated_gpu):
    with pytest.raises(TypeError, match="relu_forward: CUDA kernels exist for float32 and float64, got float16"):
        cuda_kernels.relu_forward(on_fake_gpu(np.zeros(3, dtype=np.float16)))
    with pytest.raises(TypeError, match="relu_backward: CUDA kernels need one dtype"):
        cuda_kernels.relu_backward(on_fake_gpu(np.zeros(3, np.float32)), on_fake_gpu(np.zeros(3, np.float64)))


def test_mismatched_shapes_are_refused_with_the_shapes(emulated_gpu):
    with pytest.raises(ValueError, match=r"relu_backward: .*\(3,\), \(4,\)"):
        cuda_kernels.relu_backward(on_fake_gpu(np.zeros(3, np.float32)), on_fake_gpu(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"gemm: expected \(M, K\) @ \(K, N\) or \(G, M, K\) @ \(G, K, N\), got \(2, 3\), \(4, 5\)"):
        cuda_kernels.gemm(on_fake_gpu(np.zeros((2, 3), np.float32)), on_fake_gpu(np.zeros((4, 5), np.float32)))


def test_sizes_beyond_what_a_kernel_indexes_are_refused(emulated_gpu):
    class Huge:  # shape metadata only: nothing is allocated
        shape, ndim, dtype = (2**40, 2**23), 2, np.dtype(np.float32)
        size = 2**63

    with pytest.raises(ValueError, match=r"relu_forward: .* more than the CUDA kernels index \(2\^62\)"):
        cuda_kernels.relu_forward(Huge())
    with pytest.raises(ValueError, match="local_response_norm_forward: size=4294967296 does not fit"):
        cuda_kernels.local_response_norm_forward(on_fake_gpu(np.zeros((1, 2, 3), np.float32)), 2**32, 1e-4, 0.75, 1)


def test_a_compile_failure_names_the_kernel_file_and_shapes(monkeypatch):
    class FailingRawModule:
        def __init__(self, code, options=()):
            pass

        def compile(self):
            raise RuntimeError("nvrtc: error: identifier \"oops\" is undefined")

    fake_cupy.install(monkeypatch, FailingRawModule)
    monkeypatch.setattr(cuda_runtime, "_modules", {})
    monkeypatch.setattr(cuda_runtime, "_functions", {})
    with pytest.raises(cuda_runtime.CudaKernelError,
                       match=r"softmax_forward: compiling kernels/softmax.cu failed for inputs \(2, 3\), axis=1: "
                             r"RuntimeError: nvrtc: error"):
        cuda_kernels.softmax_forward(on_fake_gpu(np.zeros((2, 3), np.float32)), 1)


def test_a_launch_failure_names_the_kernel_configuration_and_shapes(monkeypatch):
    class Module:
        def __init__(self, code, options=()):
            pass

        def compile(self):
            pass

        def get_function(self, name):
            def launch(grid, block, args, shared_mem=0):
                raise RuntimeError("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")
            return launch

    fake_cupy.install(monkeypatch, Module)
    monkeypatch.setattr(cuda_runtime, "_modules", {})
    monkeypatch.setattr(cuda_runtime, "_functions", {})
    with pytest.raises(cuda_runtime.CudaKernelError,
                       match=r"relu_forward: launching relu_forward_f32 with grid=\(1, 1, 1\) block=\(256, 1, 1\) "
                             r"shared_mem=0 failed for inputs \(5,\): RuntimeError: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"):
        cuda_kernels.relu_forward(on_fake_gpu(np.zeros(5, np.float32)))


def test_kernel_sources_are_found():
    source = cuda_kernels.kernel_source("softmax")
    assert 'extern "C" __global__' in source
    with pytest.raises(cuda_runtime.CudaKernelError, match="no_such_family.cu not found"):
        cuda_kernels.kernel_source("no_such_family")
