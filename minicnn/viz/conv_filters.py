"""The first conv layer's filters, each drawn as a tiny image.

The first layer looks straight at pixels, so its weights are pictures themselves: after training on
natural images they become edge, colour-blob and stripe detectors (AlexNet's Figure 3); untrained, or
after a failed run, they stay noise.  Deeper filters mix abstract channels and are not drawn this way.
"""
import math
import numbers

from minicnn import nn
from minicnn.viz._figure import new_figure, save_figure, scale_to_unit, to_numpy

_FUNCTION = "filters"


def first_conv_weight(model_or_weight):
    """(weight (OC, C, kh, kw) array, a short description) of the first Conv2d in ``model.modules()``,
    or of a weight array/Tensor given directly."""
    if isinstance(model_or_weight, nn.Module):
        for name, module in model_or_weight.named_modules():
            if isinstance(module, nn.Conv2d):
                weight = to_numpy(_FUNCTION, "the conv weight", module.weight)
                kh, kw = weight.shape[2:]
                layer = name or type(module).__name__
                return weight, f"{layer}: {module.in_channels}→{module.out_channels}, {kh}×{kw}"
        raise ValueError(f"{_FUNCTION}: {type(model_or_weight).__name__} has no Conv2d layer, so there are "
                         "no filters to draw (expected a model with a convolution, or a weight "
                         "(OC, C, kh, kw))")
    weight = to_numpy(_FUNCTION, "model_or_weight", model_or_weight)
    if weight.ndim != 4 or 0 in weight.shape:
        raise ValueError(f"{_FUNCTION}: expected a Module or a conv weight of shape "
                         f"(out_channels, in_channels, kh, kw), got an array of shape {weight.shape}")
    return weight, f"{weight.shape[1]}→{weight.shape[0]}, {weight.shape[2]}×{weight.shape[3]}"


def filter_image(weight):
    """One filter (C, kh, kw) as an image in [0, 1]: (kh, kw, 3) colour when C is 3, else (kh, kw) grey
    (the mean over input channels when C is neither 1 nor 3).

    The three colour channels are stretched together, not one by one, so the filter's hue survives.
    """
    if weight.shape[0] == 3:
        return scale_to_unit(weight.transpose(1, 2, 0))  # (kh, kw, 3): imshow's channel order
    return scale_to_unit(weight.mean(axis=0))


def filters(model_or_weight, max_filters=64, ncols=None, title=None, save=None, dpi=100):
    """A grid of the first conv layer's filters (at most ``max_filters``), each normalised to [0, 1].

    ``model_or_weight`` is a model (its first ``Conv2d`` in ``model.modules()`` order) or a weight of
    shape (out_channels, in_channels, kh, kw) as an array or Tensor.  One Axes per filter, in filter
    order, ``ncols`` per row (a near-square grid by default).

    >>> filters(model, save="runs/filters.png")    # VGG's 64 first-layer 3×3 filters, in colour
    """
    if isinstance(max_filters, bool) or not isinstance(max_filters, numbers.Integral) or max_filters < 1:
        raise ValueError(f"{_FUNCTION}: max_filters must be a positive int, got {max_filters!r}")
    weight, description = first_conv_weight(model_or_weight)
    count = min(len(weight), int(max_filters))
    if ncols is None:
        ncols = math.ceil(math.sqrt(count))
    elif isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"{_FUNCTION}: ncols must be a positive int or None, got {ncols!r}")
    ncols = min(int(ncols), count)
    nrows = math.ceil(count / ncols)

    figure = new_figure(_FUNCTION, (max(3.0, 0.7 * ncols), 0.7 * nrows + 0.6), dpi)
    for index in range(count):
        axes = figure.add_subplot(nrows, ncols, index + 1)
        image = filter_image(weight[index])
        axes.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0.0, vmax=1.0,
                    interpolation="nearest")
        axes.set_axis_off()
    shown = f"all {count}" if count == len(weight) else f"first {count} of {len(weight)}"
    figure.suptitle(title if title is not None else f"First conv filters ({description}; {shown})")
    figure.subplots_adjust(wspace=0.08, hspace=0.08)
    save_figure(_FUNCTION, figure, save)
    return figure
