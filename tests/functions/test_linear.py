"""linear: y = x Wᵀ + b against PyTorch, finite differences, and its error messages."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch

import minicnn
import minicnn.nn.functional as F


@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_torch(x_shape, dtype):
    TF = pytest.importorskip("torch.nn.functional", reason="PyTorch (the test oracle) is not installed")

    rng = np.random.default_rng(0)
    compare_with_torch(F.linear, TF.linear,
                       [rng.standard_normal(x_shape), rng.standard_normal((4, 5)), rng.standard_normal(4)], dtype=dtype)
    compare_with_torch(F.linear, TF.linear, [rng.standard_normal(x_shape), rng.standard_normal((4, 5))], dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_linear_gradcheck(batch_shape, in_features, out_features, with_bias):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((*batch_shape, in_features)), rng.standard_normal((out_features, in_features))]
    if with_bias:
        inputs.append(rng.standard_normal(out_features))
    assert minicnn.gradcheck(F.linear, inputs)


def test_course_example_fully_connected_parameter_count():
    # 784 inputs to 100 units: 78,400 weights (the course's argument for weight sharing).
    weight = minicnn.zeros(100, 784)
    assert weight.numel() == 78_400
    assert F.linear(minicnn.zeros(2, 784), weight).shape == (2, 100)


def test_linear_rejects_mismatched_features_and_bias():
    with pytest.raises(ValueError, match=r"linear: input has 3 features \(shape \(2, 3\)\) but weight expects 4"):
        F.linear(minicnn.zeros(2, 3), minicnn.zeros(5, 4))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\), got \(4,\)"):
        F.linear(minicnn.zeros(2, 4), minicnn.zeros(5, 4), minicnn.zeros(4))
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D"):
        F.linear(minicnn.zeros(2, 4), minicnn.zeros(4))
