"""viz.im2col_picture: the matrix it draws is the one minicnn's convolution multiplies, column k in window
k's colour, padding grey; it saves a PNG and refuses what it cannot draw, naming itself."""
import itertools

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import minicnn
from minicnn import viz
from minicnn.backend.cpu.im2col import im2col
from minicnn.shapes import conv_output_size
from minicnn.viz.im2col import PADDING_GREY

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def drawn_matrix(figure):
    """The numbers written in the matrix panel (the last Axes), as a (rows, columns) array."""
    axes = figure.axes[-1]
    rows, columns = axes.images[0].get_array().shape[:2]
    matrix = np.full((rows, columns), np.nan)
    for text in axes.texts:
        column, row = text.get_position()
        matrix[int(row), int(column)] = float(text.get_text())
    return matrix


def kernel_matrix(image, kernel_size, stride, padding, dilation=1):
    """The column matrix straight from the im2col kernel, (C·KH·KW, OH·OW)."""
    image = np.asarray(image, dtype=np.float64)
    channels, height, width = image.shape
    pairs = [(v, v) for v in (kernel_size, stride, padding, dilation)]
    out_size = tuple(conv_output_size(size, *axis) for size, *axis in zip((height, width), *pairs))
    cols = im2col(image[None], *pairs, out_size)
    return cols.reshape(channels * kernel_size**2, -1)


def test_returns_a_figure_and_a_shape_numbers_the_pixels_from_one():
    figure = viz.im2col_picture((3, 3), kernel_size=2)
    assert isinstance(figure, Figure)
    # Windows of a 3×3 grid numbered 1..9, a 2×2 kernel: by hand, column k is window k read row by row.
    expected = np.array([[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]]).T
    np.testing.assert_array_equal(drawn_matrix(figure), expected)


@pytest.mark.parametrize("shape, kernel_size, stride, padding", [
    ((1, 4, 4), 3, 1, 0),
    ((3, 5, 5), 3, 2, 1),
    ((2, 3, 3), 2, 1, 2),                   # windows made mostly of padding
    ((1, 7, 7), 5, 3, 1),
])
def test_the_drawn_matrix_is_the_im2col_kernel_s(shape, kernel_size, stride, padding):
    numbered = np.arange(1.0, np.prod(shape) + 1.0).reshape(shape)
    figure = viz.im2col_picture(shape, kernel_size, stride=stride, padding=padding)
    np.testing.assert_array_equal(drawn_matrix(figure), kernel_matrix(numbered, kernel_size, stride, padding))
    assert len(figure.axes) == shape[0] + 1  # one panel per input channel, then the matrix


def test_an_image_tensor_draws_its_own_values_with_dilation():
    rng = np.random.default_rng(0)
    image = np.round(rng.standard_normal((2, 6, 6)), 2)
    figure = viz.im2col_picture(minicnn.tensor(image[None]), 3, stride=1, padding=1, dilation=(2, 2))
    np.testing.assert_allclose(drawn_matrix(figure), kernel_matrix(image, 3, 1, 1, dilation=2), atol=0.006)


def test_each_column_wears_its_window_s_colour_and_padding_is_grey():
    figure = viz.im2col_picture((1, 4, 4), kernel_size=3, padding=1)
    rgb = figure.axes[-1].images[0].get_array()  # (9 rows, 16 columns, 3)
    from_padding = kernel_matrix(np.ones((1, 4, 4)), 3, 1, 1) == 0
    np.testing.assert_allclose(rgb[from_padding], np.broadcast_to(PADDING_GREY, rgb[from_padding].shape))
    for column in range(rgb.shape[1]):
        inside = rgb[~from_padding[:, column], column]
        assert (inside == inside[0]).all()  # one colour for the whole column
    window_colours = [rgb[4, column] for column in range(rgb.shape[1])]  # the centre row is never padding
    assert all((a != b).any() for a, b in itertools.pairwise(window_colours))  # neighbours differ
    # The input panel outlines window k in the colour of column k's tick label.
    ticks = figure.axes[-1].get_xticklabels()
    outlines = [patch for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    assert len(outlines) == 3  # 16 windows, more than twelve: only 0, 1 and 15 are outlined
    for outline, k in zip(outlines, (0, 1, 15)):
        assert to_rgb(outline.get_edgecolor()) == to_rgb(ticks[k].get_color())
        np.testing.assert_allclose(1.0 - 0.55 * (1.0 - np.array(to_rgb(ticks[k].get_color()))), rgb[4, k])


def test_a_large_matrix_is_drawn_without_numbers():
    figure = viz.im2col_picture((1, 12, 12), kernel_size=3)  # 100 windows
    assert figure.axes[-1].images[0].get_array().shape == (9, 100, 3)
    assert not figure.axes[-1].texts and len(figure.axes[0].texts) == 144  # the 12×12 input keeps its numbers


def test_a_few_windows_are_all_outlined_where_they_sit():
    figure = viz.im2col_picture((1, 5, 5), kernel_size=3, stride=2)  # 4 windows at rows/cols 0 and 2
    outlines = [patch for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    corners = [(round(patch.get_y() + 0.5), round(patch.get_x() + 0.5)) for patch in outlines]
    assert corners == [(0, 0), (0, 2), (2, 0), (2, 2)]


def test_saves_a_png_and_labels_everything(tmp_path):
    path = tmp_path / "pictures" / "im2col.png"
    figure = viz.im2col_picture((3, 5, 5), 3, stride=2, padding=1, save=path)
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC
    assert "3×5×5 input" in figure._suptitle.get_text() and "cols 27 × 9" in figure._suptitle.get_text()
    for axes in figure.axes:
        assert axes.get_title() and axes.get_xlabel() and axes.get_ylabel()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"image_or_shape": (4,)}, ValueError, r"im2col_picture: a shape must be \(H, W\) or \(C, H, W\)"),
    ({"image_or_shape": (0, 4)}, ValueError, r"im2col_picture: a shape must be"),
    ({"image_or_shape": np.zeros((2, 1, 4, 4))}, ValueError, r"im2col_picture: expected an image \(H, W\)"),
    ({"image_or_shape": np.array([[np.nan, 1.0]])}, ValueError, r"im2col_picture: the image holds NaN"),
    ({"image_or_shape": "cat.png"}, TypeError, r"im2col_picture: image_or_shape must hold numbers"),
    ({"kernel_size": 5}, ValueError, r"im2col_picture: a 5×5 window does not fit the padded input 4×4"),
    ({"kernel_size": 0}, ValueError, r"im2col_picture: kernel_size must be positive, got 0"),
    ({"kernel_size": 2.5}, TypeError, r"im2col_picture: kernel_size must be an int"),
    ({"stride": 0}, ValueError, r"im2col_picture: stride must be positive"),
    ({"padding": -1}, ValueError, r"im2col_picture: padding must be >= 0"),
    ({"image_or_shape": (5, 4, 4)}, ValueError, r"im2col_picture: too large to draw: 5 channels"),
    ({"image_or_shape": (64, 64), "kernel_size": 3}, ValueError, r"im2col_picture: too large to draw"),
    ({"save": 3}, TypeError, r"im2col_picture: save must be a path"),
    ({"dpi": 0}, ValueError, r"im2col_picture: dpi must be a positive number"),
])
def test_rejects_bad_input_naming_itself(kwargs, error, message):
    arguments = {"image_or_shape": (4, 4), "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=message):
        viz.im2col_picture(**arguments)
