"""Fully connected layer: y = x · Wᵀ + b, with weight (out_features, in_features) as in PyTorch.

Backward: dx = gy · W,  dW = gyᵀ · x,  db = Σ gy over every axis but the last.
Leading axes of x (batch, sequence, ...) are flattened into one for the products.
"""
from minicnn.backend import kernels_for
from minicnn.checks import check_input_and_weight, check_type
from minicnn.tensor import Function, Tensor


class Linear(Function):
    """y = x · Wᵀ + b with W (out, in) and x's leading axes taken as rows (M, in);
    with gy = ∂L/∂y as rows (M, out):  ∂L/∂x = gy · W,   ∂L/∂W = gyᵀ · x,   ∂L/∂b = Σ gy over the rows.

    Kernels: matmul, bias_add, channel_sum.
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        in_features, out_features = weight.shape[1], weight.shape[0]
        kernels = kernels_for(x)
        y = kernels.matmul(x.reshape(-1, in_features), weight.T).reshape(*x.shape[:-1], out_features)
        if bias is not None:
            y = kernels.bias_add(y, bias, axis=-1)
        return y

    def backward(self, gy):
        kernels = kernels_for(gy)
        in_features, out_features = self.x.shape[-1], gy.shape[-1]
        gy_rows = gy.reshape(-1, out_features)  # (batch…, out) as one matrix
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_x = kernels.matmul(gy_rows, self.weight).reshape(self.x.shape)
        if self.needs_input_grad[1]:
            grad_weight = kernels.matmul(gy_rows.T, self.x.reshape(-1, in_features))
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_bias = kernels.channel_sum(gy, axis=-1)
        return grad_x, grad_weight, grad_bias


def linear(input, weight, bias=None):  # noqa: A002  (PyTorch's argument name)
    """y = input @ weight.T + bias for input (..., in_features) and weight (out_features, in_features)."""
    check_type("linear", "input", input, Tensor)
    check_type("linear", "weight", weight, Tensor)
    check_input_and_weight("linear", input, weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {input.shape[-1] if input.ndim else 0} features (shape {input.shape}) "
            f"but weight expects {weight.shape[1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear()(input, weight) if bias is None else Linear()(input, weight, bias)
