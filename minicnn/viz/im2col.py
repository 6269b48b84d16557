"""im2col drawn: the windows on the input, and the column matrix they become.

A convolution slides a KH×KW window over the (padded) input; im2col copies each window's C·KH·KW numbers
into one column, so the whole convolution is one matrix product, weight (OC, C·KH·KW) @ cols
(C·KH·KW, OH·OW).  The picture colours window k and column k alike, so a reader sees which pixels each
column holds, that overlapping windows copy a pixel several times (the memory im2col pays for speed), and
which entries are only padding (grey, 0).  Given a shape instead of an image, the pixels are numbered
1, 2, 3, … so every number in the matrix says where it came from.  The matrix is the one minicnn's
convolution multiplies: ``minicnn.backend.cpu.im2col``.
"""
import numbers

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from minicnn.backend.cpu.im2col import im2col
from minicnn.checks import check_pair
from minicnn.shapes import conv_output_size
from minicnn.viz._figure import new_figure, save_figure, scale_to_unit, to_numpy

_FUNCTION = "im2col_picture"
MAX_CHANNELS = 4     # one input panel per channel
MAX_ROWS = 100       # C·KH·KW
MAX_COLUMNS = 400    # OH·OW windows
NUMBERS_UP_TO = 40   # rows and columns (and padded input side) up to which each cell shows its number
PADDING_GREY = (0.86, 0.86, 0.86)
OUTLINE_ALL_UP_TO = 12  # windows; more would hide the input under their edges


def _as_image(image_or_shape):
    """(image (C, H, W) float64, numbered): a shape gives pixels numbered 1 … C·H·W."""
    if isinstance(image_or_shape, (tuple, list)) and all(
            isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in image_or_shape):
        shape = tuple(int(size) for size in image_or_shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"{_FUNCTION}: a shape must be (H, W) or (C, H, W) of positive sizes, "
                             f"got {image_or_shape!r}")
        shape = (1, *shape) if len(shape) == 2 else shape
        return np.arange(1.0, np.prod(shape) + 1.0).reshape(shape), True
    image = to_numpy(_FUNCTION, "image_or_shape", image_or_shape).astype(np.float64)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]  # a batch of one (1, C, H, W)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or 0 in image.shape:
        raise ValueError(f"{_FUNCTION}: expected an image (H, W), (C, H, W) or (1, C, H, W), or a shape "
                         f"tuple, got an array of shape {np.shape(image_or_shape)}")
    if not np.isfinite(image).all():
        raise ValueError(f"{_FUNCTION}: the image holds NaN or Inf")
    return image, False


def _cell_text(value, numbered):
    return f"{int(value)}" if numbered or float(value).is_integer() else f"{value:.2f}"


def _text_colour(rgb):
    """Black on light cells, white on dark ones (luminance, ITU-R BT.601 weights)."""
    return "white" if rgb @ (0.299, 0.587, 0.114) < 0.45 else "black"


def _write_numbers(axes, values, rgb, numbered, fontsize):
    for (row, column), value in np.ndenumerate(values):
        axes.text(column, row, _cell_text(value, numbered), ha="center", va="center", fontsize=fontsize,
                  color=_text_colour(rgb[row, column]))


def _window_colours(count):
    palette = [colour for k, colour in enumerate(colormaps["tab10"].colors) if k != 7]  # no grey: padding is
    return np.array([palette[k % len(palette)] for k in range(count)])  # (OH·OW, 3)


def _outlined(count):
    """Which windows the input panels outline: all of a few; of many, the first two and the last."""
    return list(range(count)) if count <= OUTLINE_ALL_UP_TO else [0, 1, count - 1]


def _matrix_colours(cols, from_padding, colours, numbered):
    """RGB (rows, columns, 3): each column in its window's colour, lighter where the value is small (an
    image) or evenly tinted (numbered pixels); padding entries grey."""
    if numbered:
        strength = np.full(cols.shape, 0.55)
    else:
        strength = 0.2 + 0.8 * scale_to_unit(cols, constant=1.0)
    rgb = 1.0 - strength[..., None] * (1.0 - colours[None, :, :])  # blend white → window colour
    rgb[from_padding] = PADDING_GREY
    return rgb


