"""The width multiplier, spelt ``width_mult`` as in torchvision: one knob that thins every layer.

VGG, the CIFAR ResNets/plain nets and the MobileNets scale their channel counts by ``width_mult``
(0.25 keeps a quarter of the filters: about 1/16 of the multiply-adds), so the course's models train on
a laptop CPU with the paper's depth and layout.  This file holds the check every such model makes, and
``accepts_width_multiplier``: VGG and the CIFAR nets once spelt the keyword ``width_multiplier``, and
the old spelling still works, with a DeprecationWarning, so that old scripts keep running.
"""
import functools
import math
import numbers
import sys
import warnings

__all__ = ["accepts_width_multiplier", "check_width_mult"]


def check_width_mult(model_name, width_mult):
    """``width_mult`` as a float, or a TypeError/ValueError naming the model."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, numbers.Real):
        raise TypeError(f"{model_name}: width_mult must be a number, got {type(width_mult).__name__} {width_mult!r}")
    if not (width_mult > 0 and math.isfinite(width_mult)):  # NaN fails both comparisons
        raise ValueError(f"{model_name}: width_mult must be a positive finite number, got {width_mult}")
    return float(width_mult)


def _stacklevel_of_the_caller():
    """The stacklevel (counted from our caller) of the first frame outside minicnn.models.

    Python shows a DeprecationWarning only when it points into ``__main__``; pointed at the builder
    that received the keyword (vgg11 → vgg), it would be hidden from the script that should change.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("minicnn.models"):
        frame, level = frame.f_back, level + 1
    return level


def accepts_width_multiplier(build):
    """Let ``build`` also take ``width_multiplier=``, the old name of ``width_mult``, with a DeprecationWarning.

    The warning names the model (the ``name`` keyword when one is passed, else the builder); both
    keywords at once is a TypeError.

    >>> @accepts_width_multiplier
    ... def slim(width_mult=1.0, name="slim"):
    ...     return width_mult
    >>> slim(width_multiplier=0.5)   # DeprecationWarning: slim: width_multiplier is deprecated; use width_mult
    0.5
    """
    @functools.wraps(build)
    def build_with_either_name(*args, **kwargs):
        if "width_multiplier" in kwargs:
            model_name = kwargs.get("name") or build.__qualname__.removesuffix(".__init__")
            if "width_mult" in kwargs:
                raise TypeError(f"{model_name}: got width_mult and width_multiplier (its deprecated name); "
                                "pass width_mult only")
            warnings.warn(f"{model_name}: width_multiplier is deprecated; use width_mult (torchvision's name)",
                          DeprecationWarning, stacklevel=_stacklevel_of_the_caller())
            kwargs["width_mult"] = kwargs.pop("width_multiplier")
        return build(*args, **kwargs)

    return build_with_either_name
