"""Inverted dropout: scaling, reproducibility from the seed, and the Philox generator behind it."""
import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn.backend.cpu.random import philox4x32


def test_philox_matches_the_random123_known_answers():
    # Known-answer vectors published with Random123 (Salmon et al. 2011) for philox4x32-10.
    assert [int(w) for w in philox4x32((0, 0, 0, 0), 0)] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = (0xFFFFFFFF,) * 4
    assert [int(w) for w in philox4x32(ones, 0xFFFFFFFFFFFFFFFF)] == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    pi = (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)
    assert [int(w) for w in philox4x32(pi, 0x299F31D0A4093822)] == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def test_dropout_zeroes_about_p_and_keeps_the_mean():
    minicnn.manual_seed(0)
    y = F.dropout(minicnn.ones(400, 500), p=0.3, training=True)
    dropped = float((y.numpy() == 0).mean())
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(y.numpy()[y.numpy() != 0], 1 / 0.7, rtol=1e-6)
    assert abs(float(y.numpy().mean()) - 1.0) < 0.02
    assert y.dtype == np.float32


def test_dropout_gradient_uses_the_same_mask():
    minicnn.manual_seed(3)
    x = minicnn.randn(50, 40, requires_grad=True)
    y = F.dropout(x, p=0.5)
    y.backward(minicnn.ones_like(y))
    mask = y.numpy() / x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)


def test_dropout_gradcheck_with_a_fixed_mask():
    def dropout_with_seed(x):
        minicnn.manual_seed(7)  # every evaluation draws the same mask
        return F.dropout(x, p=0.4)

    assert minicnn.gradcheck(dropout_with_seed, [np.random.default_rng(0).standard_normal((3, 5))])


def test_dropout_is_reproducible_from_manual_seed_and_differs_between_calls():
    minicnn.manual_seed(42)
    first, second = F.dropout(minicnn.ones(1000), 0.5), F.dropout(minicnn.ones(1000), 0.5)
    minicnn.manual_seed(42)
    again = F.dropout(minicnn.ones(1000), 0.5)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), second.numpy())


def test_dropout_in_eval_or_with_p_zero_is_identity():
    x = minicnn.randn(10)
    assert F.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\), got"):
        F.dropout(minicnn.ones(3), p)


def test_dropout_rejects_p_that_is_not_a_number():
    with pytest.raises(TypeError, match="dropout: p must be a number, got str '0.5'"):
        F.dropout(minicnn.ones(3), "0.5")
