"""kernels/im2col.cu, depthwise.cu and gemm.cu, run on the CPU emulator, against the NumPy kernels.

Every launch takes its grid, block and shared memory from LAUNCH in
minicnn/backend/cuda/launch.py, as the CuPy backend does.  Output buffers start
as NaN, so an entry a kernel forgets to write fails the comparison.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from pairwise import all_pairs

from minicnn.backend.cpu.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from minicnn.backend.cpu.im2col import col2im, conv_output_size, im2col
from minicnn.backend.cuda.launch import LAUNCH, launch_config

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}

# (N, C, H, W), (KH, KW), stride, padding, dilation, ceil_mode
CONV_CASES = {
    "3x3-same": ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1), False),
    "odd-stride2": ((1, 2, 9, 8), (3, 2), (2, 3), (1, 0), (1, 1), False),
    "dilated": ((2, 1, 11, 10), (3, 3), (2, 2), (2, 1), (2, 3), False),
    "1x1": ((1, 3, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1), False),
    "stride-gaps": ((1, 2, 9, 9), (2, 2), (3, 3), (0, 0), (1, 1), False),  # some pixels in no window
    "kernel-wider-than-input": ((1, 1, 3, 2), (5, 4), (1, 1), (2, 2), (1, 1), False),
    "ceil-overhang": ((1, 2, 6, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
    "ceil-overhang-dilated": ((2, 2, 8, 5), (2, 3), (3, 2), (0, 1), (2, 1), True),
}


def suffix(dtype):
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


def geometry(case):
    x_shape, kernel, stride, padding, dilation, ceil_mode = CONV_CASES[case]
    out = tuple(conv_output_size(x_shape[2 + a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
                for a in range(2))
    return x_shape, kernel, stride, padding, dilation, out


def window_args(kernel, stride, padding, dilation):
    return [*kernel, *stride, *padding, *dilation]


def emulated_im2col(emulator, x, kernel, stride, padding, dilation, out, pad_value=0.0):
    n, c, h, w = x.shape
    cols = np.full((c, *kernel, n, *out), np.nan, dtype=x.dtype)
    emulator.launch_op("im2col", (cols.size,), f"im2col_{suffix(x.dtype)}",
                       [x, cols, n, c, h, w, *out, *window_args(kernel, stride, padding, dilation), pad_value])
    return cols


def emulated_col2im(emulator, cols, x_shape, stride, padding, dilation):
    c, kh, kw, n, oh, ow = cols.shape
    x = np.full(x_shape, np.nan, dtype=cols.dtype)
    emulator.launch_op("col2im", (x.size,), f"col2im_{suffix(cols.dtype)}",
                       [cols, x, n, c, x_shape[2], x_shape[3], oh, ow,
                        *window_args((kh, kw), stride, padding, dilation)])
    return x


def emulated_gemm(emulator, a, b, op="gemm"):
    """(batch, M, K) @ (batch, K, N) or 2-D, through <op>_<dtype> (op: "gemm" or "gemm_blocked")."""
    batched = a.ndim == 3
    a3, b3 = (a, b) if batched else (a[None], b[None])
    batch, m, k = a3.shape
    n = b3.shape[2]
    c = np.full((batch, m, n), np.nan, dtype=a.dtype)
    emulator.launch_op(op, (m, n, batch), f"{op}_{suffix(a.dtype)}",
                       [np.ascontiguousarray(a3), np.ascontiguousarray(b3), c, m, n, k])
    return c if batched else c[0]


# --- im2col / col2im -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_matches_numpy(emulator, case, dtype):
    x_shape, kernel, stride, padding, dilation, out = geometry(case)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(dtype)
    pad_value = -np.inf if CONV_CASES[case][5] else 0.0  # ceil mode is max-pool's: pad with -inf
    got = emulated_im2col(emulator, x, kernel, stride, padding, dilation, out, pad_value)
    expected = im2col(x, kernel, stride, padding, dilation, out, pad_value=pad_value)
    np.testing.assert_array_equal(got, expected)  # a copy: exact


def test_ceil_mode_overhang_reads_pad_value(emulator):
    # 6 rows, k=3, s=2, p=1, ceil: 4 windows, the last starting at padded row 6 overhangs past the padding.
    x_shape, kernel, stride, padding, dilation, out = geometry("ceil-overhang")
    assert out[0] == 4 and (out[0] - 1) * stride[0] + kernel[0] > x_shape[2] + 2 * padding[0]
    x = np.ones(x_shape)
    cols = emulated_im2col(emulator, x, kernel, stride, padding, dilation, out, pad_value=-np.inf)
    assert np.isneginf(cols[:, 2, :, :, 3]).all()  # row i=2 of the last window: beyond padding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_gather_matches_numpy_bit_for_bit(emulator, case, dtype):
    x_shape, kernel, stride, padding, dilation, out = geometry(case)
    cols = np.random.default_rng(1).standard_normal((x_shape[1], *kernel, x_shape[0], *out)).astype(dtype)
    got = emulated_col2im(emulator, cols, x_shape, stride, padding, dilation)
    expected = col2im(cols, x_shape, kernel, stride, padding, dilation)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)  # same additions in the same order


def test_col2im_is_the_adjoint_of_im2col(emulator):
    # <im2col(x), cols> == <x, col2im(cols)> for every x, cols: the definition of the backward pass.
    x_shape, kernel, stride, padding, dilation, out = geometry("dilated")
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    cols = rng.standard_normal((x_shape[1], *kernel, x_shape[0], *out))
    lhs = np.vdot(emulated_im2col(emulator, x, kernel, stride, padding, dilation, out), cols)
    rhs = np.vdot(x, emulated_col2im(emulator, cols, x_shape, stride, padding, dilation))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_grid_stride_loop_covers_more_work_than_the_grid(emulator):
    # One block of 32 threads for hundreds of entries: only the grid-stride loop can finish the job.
    x_shape, kernel, stride, padding, dilation, out = geometry("3x3-same")
    x = np.random.default_rng(3).standard_normal(x_shape)
    cols = np.full((x_shape[1], *kernel, x_shape[0], *out), np.nan)
    assert cols.size > 32 * 4
    emulator.launch("im2col_f64", (1,), (32,),
                    [x, cols, *x_shape, *out, *window_args(kernel, stride, padding, dilation), 0.0])
    np.testing.assert_array_equal(cols, im2col(x, kernel, stride, padding, dilation, out))
    back = np.full(x_shape, np.nan)
    emulator.launch("col2im_f64", (2,), (64,),
                    [cols, back, x_shape[0], x_shape[1], *x_shape[2:], *out,
                     *window_args(kernel, stride, padding, dilation)])
    np.testing.assert_array_equal(back, col2im(cols, x_shape, kernel, stride, padding, dilation))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_conv_through_im2col_and_batched_gemm(emulator, groups, dtype):
    # The GPU conv path: im2col, one batched GEMM over the groups, and col2im for grad_x.
    x_shape, kernel, stride, padding, dilation, out = (2, 4, 7, 5), (3, 2), (2, 1), (1, 1), (1, 2), None
    out = tuple(conv_output_size(x_shape[2 + a], kernel[a], stride[a], padding[a], dilation[a]) for a in range(2))
    out_channels = 6 if groups != 4 else 8
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((out_channels, x_shape[1] // groups, *kernel)).astype(dtype)
    n, m = x_shape[0], x_shape[0] * out[0] * out[1]
    cols = emulated_im2col(emulator, x, kernel, stride, padding, dilation, out).reshape(groups, -1, m)  # (G, K, M)
    weight_grouped = weight.reshape(groups, out_channels // groups, -1)  # (G, OC/G, K)
    y = emulated_gemm(emulator, weight_grouped, cols).reshape(out_channels, n, *out).transpose(1, 0, 2, 3)

    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), stride=stride,
                                          padding=padding, dilation=dilation, groups=groups).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)

    gy = rng.standard_normal(y.shape).astype(dtype)
    gy_grouped = gy.transpose(1, 0, 2, 3).reshape(groups, out_channels // groups, m)
    grad_cols = emulated_gemm(emulator, weight_grouped.transpose(0, 2, 1), gy_grouped)  # (G, K, M)
    grad_x = emulated_col2im(emulator, grad_cols.reshape(x_shape[1], *kernel, n, *out), x_shape, stride, padding,
                             dilation)
    x_t = torch.from_numpy(x).requires_grad_()
    torch.nn.functional.conv2d(x_t, torch.from_numpy(weight), stride=stride, padding=padding, dilation=dilation,
                               groups=groups).backward(torch.from_numpy(gy))
    np.testing.assert_allclose(grad_x, x_t.grad.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


# --- depthwise -------------------------------------------------------------------
DEPTHWISE_CASES = [name for name in CONV_CASES if not CONV_CASES[name][5]]  # conv has no ceil mode


def emulated_depthwise(emulator, x, weight, stride, padding, dilation, out, gy=None):
    n, c, h, w = x.shape
    shape_args = [n, c, h, w, *out, *window_args(weight.shape[2:], stride, padding, dilation)]
    s = suffix(x.dtype)
    y = np.full((n, c, *out), np.nan, dtype=x.dtype)
    emulator.launch_op("depthwise_conv2d_forward", (y.size,), f"depthwise_conv2d_forward_{s}",
                       [x, weight, y, *shape_args])
    if gy is None:
        return y
    grad_x = np.full(x.shape, np.nan, dtype=x.dtype)
    emulator.launch_op("depthwise_conv2d_backward_input", (grad_x.size,), f"depthwise_conv2d_backward_input_{s}",
                       [gy, weight, grad_x, *shape_args])
    grad_weight = np.full(weight.shape, np.nan, dtype=x.dtype)
    emulator.launch_op("depthwise_conv2d_backward_weight", (grad_weight.size,),
                       f"depthwise_conv2d_backward_weight_{s}", [gy, x, grad_weight, *shape_args])
    return y, grad_x, grad_weight


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_forward_and_backward_match_numpy(emulator, case, dtype):
    x_shape, kernel, stride, padding, dilation, out = geometry(case)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((x_shape[1], 1, *kernel)).astype(dtype)
    gy = rng.standard_normal((x_shape[0], x_shape[1], *out)).astype(dtype)
    y, grad_x, grad_weight = emulated_depthwise(emulator, x, weight, stride, padding, dilation, out, gy)
    np.testing.assert_allclose(y, depthwise_conv2d_forward(x, weight, stride, padding, dilation, out),
                               **TOLERANCE[dtype])
    expected_x, expected_weight = depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation)
    np.testing.assert_allclose(grad_x, expected_x, **TOLERANCE[dtype])
    # grad_weight sums N·OH·OW products in a tree: float32 rounding differs from einsum's order.
    np.testing.assert_allclose(grad_weight, expected_weight,
                               **(TOLERANCE[dtype] if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)))


def test_depthwise_weight_reduction_over_more_entries_than_blocks(emulator):
    # MobileNet-sized channel counts: more (c, i, j) entries than one block's threads, two blocks for all.
    x_shape, kernel, stride, padding, dilation = (2, 40, 5, 4), (3, 3), (1, 1), (1, 1), (1, 1)
    out = x_shape[2:]
    rng = np.random.default_rng(6)
    x, gy = rng.standard_normal(x_shape), rng.standard_normal(x_shape)
    weight = rng.standard_normal((40, 1, *kernel))
    grad_weight = np.full(weight.shape, np.nan)
    emulator.launch("depthwise_conv2d_backward_weight_f64", (2,), (64,),
                    [gy, x, grad_weight, *x_shape, *out, *window_args(kernel, stride, padding, dilation)])
    _, expected = depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=False)
    np.testing.assert_allclose(grad_weight, expected, rtol=1e-12, atol=1e-12)


# --- gemm ------------------------------------------------------------------------
GEMM_OPS = ["gemm", "gemm_blocked"]


# All pairs (tests/pairwise.py): both kernels at every size, each of them in both dtypes.
@pytest.mark.parametrize("m, n, k, dtype, op", [
    (m, n, k, dtype, op) for (m, n, k), dtype, op
    in all_pairs([(17, 33, 29), (16, 16, 16), (1, 1, 1), (5, 40, 3), (33, 2, 47)], DTYPES, GEMM_OPS)])
def test_gemm_matches_matmul(emulator, m, n, k, dtype, op):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(emulated_gemm(emulator, a, b, op), a @ b, **tol)


# Edges of the register-blocked kernel: a tile and a bit in M and N (the second block row and column hold
# one row or column of C), K not a multiple of the 8-deep slice, and exactly one full tile.
@pytest.mark.parametrize("m, n, k", [(129, 130, 13), (128, 128, 8), (3, 257, 9), (200, 1, 17)])
def test_blocked_gemm_at_the_edges_of_its_tiles(emulator, m, n, k):
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(emulated_gemm(emulator, a, b, "gemm_blocked"), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", GEMM_OPS)
def test_batched_gemm_multiplies_each_slab(emulator, op):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 17, 19)), rng.standard_normal((3, 19, 5))
    np.testing.assert_allclose(emulated_gemm(emulator, a, b, op), a @ b, rtol=1e-12, atol=1e-12)


# --- the launch table the CuPy backend and these tests share ------------------------
def test_launch_table_matches_the_kernels():
    gemm_tile = int(re.search(r"#define GEMM_TILE (\d+)", (KERNELS / "gemm.cu").read_text()).group(1))
    assert LAUNCH["gemm"]["block"][:2] == (gemm_tile, gemm_tile)
    assert launch_config("gemm", 17, 33) == ((3, 2, 1), (16, 16, 1), 0)
    assert launch_config("gemm", 17, 33, 4)[0] == (3, 2, 4)
    gemm_source = (KERNELS / "gemm.cu").read_text()
    blocked = {name: int(re.search(rf"#define {name} (\d+)", gemm_source).group(1))
               for name in ("BLOCKED_TILE_M", "BLOCKED_TILE_N", "BLOCKED_THREADS", "PATCH")}
    assert blocked["BLOCKED_THREADS"] == (blocked["BLOCKED_TILE_M"] // blocked["PATCH"]) * (
        blocked["BLOCKED_TILE_N"] // blocked["PATCH"])
    assert launch_config("gemm_blocked", 129, 300, 2) == (
        (-(-300 // blocked["BLOCKED_TILE_N"]), -(-129 // blocked["BLOCKED_TILE_M"]), 2),
        (blocked["BLOCKED_THREADS"], 1, 1), 0)
    reduction = int(re.search(r"#define DEPTHWISE_WEIGHT_THREADS (\d+)",
                              (KERNELS / "depthwise.cu").read_text()).group(1))
    threads = LAUNCH["depthwise_conv2d_backward_weight"]["block"][0]
    assert threads <= reduction and threads & (threads - 1) == 0  # the tree reduction halves a power of two
    assert launch_config("im2col", 1000) == ((4, 1, 1), (256, 1, 1), 0)
    assert launch_config("im2col", 10**12)[0][0] == 65535 * 4  # capped: the loop strides over the rest
