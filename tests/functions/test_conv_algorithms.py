"""The CPU's convolution algorithms side by side: each one computes the same conv2d, forward and backward.

Winograd F(2×2, 3×3) is exact in exact arithmetic, so in float64 it meets the same
tolerances as im2col (1e-10 against PyTorch, and finite-difference gradchecks).  In
float32 its transforms add a few roundings: its error against a float64 reference is
held to WINOGRAD_FLOAT32_TOLERANCE, within what PyTorch's own float32 conv shows.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch, rel_error, require_torch

import minicnn
import minicnn.nn.functional as F
from minicnn.backend import cpu
from minicnn.backend.cpu import conv_algorithm, set_conv_algorithm, using_conv_algorithm

pytestmark = pytest.mark.cpu_only("the CPU's conv algorithms; the GPU always runs im2col or direct")

# Relative error (max |error| / max |exact|) of float32 forward and gradients against float64.
WINOGRAD_FLOAT32_TOLERANCE = 2e-6


@st.composite
def winograd_cases(draw):
    """Convolutions Winograd computes: 3×3, stride 1, dilation 1, one group; odd and even sizes, any padding."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, 3 - 2 * padding[0]), 9))
    w = draw(st.integers(max(1, 3 - 2 * padding[1]), 9))
    return dict(shape=(draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w),
                weight=(draw(st.integers(1, 4)), None, 3, 3), padding=padding, bias=draw(st.booleans()))


def _arrays(case, seed=0):
    rng = np.random.default_rng(seed)
    weight_shape = (case["weight"][0], case["shape"][1], 3, 3)
    arrays = [rng.standard_normal(case["shape"]), rng.standard_normal(weight_shape)]
    if case["bias"]:
        arrays.append(rng.standard_normal(weight_shape[0]))
    return arrays


def _conv(padding, algorithm):
    def run(x, w, b=None):
        with using_conv_algorithm(algorithm):
            y = F.conv2d(x, w, b, padding=padding)
        if y.creator is not None:  # gradcheck's finite differences run without a graph
            assert y.creator.algorithm == algorithm  # the algorithm asked for is the one that ran
        return y
    return run


@settings(max_examples=30, deadline=None)
@given(winograd_cases())
def test_winograd_matches_torch_in_float64(case):
    torch = require_torch()

    def theirs(x, w, b=None):
        return torch.nn.functional.conv2d(x, w, b, padding=case["padding"])
    compare_with_torch(_conv(case["padding"], "winograd"), theirs, _arrays(case), dtype=np.float64)


@settings(max_examples=15, deadline=None)
@given(winograd_cases())
def test_winograd_gradcheck(case):
    assert minicnn.gradcheck(_conv(case["padding"], "winograd"), _arrays(case))


@pytest.mark.parametrize("shape", [(4, 64, 16, 16), (2, 32, 15, 17)])
def test_winograd_float32_error_against_float64_is_within_its_tolerance(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((48, shape[1], 3, 3)) * (2.0 / (9 * shape[1])) ** 0.5
    upstream = rng.standard_normal((shape[0], 48, *shape[2:]))
    results = {}
    for dtype in (np.float32, np.float64):
        tx = minicnn.tensor(x.astype(dtype), requires_grad=True)
        tw = minicnn.tensor(w.astype(dtype), requires_grad=True)
        y = _conv(1, "winograd" if dtype == np.float32 else "im2col")(tx, tw)
        y.backward(upstream.astype(dtype))
        results[dtype] = (y.numpy(), tx.grad.numpy(), tw.grad.numpy())
    for ours, exact in zip(results[np.float32], results[np.float64]):
        assert ours.dtype == np.float32
        assert rel_error(ours, exact) <= WINOGRAD_FLOAT32_TOLERANCE


def test_each_algorithm_gives_the_same_answer_on_a_vgg_layer():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 16, 12, 12)), rng.standard_normal((24, 16, 3, 3)), rng.standard_normal(24)
    outputs = {}
    for algorithm in ("im2col", "winograd"):
        tensors = [minicnn.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = _conv(1, algorithm)(*tensors)
        (y * y).sum().backward()
        outputs[algorithm] = [y.numpy()] + [t.grad.numpy() for t in tensors]
    for im2col_result, winograd_result in zip(outputs["im2col"], outputs["winograd"]):
        np.testing.assert_allclose(winograd_result, im2col_result, rtol=1e-11, atol=1e-11)


def test_winograd_skips_the_gradients_nobody_needs():
    x = minicnn.tensor(np.ones((1, 2, 6, 6)))
    w = minicnn.tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    y = _conv(1, "winograd")(x, w)
    y.sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy()[0, 0], [[25, 30, 25], [30, 36, 30], [25, 30, 25]])


def test_im2col_forced_on_a_depthwise_conv_equals_the_direct_kernel():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 6, 9, 9)), rng.standard_normal((6, 1, 3, 3))
    results = []
    for algorithm in ("direct", "im2col"):
        tx, tw = minicnn.tensor(x, requires_grad=True), minicnn.tensor(w, requires_grad=True)
        with using_conv_algorithm(algorithm):
            y = F.conv2d(tx, tw, stride=2, padding=1, groups=6)
        assert y.creator.algorithm == algorithm
        y.backward(np.ones(y.shape))
        results.append((y.numpy(), tx.grad.numpy(), tw.grad.numpy()))
    for direct, im2col in zip(*results):
        np.testing.assert_allclose(im2col, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weight_shape, stride, dilation, groups", [
    ((8, 4, 5, 5), 1, 1, 1), ((8, 4, 3, 3), 2, 1, 1), ((8, 4, 3, 3), 1, 2, 1), ((8, 2, 3, 3), 1, 1, 2)])