def _draw_input(axes, padded, is_padding, channel, numbered, corners, extent, colours, dilation):
    """One channel of the padded input, its windows outlined in their colours."""
    if numbered:
        rgb = np.ones((*padded.shape, 3))
    else:
        rgb = np.repeat(scale_to_unit(padded)[..., None], 3, axis=2)
    rgb[is_padding] = PADDING_GREY
    axes.imshow(rgb, interpolation="nearest")
    if max(padded.shape) <= NUMBERS_UP_TO // 2:
        _write_numbers(axes, padded, rgb, numbered, fontsize=7 if numbered else 6)
    outlined = _outlined(len(corners))
    for k in outlined:
        top, left = corners[k]
        inset = 0.08 + 0.07 * (k % 4)  # overlapping windows' edges stay apart
        axes.add_patch(Rectangle((left - 0.5 + inset, top - 0.5 + inset), extent[1] - 2 * inset,
                                 extent[0] - 2 * inset, fill=False, edgecolor=colours[k], linewidth=1.6))
        if dilation != (1, 1):  # a dilated window reads only every d-th cell: mark the ones it reads
            taps = [(top + i, left + j) for i in range(0, extent[0], dilation[0])
                    for j in range(0, extent[1], dilation[1])]
            axes.scatter([j for _, j in taps], [i for i, _ in taps], marker="s", s=60, facecolors="none",
                         edgecolors=[colours[k]], linewidths=1.2, zorder=3)
    shown = "windows outlined" if len(outlined) == len(corners) else (
        f"windows 0, 1 and {len(corners) - 1} outlined")
    axes.set_title(f"input channel {channel} (padded)\n{shown}", fontsize=9)
    axes.set_xlabel("input column")
    axes.set_ylabel("input row")
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_matrix(axes, cols, from_padding, colours, numbered, kernel_size):
    rows, columns = cols.shape
    rgb = _matrix_colours(cols, from_padding, colours, numbered)
    axes.imshow(rgb, interpolation="nearest", aspect="auto" if columns > NUMBERS_UP_TO else "equal")
    if rows <= NUMBERS_UP_TO and columns <= NUMBERS_UP_TO:
        _write_numbers(axes, cols, rgb, numbered, fontsize=6)
    if columns <= NUMBERS_UP_TO:
        axes.set_xticks(range(columns), [str(k) for k in range(columns)], fontsize=7)
        for label, colour in zip(axes.get_xticklabels(), colours):
            label.set_color(colour)
    if rows <= NUMBERS_UP_TO:
        kh, kw = kernel_size
        names = [f"c{c} ({i},{j})" for c in range(rows // (kh * kw)) for i in range(kh) for j in range(kw)]
        axes.set_yticks(range(rows), names, fontsize=6)
    axes.set_title(f"column matrix: {rows} rows × {columns} columns", fontsize=9)
    axes.set_xlabel("column = window = output position (oh·OW + ow)")
    axes.set_ylabel("row = (channel, kernel row, kernel col)")


def im2col_picture(image_or_shape, kernel_size, stride=1, padding=0, dilation=1, title=None, save=None,
                   dpi=100):
    """The input with its windows outlined, beside the im2col column matrix coloured window by window.

    ``image_or_shape`` is an image (H, W), (C, H, W) or (1, C, H, W) as an array or Tensor, or a shape
    (H, W) / (C, H, W), whose pixels are then numbered 1 … C·H·W.  ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` are ints or (height, width) pairs, as for ``nn.Conv2d``.  The matrix has
    C·KH·KW rows and OH·OW columns; column k is window k, counted row by row over the output, and the last
    Axes of the figure holds it.  At most 4 channels, 100 rows and 400 columns; numbers are written in the
    cells up to 40 rows and columns.

    >>> im2col_picture((1, 4, 4), kernel_size=3)            # 4 windows → a 9 × 4 matrix
    >>> im2col_picture(image, kernel_size=3, stride=2, padding=1, save="runs/im2col.png")
    """
    image, numbered = _as_image(image_or_shape)
    kernel_size = check_pair(_FUNCTION, "kernel_size", kernel_size)
    stride = check_pair(_FUNCTION, "stride", stride)
    padding = check_pair(_FUNCTION, "padding", padding, minimum=0)
    dilation = check_pair(_FUNCTION, "dilation", dilation)
    channels, height, width = image.shape
    out_size = tuple(conv_output_size(size, k, s, p, d) for size, k, s, p, d in
                     zip((height, width), kernel_size, stride, padding, dilation))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))  # cells one window spans
    if min(out_size) < 1:
        raise ValueError(f"{_FUNCTION}: a {extent[0]}×{extent[1]} window does not fit the padded input "
                         f"{height + 2 * padding[0]}×{width + 2 * padding[1]}")
    rows, columns = channels * kernel_size[0] * kernel_size[1], out_size[0] * out_size[1]
    if channels > MAX_CHANNELS or rows > MAX_ROWS or columns > MAX_COLUMNS:
        raise ValueError(f"{_FUNCTION}: too large to draw: {channels} channels, a {rows} × {columns} matrix "
                         f"(at most {MAX_CHANNELS} channels, {MAX_ROWS} rows, {MAX_COLUMNS} columns); "
                         "try a smaller image or a larger stride")

    args = (kernel_size, stride, padding, dilation, out_size)
    cols = im2col(image[None], *args).reshape(rows, columns)  # (C·KH·KW, OH·OW), N = 1
    from_padding = im2col(np.ones((1, *image.shape)), *args).reshape(rows, columns) == 0
    (ph, pw), (sh, sw) = padding, stride
    padded = np.pad(image, ((0, 0), (ph, ph), (pw, pw)))
    is_padding = np.pad(np.zeros((height, width), dtype=bool), ((ph, ph), (pw, pw)), constant_values=True)
    corners = [(oh * sh, ow * sw) for oh in range(out_size[0]) for ow in range(out_size[1])]
    colours = _window_colours(columns)

    side = 0.36 if max(padded.shape[1:]) <= NUMBERS_UP_TO // 2 else 0.12
    input_width = padded.shape[2] * side
    matrix_width = min(12.0, max(3.0, columns * 0.3))
    height_inches = min(10.0, max(3.2, rows * 0.22, padded.shape[1] * side) + 1.2)
    figure = new_figure(_FUNCTION, (channels * input_width + matrix_width + 1.5, height_inches), dpi)
    figure.set_layout_engine("constrained")
    grid = figure.add_gridspec(1, channels + 1, width_ratios=[input_width] * channels + [matrix_width])
    for channel in range(channels):
        _draw_input(figure.add_subplot(grid[0, channel]), padded[channel], is_padding, channel, numbered,
                    corners, extent, colours, dilation)
    _draw_matrix(figure.add_subplot(grid[0, channels]), cols, from_padding, colours, numbered, kernel_size)
    if title is None:
        title = (f"im2col: {channels}×{height}×{width} input, {kernel_size[0]}×{kernel_size[1]} kernel, "
                 f"stride {stride[0]}, padding {padding[0]} → {out_size[0]}×{out_size[1]} windows, "
                 f"cols {rows} × {columns}")
    figure.suptitle(title, fontsize=10)
    save_figure(_FUNCTION, figure, save)
    return figure
