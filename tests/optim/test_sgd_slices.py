"""SGD updates a large parameter a slice at a time: the result is the one-piece update, bit for bit."""
import numpy as np
import pytest

import minicnn
from minicnn import optim
from minicnn.optim import sgd


def reference_sgd(param, grads, lr, momentum, weight_decay, nesterov):
    """PyTorch's formula, written out on whole arrays in float32."""
    buffer = None
    for grad in grads:
        step = param * np.float32(weight_decay) + grad
        buffer = step.copy() if buffer is None else buffer * np.float32(momentum) + step
        step = step + np.float32(momentum) * buffer if nesterov else buffer
        param = param - np.float32(lr) * step
    return param, buffer


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_sliced_update_equals_the_formula_on_the_whole_array(nesterov, layout):
    rng = np.random.default_rng(0)
    shape = (sgd.SLICE // 100 + 7, 300)  # more than two slices, the last one partial
    start = rng.standard_normal(shape, dtype=np.float32)
    grads = [rng.standard_normal(shape, dtype=np.float32) for _ in range(3)]
    param = minicnn.nn.Parameter(minicnn.tensor(start.copy()))
    if layout == "transposed":  # a parameter without a flat view is updated in one piece, still in place
        param.data = np.asfortranarray(start)
    optimizer = optim.SGD([param], lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=nesterov)
    for grad in grads:
        param.grad = minicnn.tensor(grad)
        optimizer.step()
    expected_param, expected_buffer = reference_sgd(start, grads, 0.1, 0.9, 1e-2, nesterov)
    np.testing.assert_allclose(param.numpy(), expected_param, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(optimizer.state[param]["momentum_buffer"], expected_buffer, rtol=1e-6, atol=1e-6)
    assert optimizer.state[param]["momentum_buffer"].shape == shape
