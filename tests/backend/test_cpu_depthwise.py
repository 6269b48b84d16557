"""The NumPy depthwise kernels: each of their three layouts against PyTorch, threads, blocks, edge cases.

depthwise.py picks a layout per shape (shifted copies for stride-1 'same' convs,
phase planes for the rest, channels-last for small images) and cuts the work into
blocks shared between threads; every test below names the layout it exercises.
"""

import numpy as np
import pytest
from oracle import require_torch

import minicnn
import minicnn.nn.functional as F
from minicnn.backend.cpu import depthwise
from minicnn.backend.cpu.threads import set_num_threads

# (N, C, H, W), (KH, KW), stride, padding, dilation, the layout depthwise.py must pick
CASES = {
    "shifted-3x3": ((2, 3, 12, 11), (3, 3), (1, 1), (1, 1), (1, 1), "shifted"),
    "shifted-5x5-odd-rows": ((1, 2, 17, 11), (5, 5), (1, 1), (0, 2), (1, 1), "shifted"),
    "shifted-dilated-tall-kernel": ((2, 2, 11, 10), (4, 3), (1, 1), (3, 1), (2, 1), "shifted"),
    "planes-stride-2": ((2, 3, 23, 21), (3, 3), (2, 2), (1, 1), (1, 1), "planes"),
    "planes-5x5-stride-2": ((1, 4, 27, 25), (5, 5), (2, 2), (2, 2), (1, 1), "planes"),
    "planes-valid-stride-1": ((2, 2, 14, 13), (3, 3), (1, 1), (0, 0), (1, 1), "planes"),
    "planes-mixed-stride-dilated": ((1, 2, 30, 26), (3, 2), (3, 2), (2, 1), (2, 3), "planes"),
    "planes-stride-gaps": ((1, 2, 40, 40), (2, 2), (3, 3), (0, 0), (1, 1), "planes"),  # pixels no tap reads
    "channels-last-8x8": ((3, 5, 8, 8), (3, 3), (1, 1), (1, 1), (1, 1), "channels_last"),
    "channels-last-stride-2": ((2, 4, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), "channels_last"),
    "channels-last-1x1-image": ((4, 6, 1, 1), (3, 3), (1, 1), (1, 1), (1, 1), "channels_last"),
    "channels-last-kernel-wider-than-image": ((1, 2, 3, 2), (5, 4), (1, 1), (2, 2), (1, 1), "channels_last"),
}


def _out_size(shape, kernel, stride, padding, dilation):
    return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                 for size, k, s, p, d in zip(shape[2:], kernel, stride, padding, dilation))


def _arrays(case, dtype=np.float64, seed=0):
    shape, kernel, stride, padding, dilation, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal((shape[1], 1, *kernel)).astype(dtype)
    out_size = _out_size(shape, kernel, stride, padding, dilation)
    gy = rng.standard_normal((*shape[:2], *out_size)).astype(dtype)
    return x, weight, gy


def _ours(case, x, weight, gy):
    _, _, stride, padding, dilation, _ = case
    y = depthwise.depthwise_conv2d_forward(x, weight, stride, padding, dilation, gy.shape[2:])
    return (y, *depthwise.depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation))


def _torch(case, x, weight, gy):
    torch = require_torch()
    _, _, stride, padding, dilation, _ = case
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(weight, requires_grad=True)
    y = torch.nn.functional.conv2d(tx, tw, None, stride, padding, dilation, groups=x.shape[1])
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


@pytest.mark.parametrize("name", CASES)
def test_each_layout_matches_torch_forward_and_backward_in_float64(name):
    case = CASES[name]
    shape, kernel, stride, padding, dilation, layout = case
    assert depthwise._Layout(shape, (shape[1], 1, *kernel), stride, padding, dilation,
                             _out_size(shape, kernel, stride, padding, dilation)).kind == layout
    x, weight, gy = _arrays(case)
    for ours, theirs in zip(_ours(case, x, weight, gy), _torch(case, x, weight, gy)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["shifted-3x3", "planes-stride-2", "channels-last-8x8"])
