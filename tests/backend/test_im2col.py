"""The sliding-window kernels: im2col's layout, col2im as its adjoint, the output-size rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.backend.cpu import col2im, conv_output_size, im2col


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, ceil_mode, expected", [
    (32, 5, 1, 2, 1, False, 32),   # the course's "a conv can keep H and W" example
    (224, 11, 4, 2, 1, False, 55),  # AlexNet conv1
    (112, 3, 2, 1, 1, False, 56),   # ResNet stem pool
    (7, 2, 2, 0, 1, False, 3),
    (7, 2, 2, 0, 1, True, 4),       # ceil_mode keeps the partial window
    (6, 3, 2, 1, 1, True, 4),
    (5, 2, 2, 1, 1, True, 3),       # ... but never one starting in the right padding
    (10, 3, 1, 0, 2, False, 6),     # dilation 2: effective kernel 5
])
def test_conv_output_size_follows_pytorch(size, kernel, stride, padding, dilation, ceil_mode, expected):
    assert conv_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected


def _naive_im2col(x, k, s, p, d, out, pad_value):
    n, c, h, w = x.shape
    cols = np.empty((c, k[0], k[1], n, out[0], out[1]), dtype=x.dtype)
    for ci, i, j, ni, oh, ow in np.ndindex(*cols.shape):
        row, col = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
        inside = 0 <= row < h and 0 <= col < w
        cols[ci, i, j, ni, oh, ow] = x[ni, ci, row, col] if inside else pad_value
    return cols


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.integers(1, 2), st.booleans())
def test_im2col_matches_its_definition_and_col2im_is_its_adjoint(n, c, h, w, k, s, d, p, extra, ceil):
    size = (h + 2 * p, w + 2 * p)
    if d * (k - 1) + 1 > min(size):
        return
    out = tuple(conv_output_size(v, k, s, p, d, ceil) for v in (h, w))
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    args = ((k, k), (s, s), (p, p), (d, d))
    cols = im2col(x, *args, out, pad_value=-7.0)
    np.testing.assert_array_equal(cols, _naive_im2col(x, *args, out, -7.0))
    # <im2col(x), g> == <x, col2im(g)>: col2im is exactly the transpose.
    g = np.random.default_rng(1).standard_normal(cols.shape)
    lhs = (im2col(x, *args, out) * g).sum()
    rhs = (x * col2im(g, x.shape, (k, k), (s, s), (p, p), (d, d))).sum()
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_im2col_keeps_float32():
    x = np.ones((1, 2, 5, 5), dtype=np.float32)
    cols = im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), (5, 5))
    assert cols.dtype == np.float32 and cols.shape == (2, 3, 3, 1, 5, 5)
    assert col2im(cols, x.shape, (3, 3), (1, 1), (1, 1), (1, 1)).dtype == np.float32
