"""``Parameter``: a tensor that a ``Module`` learns.

It is an ordinary ``Tensor`` in every computation; only its type differs, and
that is how ``Module.__setattr__`` knows to register it with ``parameters()``
and ``state_dict()`` rather than keep it as a plain attribute.
"""
import numpy as np

from minicnn.tensor import DEFAULT_DTYPE, Tensor


class Parameter(Tensor):
    """A learnable tensor: requires a gradient by default and registers itself on assignment.

    >>> layer.scale = Parameter(minicnn.ones(8))   # now in layer.parameters()
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=DEFAULT_DTYPE)
        # A Tensor's array is shared, not copied: wrapping a weight keeps one buffer.
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