def test_float32_stays_float32_and_matches_torch(name):
    case = CASES[name]
    x, weight, gy = _arrays(case, np.float32)
    ours = _ours(case, x, weight, gy)
    for mine, theirs in zip(ours, _torch(case, x, weight, gy)):
        assert mine.dtype == np.float32
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["shifted-3x3", "shifted-dilated-tall-kernel", "planes-5x5-stride-2",
                                  "planes-stride-gaps", "channels-last-stride-2"])
def test_small_blocks_split_samples_and_channels_without_changing_the_result(name, monkeypatch):
    # Tiny blocks: one channel of one sample each, so every block boundary and partial block is crossed.
    case = CASES[name]
    x, weight, gy = _arrays(case)
    expected = _torch(case, x, weight, gy)
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", 1)
    for ours, theirs in zip(_ours(case, x, weight, gy), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, kernel, stride", [((4, 24, 56, 56), (3, 3), (1, 1)),   # shifted
                                                   ((4, 16, 64, 64), (5, 5), (2, 2)),   # planes
                                                   ((64, 48, 8, 8), (3, 3), (1, 1))])   # channels last
def test_one_thread_and_two_give_identical_bits(shape, kernel, stride, restore_threads, record_threads):
    padding = (kernel[0] // 2, kernel[1] // 2)
    case = (shape, kernel, stride, padding, (1, 1), None)
    x, weight, gy = _arrays(case, np.float32)
    workers = record_threads(depthwise)
    results = []
    for threads in (1, 2):
        set_num_threads(threads)
        workers.clear()
        results.append(_ours(case, x, weight, gy))
        assert len(workers) == threads  # the split really happened
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("name", ["shifted-5x5-odd-rows", "planes-stride-2", "channels-last-1x1-image"])
def test_backward_skips_what_is_not_needed_and_returns_the_same_rest(name):
    case = CASES[name]
    _, _, stride, padding, dilation, _ = case
    x, weight, gy = _arrays(case)
    _, grad_x, grad_weight = _ours(case, x, weight, gy)
    only_x = depthwise.depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_weight=False)
    only_weight = depthwise.depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=False)
    assert only_x[1] is None and only_weight[0] is None
    np.testing.assert_array_equal(only_x[0], grad_x)
    np.testing.assert_array_equal(only_weight[1], grad_weight)


def test_a_channel_major_input_view_gives_the_same_result():
    # Conv outputs are (N, C, H, W) views of channel-major buffers: the kernels must not assume C order.
    case = CASES["shifted-3x3"]
    x, weight, gy = _arrays(case)
    x_view = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gy_view = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for ours, expected in zip(_ours(case, x_view, weight, gy_view), _ours(case, x, weight, gy)):
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("shape, stride", [((0, 3, 12, 12), 1), ((0, 3, 12, 12), 2), ((0, 3, 4, 4), 1)])
def test_an_empty_batch_gives_empty_outputs_and_a_zero_weight_gradient(shape, stride):
    case = (shape, (3, 3), (stride, stride), (1, 1), (1, 1), None)
    x, weight, gy = _arrays(case)
    y, grad_x, grad_weight = _ours(case, x, weight, gy)
    assert y.shape == gy.shape and grad_x.shape == x.shape
    np.testing.assert_array_equal(grad_weight, np.zeros_like(weight))


@pytest.mark.parametrize("shape, stride, padding", [((1, 2, 10, 10), 1, 1),    # shifted
                                                    ((1, 2, 21, 20), 2, 1),    # planes
                                                    ((2, 2, 5, 4), 1, 1)])     # channels last
def test_depthwise_conv2d_gradcheck_in_float64_through_each_layout(shape, stride, padding):
    rng = np.random.default_rng(1)
    x, weight = rng.standard_normal(shape), rng.standard_normal((shape[1], 1, 3, 3))
    assert minicnn.gradcheck(lambda x, w: F.conv2d(x, w, None, stride, padding, 1, shape[1]), [x, weight])
