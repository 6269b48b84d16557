"""Confusion matrix: rows are the true classes, columns what the model predicted.

The diagonal holds the correct answers; a bright cell off it names a pair the model mixes up (a 4 read
as a 9), which one accuracy number hides.
"""
import numpy as np

from minicnn.viz._figure import new_figure, save_figure, to_numpy

_FUNCTION = "confusion_matrix"
ANNOTATE_UP_TO = 30  # classes; beyond that, numbers in the cells are too small to read


def _check_matrix(matrix):
    matrix = to_numpy(_FUNCTION, "matrix", matrix)
    if matrix.ndim != 2:
        raise ValueError(f"{_FUNCTION}: matrix must be 2-D (true class × predicted class), "
                         f"got shape {matrix.shape}")
    if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{_FUNCTION}: matrix must be square and non-empty (one row and one column per "
                         f"class), got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError(f"{_FUNCTION}: matrix must hold finite counts >= 0, got min {matrix.min()}")
    return matrix


def normalize_rows(matrix):
    """Each row divided by its sum: the fraction of each true class given each prediction (recall on the
    diagonal).  A class with no samples keeps a row of zeros."""
    matrix = matrix.astype(np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def _cell_text(value, normalize):
    if normalize:
        return f"{value:.2f}"
    return f"{int(value)}" if float(value).is_integer() else f"{value:.3g}"


def confusion_matrix(matrix, classes=None, normalize=False, annotate=None, cmap="Blues", title=None,
                     save=None, dpi=100):
    """A heatmap of ``matrix`` (C × C, rows true class, columns predicted class), each cell annotated.

    ``matrix`` is what ``minicnn.train.evaluate`` returns under ``"confusion"`` (counts), as an array,
    Tensor or nested lists.  ``normalize=True`` draws each row as fractions of its class instead.
    ``classes`` names the rows and columns (default 0 … C−1).  ``annotate`` writes the number in each
    cell (default: when C ≤ 30).  The title gives the accuracy (trace / total) for counts.

    >>> confusion_matrix(evaluate(model, test_loader)["confusion"], classes=test_set.classes)
    """
    counts = _check_matrix(matrix)
    size = len(counts)
    if classes is None:
        classes = [str(index) for index in range(size)]
    elif isinstance(classes, str) or len(classes) != size:
        raise ValueError(f"{_FUNCTION}: classes must name each of the {size} classes, got {classes!r:.100}")
    values = normalize_rows(counts) if normalize else counts
    if annotate is None:
        annotate = size <= ANNOTATE_UP_TO

    side = min(14.0, max(4.0, 0.55 * size + 2.0))
    figure = new_figure(_FUNCTION, (side + 1.0, side), dpi)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(values, cmap=cmap, vmin=0, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04,
                    label="fraction of the true class" if normalize else "count")
    if annotate:
        # Light text on dark cells, dark on light, so every number stays readable.
        threshold = values.max() / 2.0
        for row in range(size):
            for column in range(size):
                value = values[row, column]
                axes.text(column, row, _cell_text(value, normalize), ha="center", va="center",
                          fontsize=8 if size <= 12 else 6, color="white" if value > threshold else "black")
    axes.set_xticks(range(size), [str(name) for name in classes], rotation=45 if size > 10 else 0,
                    ha="right" if size > 10 else "center")
    axes.set_yticks(range(size), [str(name) for name in classes])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if title is None:
        total = counts.sum()
        integer_counts = np.array_equal(counts, np.round(counts))
        title = "Confusion matrix"
        if integer_counts and total > 0:
            title += f" (accuracy {np.trace(counts) / total:.1%} of {int(total)})"
    axes.set_title(title)
    figure.tight_layout()
    save_figure(_FUNCTION, figure, save)
    return figure
