"""Linear (a fully connected layer) and Identity (a placeholder that passes input through)."""
import math

import numpy as np

import minicnn.nn.functional as F
from minicnn.checks import check_positive_int, check_type
from minicnn.nn import init
from minicnn.nn.module import Module
from minicnn.nn.parameter import Parameter
from minicnn.tensor import DEFAULT_DTYPE, Tensor


class Identity(Module):
    """Returns its input unchanged; useful to switch a block off without rewiring ``forward``."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x @ weight.T + bias, over the last dimension of x.

    weight: (out_features, in_features); bias: (out_features,).

    >>> Linear(512, 10)(minicnn.randn(8, 512)).shape
    (8, 10)
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = check_positive_int("Linear", "in_features", in_features)
        self.out_features = check_positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=DEFAULT_DTYPE))
        if bias:
            self.bias = Parameter(np.empty((out_features,), dtype=DEFAULT_DTYPE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=√5), i.e. U(±1/√in_features), for weight and bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_type("Linear", "input", x, Tensor)  # before x.ndim, which a list lacks
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input's last dimension must be in_features={self.in_features}, got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
