"""Adam and AdamW: per-parameter step sizes from running moments of the gradient (PyTorch's rule)."""
from minicnn.backend import get_array_module
from minicnn.optim.optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), the same update as ``torch.optim.Adam``.

    For each parameter θ with gradient g (negated first if ``maximize``), at step t = 1, 2, ...::

        g ← g + weight_decay · θ                 (L2 penalty; AdamW decays θ directly instead)
        m ← β1 · m + (1 − β1) · g                (first moment: a running mean of g)
        v ← β2 · v + (1 − β2) · g²               (second moment: a running mean of g²)
        v̂ ← max(v̂, v) if amsgrad, else v
        θ ← θ − lr / (1 − β1ᵗ) · m / (√v̂ / √(1 − β2ᵗ) + eps)

    The ``1 − βᵗ`` factors undo the bias of moments that start at zero.

    >>> optimizer = Adam(model.parameters(), lr=1e-3)
    """

    _state_names = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 *, maximize=False, decoupled_weight_decay=False):
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_group(self, group):
        self._check_at_least_zero(group["lr"], "learning rate")
        self._check_at_least_zero(group["eps"], "epsilon value")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self._check_in_unit_interval(betas[0], "beta parameter at index 0:")
        self._check_in_unit_interval(betas[1], "beta parameter at index 1:")
        self._check_at_least_zero(group["weight_decay"], "weight_decay")

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        # Python floats, so a NumPy float64 hyper-parameter cannot promote float32 arrays.
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(beta) for beta in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]

        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1.0 - lr * weight_decay
            else:
                grad = grad + weight_decay * param

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1.0 - beta1) * (grad - exp_avg)  # PyTorch's lerp: m + (1 − β1)(g − m)
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * grad * grad

        bias_correction1 = 1.0 - beta1 ** step
        bias_correction2_sqrt = (1.0 - beta2 ** step) ** 0.5
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            max_exp_avg_sq = state.setdefault("max_exp_avg_sq", xp.zeros_like(param))
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            second_moment = max_exp_avg_sq
        denom = xp.sqrt(second_moment) / bias_correction2_sqrt + eps
        param -= (lr / bias_correction1) * (exp_avg / denom)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Instead of adding ``weight_decay · θ`` to the gradient (where Adam's
    normalisation would shrink it), each step first shrinks the weights directly:
    ``θ ← θ · (1 − lr · weight_decay)``, then applies the plain Adam update.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