def test_winograd_asked_where_it_cannot_compute_falls_back_to_im2col(weight_shape, stride, dilation, groups):
    x = minicnn.tensor(np.ones((1, 4, 11, 11)))
    with using_conv_algorithm("winograd"):
        weight = minicnn.tensor(np.ones(weight_shape), requires_grad=True)
        y = F.conv2d(x, weight, stride=stride, dilation=dilation, groups=groups)
    assert y.creator.algorithm == "im2col"


def test_auto_picks_by_the_rule_written_from_the_benchmark():
    pick = conv_algorithm.conv2d_algorithm
    assert pick((8, 144, 56, 56), (144, 1, 3, 3), (1, 1), (1, 1), 144) == "direct"
    assert pick((8, 64, 112, 112), (64, 64, 3, 3), (1, 1), (1, 1), 1) == "winograd"
    assert pick((8, 512, 14, 14), (512, 512, 3, 3), (1, 1), (1, 1), 1) == "winograd"
    assert pick((32, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), 1) == "im2col"
    assert pick((32, 512, 4, 4), (512, 512, 3, 3), (1, 1), (1, 1), 1) == "im2col"
    assert pick((8, 64, 112, 112), (64, 64, 3, 3), (2, 2), (1, 1), 1) == "im2col"


def test_using_conv_algorithm_restores_the_setting_even_after_an_error():
    assert cpu.get_conv_algorithm() == "auto"
    with pytest.raises(RuntimeError):
        with using_conv_algorithm("im2col"):
            assert cpu.get_conv_algorithm() == "im2col"
            raise RuntimeError("inside")
    assert cpu.get_conv_algorithm() == "auto"


@pytest.mark.parametrize("name, error, message", [
    ("fft", ValueError, "expected one of ('auto', 'im2col', 'winograd', 'direct'), got 'fft'"),
    (None, TypeError, "name must be a str, got NoneType")])
def test_set_conv_algorithm_refuses_unknown_names_and_keeps_the_setting(name, error, message):
    with pytest.raises(error, match="set_conv_algorithm: " + message.replace("(", r"\(").replace(")", r"\)")):
        set_conv_algorithm(name)
    assert cpu.get_conv_algorithm() == "auto"


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_gives_the_same_bits_on_one_thread_and_two(threads):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 96, 10, 10)).astype(np.float32)
    w = rng.standard_normal((32, 96, 3, 3)).astype(np.float32)
    reference = cpu.winograd_conv2d_forward(x, w, (1, 1), (10, 10))[0]
    previous = cpu.num_threads()
    cpu.set_num_threads(threads)
    try:
        y = cpu.winograd_conv2d_forward(x, w, (1, 1), (10, 10))[0]
    finally:
        cpu.set_num_threads(previous)
    np.testing.assert_array_equal(y, reference)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(stride=2, padding=2, dilation=2, groups=2)])
def test_im2col_in_image_slabs_equals_the_whole_batch_and_keeps_no_columns(monkeypatch, kwargs):
    from minicnn.functions import conv

    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((5, 4, 9, 9)), rng.standard_normal((6, 4 // kwargs.get("groups", 1), 3, 3)), \
        rng.standard_normal(6)
    results, whole_batch = [], conv.WORKSPACE_BYTES
    for workspace in (whole_batch, 1):  # everything at once; then one image a slab
        monkeypatch.setattr(conv, "WORKSPACE_BYTES", workspace)
        tensors = [minicnn.tensor(a, requires_grad=True) for a in (x, w, b)]
        with using_conv_algorithm("im2col"):
            y = F.conv2d(*tensors, **kwargs)
        assert (y.creator.cols is None) == (workspace != whole_batch)
        y.backward(np.cos(y.numpy()))
        results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
    for whole, slabs in zip(*results):
        np.testing.assert_allclose(slabs, whole, rtol=1e-12, atol=1e-12)


def test_image_slabs_cover_the_batch_in_order_and_never_split_an_image():
    from minicnn.functions import conv

    budget = conv.WORKSPACE_BYTES
    assert conv.image_slabs(8, budget // 3) == [(0, 3), (3, 6), (6, 8)]
    assert conv.image_slabs(4, budget * 10) == [(0, 1), (1, 2), (2, 3), (3, 4)]  # one image over budget
    assert conv.image_slabs(0, budget) == [(0, 0)]


def test_winograd_in_image_slabs_equals_the_whole_batch_and_keeps_only_x(monkeypatch):
    from minicnn.functions import conv

    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((3, 5, 8, 7)), rng.standard_normal((4, 5, 3, 3)), rng.standard_normal(4)
    results, whole_batch = [], conv.WORKSPACE_BYTES
    for workspace in (whole_batch, 1):  # everything at once; then one image a slab
        monkeypatch.setattr(conv, "WORKSPACE_BYTES", workspace)
        tensors = [minicnn.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = _conv(1, "winograd")(*tensors)
        assert (y.creator.transformed[0] is None) == (workspace != whole_batch)
        y.backward(np.sin(y.numpy()))
        results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
    for whole, slabs in zip(*results):
        np.testing.assert_allclose(slabs, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 2])
def test_a_pointwise_conv_needs_no_im2col_nor_col2im_and_matches_torch(monkeypatch, groups):
    torch = require_torch()

    def refuse(*args, **kwargs):
        raise AssertionError("a 1x1 stride-1 conv must not build columns")

    monkeypatch.setattr(cpu, "im2col", refuse)
    monkeypatch.setattr(cpu, "col2im", refuse)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5, 6))
    w, b = rng.standard_normal((6, 4 // groups, 1, 1)), rng.standard_normal(6)
    compare_with_torch(lambda *t: F.conv2d(*t, groups=groups),
                       lambda *t: torch.nn.functional.conv2d(*t, groups=groups), [x, w, b], dtype=np.float64)
