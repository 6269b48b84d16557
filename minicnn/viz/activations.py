"""Feature maps: one image followed through a model, a row of channel images per stage.

Early rows still look like the picture (edges, colour); each pool halves the maps and deeper rows become
coarse, sparse blobs that respond to parts rather than pixels.  Drawing them is the quickest way to see
that a network really builds features layer upon layer, and to spot dead ReLU channels (all black).
"""
import numbers

import numpy as np

from minicnn import nn
from minicnn.backend import get_array_module
from minicnn.tensor import Tensor, no_grad
from minicnn.viz._figure import new_figure, save_figure, scale_to_unit, to_numpy

_FUNCTION = "feature_maps"

# The stages of a main path worth a row by default: what changes what the maps look like.  Batch norm
# is left out: it only shifts and scales each channel, which per-channel normalisation undoes anyway.
STAGE_TYPES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU,
               nn.Hardswish)


def _image_batch(image):
    """(1, C, H, W) float array from one image (C, H, W) or a batch of one (1, C, H, W)."""
    array = to_numpy(_FUNCTION, "image", image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{_FUNCTION}: image must be one image of shape (C, H, W), got shape {array.shape}")
    return array[None]


def _watched_layers(model, layers):
    """[(name, module)] to hook, and whether the user chose them (then each must give a feature map)."""
    named = list(model.named_modules())
    if layers is None:
        if isinstance(model, nn.Sequential):
            return list(model.named_children()), False
        stages = [(name, module) for name, module in named if isinstance(module, STAGE_TYPES)]
        if not stages:
            raise ValueError(f"{_FUNCTION}: {type(model).__name__} has no conv, pool or activation layers to "
                             "watch; pass layers=[...] (modules or names from model.named_modules())")
        return stages, False
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    by_name = dict(named)
    name_of = {id(module): name for name, module in named}
    chosen = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(f"{_FUNCTION}: {type(model).__name__} has no layer named {layer!r}; "
                                 f"some names: {[n for n, _ in named[1:6]]}")
            chosen.append((layer, by_name[layer]))
        elif isinstance(layer, nn.Module):
            if id(layer) not in name_of:
                raise ValueError(f"{_FUNCTION}: {type(layer).__name__} passed in layers is not part of "
                                 f"{type(model).__name__}")
            chosen.append((name_of[id(layer)], layer))
        else:
            raise TypeError(f"{_FUNCTION}: layers must hold Modules or layer names (str), "
                            f"got {type(layer).__name__}")
    if not chosen:
        raise ValueError(f"{_FUNCTION}: layers is empty; pass None for the default stages")
    return chosen, True


def capture_feature_maps(model, image, layers=None):
    """Run ``model`` on one image and return [(label, maps (C, H, W) array)] in the order the watched
    layers ran (a layer called twice, like a shared ReLU, gives two rows).

    Eval mode and no graph; afterwards every module's mode is restored and every hook removed, even when
    the forward raises.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_FUNCTION}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    batch = _image_batch(image)
    watched, chosen_by_user = _watched_layers(model, layers)
    captured = []  # (name, module, output of the first (only) image)

    def watcher(name):
        def hook(module, inputs, output):
            if isinstance(output, (tuple, list)):  # MaxPool2d(return_indices=True) → (values, indices)
                output = output[0]
            if isinstance(output, Tensor):
                # A copy of image 0 only: the hook must not keep the whole batch (or the graph) alive.
                captured.append((name, module, np.array(output.numpy()[0], copy=True)))
        return hook

    # The image takes the weights' dtype (a float64 image into a float32 conv is an error) and goes
    # where they live (NumPy or CuPy).
    parameter = next(model.parameters(), None)
    batch = batch.astype(np.float32 if parameter is None else parameter.dtype, copy=False)
    if parameter is not None:
        batch = get_array_module(parameter.data).asarray(batch)
    modes = [(module, module.training) for module in model.modules()]
    handles = []
    try:
        handles = [module.register_forward_hook(watcher(name)) for name, module in watched]
        model.eval()
        with no_grad():
            model(Tensor(batch))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training

    rows, calls = [], {}
    for name, module, output in captured:
        if output.ndim != 3:  # (C, H, W) per image; Linear and Flatten outputs are not feature maps
            if chosen_by_user:
                raise ValueError(f"{_FUNCTION}: layer {name!r} ({type(module).__name__}) gives output of "
                                 f"shape {(1, *output.shape)}, not feature maps (1, C, H, W)")
            continue
        calls[name] = calls.get(name, 0) + 1
        label = name if calls[name] == 1 else f"{name} (call {calls[name]})"
        rows.append((f"{label}\n{type(module).__name__} {'×'.join(map(str, output.shape))}", output))
    ran = {name for name, _, _ in captured}
    missing = [name for name, _ in watched if name not in ran]
    if chosen_by_user and missing:
        raise ValueError(f"{_FUNCTION}: layers {missing} did not run in {type(model).__name__}'s forward "
                         "(eval mode), so they have no feature maps")
    if not rows:
        raise ValueError(f"{_FUNCTION}: no layer of {type(model).__name__} produced feature maps "
                         "(1, C, H, W) for this image")
    return rows


def normalize_maps(maps, normalize="channel"):
    """Feature maps (C, H, W) stretched onto [0, 1] as float32.

    normalize="channel" stretches each map on its own (its pattern shows, whatever its scale; a constant
    map, such as a dead ReLU channel, is black); "layer" uses one scale for all, so weak channels look weak.
    """
    if normalize == "channel":
        return np.stack([scale_to_unit(channel, constant=0.0) for channel in maps])
    return scale_to_unit(maps, constant=0.0)


def feature_maps(model, image, layers=None, max_channels=16, normalize="channel", cmap="viridis", title=None,
                 save=None, dpi=100):
    """The feature maps of one ``image`` (C, H, W array or Tensor) after each stage of ``model``: one row
    per layer, the first ``max_channels`` channels side by side, each normalised to [0, 1].

    ``layers`` picks the rows: modules of ``model`` or their names in ``model.named_modules()``.  By
    default, a ``Sequential``'s top-level children, any other model's conv, pool and ReLU-like layers;
    outputs that are not (1, C, H, W) (the classifier) are skipped.  Rows come in the order the layers ran.
    The model runs once in eval mode without gradients and is left exactly as it was.

    >>> feature_maps(model, test_set.get_batch([0], rng)[0][0], save="runs/feature_maps.png")
    """
    if isinstance(max_channels, bool) or not isinstance(max_channels, numbers.Integral) or max_channels < 1:
        raise ValueError(f"{_FUNCTION}: max_channels must be a positive int, got {max_channels!r}")
    if normalize not in ("channel", "layer"):
        raise ValueError(f"{_FUNCTION}: normalize must be 'channel' or 'layer', got {normalize!r}")
    rows = capture_feature_maps(model, image, layers)
    widest = max(min(len(maps), max_channels) for _, maps in rows)

    # Every map is drawn into a slot of the same size (its own extent), whatever its resolution, so a
    # 2×2 map after four pools is as big as a 32×32 one and channel k lines up down the column.
    gap = 0.15
    height_inches = 0.8 * len(rows) + 0.6
    figure = new_figure(_FUNCTION, (max(4.0, 0.7 * widest + 2.0), height_inches), dpi)
    figure.subplots_adjust(left=0.15, right=0.98, top=1.0 - 0.5 / height_inches, bottom=0.1 / height_inches,
                           hspace=0.25)
    for index, (label, maps) in enumerate(rows):
        axes = figure.add_subplot(len(rows), 1, index + 1)
        aspect = maps.shape[2] / maps.shape[1]  # W / H of one map
        for channel, picture in enumerate(normalize_maps(maps[:max_channels], normalize)):
            left = channel * (aspect + gap)
            axes.imshow(picture, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                        extent=(left, left + aspect, 0.0, 1.0))
        axes.set_xlim(0.0, widest * (aspect + gap) - gap)
        axes.set_ylim(0.0, 1.0)
        axes.set_anchor("W")
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    figure.suptitle(title if title is not None else f"Feature maps of {type(model).__name__}",
                    y=1.0 - 0.1 / height_inches, va="top")
    save_figure(_FUNCTION, figure, save)
    return figure
