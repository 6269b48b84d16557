"""RMSprop: divide the gradient by a running root-mean-square of recent gradients (PyTorch's rule)."""
from minicnn.backend import get_array_module
from minicnn.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), the same update as ``torch.optim.RMSprop``.

    For each parameter θ with gradient g (negated first if ``maximize``)::

        g ← g + weight_decay · θ
        v ← α · v + (1 − α) · g²                      (running mean of g²)
        if centered:  ḡ ← α · ḡ + (1 − α) · g,   v' = v − ḡ²   (a running variance)
        else:         v' = v
        d ← √v' + eps
        if momentum > 0:  b ← momentum · b + g / d,   θ ← θ − lr · b
        else:             θ ← θ − lr · g / d

    Note that eps is added outside the square root, as in PyTorch (TensorFlow adds it inside).

    >>> optimizer = RMSprop(model.parameters(), lr=1e-2, alpha=0.99)
    """

    _state_names = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 *, maximize=False):
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        self._check_at_least_zero(group["lr"], "learning rate")
        self._check_at_least_zero(group["eps"], "epsilon value")
        self._check_at_least_zero(group["momentum"], "momentum")
        self._check_at_least_zero(group["weight_decay"], "weight_decay")
        self._check_at_least_zero(group["alpha"], "alpha")

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        # Python floats, so a NumPy float64 hyper-parameter cannot promote float32 arrays.
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1

        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", xp.zeros_like(param))
            grad_avg += (1.0 - alpha) * (grad - grad_avg)  # PyTorch's lerp
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps

        if momentum > 0:
            buffer = state.setdefault("momentum_buffer", xp.zeros_like(param))
            buffer *= momentum
            buffer += grad / avg
            param -= lr * buffer
        else:
            param -= lr * (grad / avg)
