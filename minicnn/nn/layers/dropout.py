"""Dropout: zero each element with probability p while training, scaling the rest by 1/(1-p)."""
import minicnn.nn.functional as F
from minicnn.checks import check_probability
from minicnn.nn.module import Module


class Dropout(Module):
    """Inverted dropout: active in ``train()`` mode, the identity in ``eval()`` mode.

    ``p`` must lie in [0, 1): p = 1 would drop everything and learn nothing.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = check_probability("Dropout", "p", p)
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
