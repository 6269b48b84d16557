"""Flatten: the reshape between the convolutional features and the classifier."""
import minicnn.nn.functional as F
from minicnn.checks import check_int
from minicnn.nn.module import Module


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one: (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = check_int("Flatten", "start_dim", start_dim)
        self.end_dim = check_int("Flatten", "end_dim", end_dim)

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
