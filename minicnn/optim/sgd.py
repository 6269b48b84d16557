"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's rule)."""
from minicnn.device import get_array_module
from minicnn.optim.optimizer import Optimizer


# Elements updated at a time (1 MB of float32): the update's temporaries stay in the L2 cache.
SLICE = 1 << 18


class SGD(Optimizer):
    r"""Stochastic gradient descent, the same update as ``torch.optim.SGD``.

    For each parameter θ with gradient g (negated first if ``maximize``)::

        g ← g + weight_decay · θ                      (L2 penalty)
        b ← g                         on the first step,
        b ← momentum · b + (1 − dampening) · g         afterwards
        g ← g + momentum · b   if nesterov,  else  g ← b
        θ ← θ − lr · g

    Note the velocity convention: the learning rate multiplies the buffer at the
    end (PyTorch's form), not each gradient as it enters the buffer (Sutskever's).

    >>> optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    >>> loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    _state_names = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 *, maximize=False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        self._check_at_least_zero(group["lr"], "learning rate")
        self._check_at_least_zero(group["momentum"], "momentum")
        self._check_number(group["dampening"], "dampening")
        self._check_at_least_zero(group["weight_decay"], "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self._name}: nesterov momentum requires momentum > 0 and dampening 0, "
                             f"got momentum={group['momentum']} and dampening={group['dampening']}")

    def _update(self, param, grad, state, group):
        momentum = float(group["momentum"])
        first_step = momentum != 0 and state.get("momentum_buffer") is None
        if first_step:
            state["momentum_buffer"] = get_array_module(param).empty_like(param)
        buffer = state.get("momentum_buffer")
        # A slice at a time: its temporaries stay in cache, and a 400 MB classifier weight needs no
        # 400 MB scratch array.  Slices need a flat view; a parameter that has none is done in one piece.
        pieces = [slice(None)]
        if param.flags.c_contiguous and (buffer is None or buffer.flags.c_contiguous):
            param, grad = param.reshape(-1), grad.reshape(-1)
            buffer = None if buffer is None else buffer.reshape(-1)
            pieces = [slice(start, start + SLICE) for start in range(0, param.size, SLICE)]
        for piece in pieces:
            self._update_slice(param[piece], grad[piece], None if buffer is None else buffer[piece],
                               first_step, group)

    def _update_slice(self, param, grad, buffer, first_step, group):
        # Python floats, so a NumPy float64 hyper-parameter cannot promote float32 arrays.
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay, dampening = float(group["weight_decay"]), float(group["dampening"])
        # In-place passes over one new array, ``step``; the roundings are the formula's, in its order.
        if weight_decay != 0:
            step = param * weight_decay
            step += grad
        else:
            step = grad.copy()
        if momentum != 0:
            if first_step:
                buffer[...] = step
            else:
                buffer *= momentum
                buffer += (1.0 - dampening) * step if dampening else step
            if group["nesterov"]:
                step += momentum * buffer
            else:
                get_array_module(step).multiply(buffer, lr, out=step)  # step ← lr · b
                param -= step
                return
        step *= lr
        param -= step
