"""minicnn.checks: each helper's accepted and refused forms, and every entry point reading a pair alike.

The last tests pin the point of the module: conv2d, max_pool2d, avg_pool2d, nn.Conv2d, nn.MaxPool2d
and AlexNet's size arithmetic take or refuse the same spellings of a kernel size or stride, and
they take or refuse exactly what PyTorch's functional ops take or refuse.
"""
import ast
import pathlib

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from minicnn.checks import (
    check_floating,
    check_image_batch,
    check_input_and_weight,
    check_int,
    check_ndim,
    check_number,
    check_pair,
    check_pool_padding,
    check_positive_int,
    check_probability,
    check_type,
)
from minicnn.models.alexnet import AlexNet, feature_map_size
from minicnn.shapes import conv_output_size
from tests.oracle import require_torch

PACKAGE = pathlib.Path(minicnn.__file__).parent


# --- the bottom floor --------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["checks.py", "shapes.py"])
def test_bottom_floor_modules_import_nothing_from_minicnn(module):
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numbers", "numpy"}, imported


def test_cpu_kernels_still_expose_conv_output_size_from_shapes():
    from minicnn.backend import cpu
    assert cpu.conv_output_size is conv_output_size
    assert conv_output_size(224, 11, 4, 2) == 55 and conv_output_size(5, 2, 2, 0, ceil_mode=True) == 3


# --- ints and numbers --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3)])
def test_check_int_accepts_ints_and_returns_a_python_int(value):
    result = check_int("op", "size", value)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value, shown", [(True, "bool True"), (3.0, "float 3.0"), ("3", "str '3'"),
                                          (None, "NoneType None")])
def test_check_int_refuses_other_types_and_bools(value, shown):
    with pytest.raises(TypeError, match=f"^op: size must be an int, got {shown}$"):
        check_int("op", "size", value)


@pytest.mark.parametrize("minimum, value, words", [(1, 0, "positive"), (0, -1, ">= 0"), (2, 1, ">= 2")])
def test_check_int_below_the_minimum_says_the_bound_and_what_came(minimum, value, words):
    with pytest.raises(ValueError, match=f"^op: size must be {words}, got {value}$"):
        check_int("op", "size", value, minimum=minimum)
    assert check_int("op", "size", minimum, minimum=minimum) == minimum
    assert check_int("op", "dim", -5) == -5  # no minimum: any int


def test_check_positive_int():
    assert check_positive_int("Linear", "in_features", 1) == 1
    with pytest.raises(ValueError, match="^Linear: in_features must be positive, got 0$"):
        check_positive_int("Linear", "in_features", 0)
    with pytest.raises(TypeError, match="^Linear: in_features must be an int, got float 2.5$"):
        check_positive_int("Linear", "in_features", 2.5)


def test_check_number_and_check_probability():
    assert check_number("LeakyReLU", "negative_slope", 1) == 1  # returned unchanged: repr shows what was given
    assert check_number("op", "x", np.float32(0.5)) == 0.5
    for bad in (True, "0.1", None):
        with pytest.raises(TypeError, match="^LeakyReLU: negative_slope must be a number, got "):
            check_number("LeakyReLU", "negative_slope", bad)
    assert check_probability("Dropout", "p", 0) == 0.0 and isinstance(check_probability("Dropout", "p", 0), float)
    assert check_probability("loss", "label_smoothing", 1, allow_one=True) == 1.0
    with pytest.raises(ValueError, match=r"^Dropout: p must be in \[0, 1\), got 1$"):
        check_probability("Dropout", "p", 1)
    with pytest.raises(ValueError, match=r"^loss: label_smoothing must be in \[0, 1\], got 1.5$"):
        check_probability("loss", "label_smoothing", 1.5, allow_one=True)
    with pytest.raises(TypeError, match="^Dropout: p must be a number, got str 'half'$"):
        check_probability("Dropout", "p", "half")


def test_check_type_names_the_expected_and_the_given_type():
    x = minicnn.zeros(2)
    assert check_type("conv2d", "input", x, minicnn.Tensor) is x
    with pytest.raises(TypeError, match="^conv2d: input must be a Tensor, got ndarray$"):
        check_type("conv2d", "input", np.zeros(2), minicnn.Tensor)


# --- pairs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, pair", [(3, (3, 3)), ((3,), (3, 3)), ([3], (3, 3)), ((2, 3), (2, 3)),
                                         ([2, 3], (2, 3)), (np.int64(2), (2, 2)), ((np.int64(2), 3), (2, 3))])
def test_check_pair_accepts_an_int_a_1_sequence_and_a_2_sequence(value, pair):
    result = check_pair("conv2d", "stride", value)
    assert result == pair and all(type(v) is int for v in result)


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, "must be an int or a pair of ints, got bool True"),
    ((True, 3), TypeError, r"must be an int or a pair of ints, got tuple \(True, 3\)"),
    (3.0, TypeError, "must be an int or a pair of ints, got float 3.0"),
    ((3, 3.0), TypeError, r"must be an int or a pair of ints, got tuple \(3, 3.0\)"),
    ("3", TypeError, "must be an int or a pair of ints, got str '3'"),
    (None, TypeError, "must be an int or a pair of ints, got NoneType None"),
    ((1, 2, 3), ValueError, r"must be an int or a pair of ints, got \(1, 2, 3\)"),
    ((), ValueError, r"must be an int or a pair of ints, got \(\)"),
    (0, ValueError, "must be positive, got 0"),
    (-1, ValueError, "must be positive, got -1"),
    ((2, 0), ValueError, r"must be positive, got \(2, 0\)"),
])
def test_check_pair_refuses_with_the_op_the_name_and_what_came(value, error, message):
    with pytest.raises(error, match="^conv2d: stride " + message + "$"):
        check_pair("conv2d", "stride", value)


def test_check_pair_minimum_and_none_entries():
    assert check_pair("conv2d", "padding", 0, minimum=0) == (0, 0)
    with pytest.raises(ValueError, match="^conv2d: padding must be >= 0, got -1$"):
        check_pair("conv2d", "padding", -1, minimum=0)
    assert check_pair("pool", "output_size", (None, 7), allow_none=True) == (None, 7)
    assert check_pair("pool", "output_size", None, allow_none=True) == (None, None)
    with pytest.raises(TypeError, match=r"^pool: output_size must be an int or a pair of ints \(or None\), got"):
        check_pair("pool", "output_size", (7, 7.5), allow_none=True)
    with pytest.raises(TypeError):
        check_pair("pool", "output_size", (None, 7))  # None only where allowed


def test_check_pool_padding_is_pytorchs_half_kernel_rule():
    check_pool_padding("max_pool2d", 1, 3)
    check_pool_padding("max_pool2d", (1, 0), (3, 1))
    check_pool_padding("max_pool2d", 1, 2)  # 2 // 2 = 1: allowed, as in PyTorch
    with pytest.raises(ValueError, match="^MaxPool2d: padding must be at most half of kernel_size, "
                                         "got padding=2, kernel_size=3$"):
        check_pool_padding("MaxPool2d", 2, 3)
    with pytest.raises(ValueError, match=r"got padding=\(1, 1\), kernel_size=\(3, 1\)$"):
        check_pool_padding("max_pool2d", (1, 1), (3, 1))


# --- shapes and dtypes -------------------------------------------------------------------------
def test_check_ndim():
    check_ndim("BatchNorm1d", minicnn.zeros(2, 3), (2, 3), "(N, C) or (N, C, L)")
    with pytest.raises(ValueError, match=r"^BatchNorm1d: expected input of shape \(N, C\) or \(N, C, L\), "
                                         r"got \(2, 3, 4, 4\)$"):
        check_ndim("BatchNorm1d", minicnn.zeros(2, 3, 4, 4), (2, 3), "(N, C) or (N, C, L)")


def test_check_image_batch_accepts_batches_and_on_request_single_images():
    check_image_batch("conv2d", minicnn.zeros(0, 3, 5, 5))  # an empty batch is a batch
    check_image_batch("Conv2d", minicnn.zeros(3, 5, 5), unbatched=True)
    check_image_batch("alexnet", minicnn.zeros(1, 3, 63, 64), channels=3, min_size=63)


@pytest.mark.parametrize("shape, kwargs, message", [
    ((3, 5, 5), {}, r"conv2d: expected input of shape \(N, C, H, W\), got \(3, 5, 5\)"),
    ((5, 5), {"unbatched": True}, r"conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(5, 5\)"),
    ((1, 1, 8, 8), {"channels": 3}, r"conv2d: expected input of shape \(N, 3, H, W\), got \(1, 1, 8, 8\)"),
    ((1, 3, 62, 70), {"channels": 3, "min_size": 63}, r"conv2d: input 62x70 is too small, the minimum is 63x63"),
])
def test_check_image_batch_refusals(shape, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_image_batch("conv2d", minicnn.zeros(*shape), **kwargs)


def test_check_floating_and_check_input_and_weight():
    x32, w32 = minicnn.zeros(1, 3), minicnn.zeros(2, 3)
    check_floating("max_pool2d", "input", x32)
    check_input_and_weight("linear", x32, w32)
    with pytest.raises(TypeError, match=r"^max_pool2d: expected a floating-point input, got dtype int64; convert"):
        check_floating("max_pool2d", "input", minicnn.tensor(np.zeros(3, np.int64)))
    with pytest.raises(TypeError, match="^linear: expected a floating-point weight, got dtype uint8"):
        check_input_and_weight("linear", x32, minicnn.tensor(np.zeros((2, 3), np.uint8)))
    with pytest.raises(TypeError, match="^linear: input dtype float64 differs from weight dtype float32$"):
        check_input_and_weight("linear", minicnn.zeros(1, 3, dtype=np.float64), w32)


# --- every entry point reads a pair the same way, PyTorch's way ----------------------------------
# A kernel size or stride as users spell it, and what every entry point must do with it: PyTorch's
# F.conv2d and F.max_pool2d take the first three and refuse the rest (the last test asks torch itself).
SPELLINGS = [((3,), "accepted"), ([3, 3], "accepted"), (3, "accepted"), (True, TypeError), (0, ValueError),
             (-1, ValueError), ((1, 2, 3), ValueError), (3.0, TypeError)]


def _alexnet_with_pool(kernel_size):
    """A two-layer AlexNet whose pool has ``kernel_size``: its input check walks the layers' arguments."""
    features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(kernel_size))
    return AlexNet(features, nn.Linear(4 * 6 * 6, 2), pool=nn.AdaptiveAvgPool2d((6, 6))).eval()


def _alexnet_reads_the_pool(kernel_size):
    model, x = _alexnet_with_pool(kernel_size), minicnn.randn(1, 3, 16, 16)
    assert feature_map_size(model.features, (16, 16)) == model.features(x).shape[2:] == (4, 4)
    return model(x)


ENTRY_POINTS = {
    "F.conv2d stride": lambda v: F.conv2d(minicnn.randn(1, 3, 16, 16), minicnn.randn(4, 3, 3, 3), stride=v),
    "F.max_pool2d kernel_size": lambda v: F.max_pool2d(minicnn.randn(1, 3, 16, 16), v),
    "F.avg_pool2d kernel_size": lambda v: F.avg_pool2d(minicnn.randn(1, 3, 16, 16), v),
    "nn.Conv2d kernel_size": lambda v: nn.Conv2d(3, 4, v)(minicnn.randn(1, 3, 16, 16)),
    "nn.Conv2d stride": lambda v: nn.Conv2d(3, 4, 3, stride=v)(minicnn.randn(1, 3, 16, 16)),
    "nn.MaxPool2d kernel_size": lambda v: nn.MaxPool2d(v)(minicnn.randn(1, 3, 16, 16)),
    "alexnet's size arithmetic": _alexnet_reads_the_pool,
}


def _outcome(call, value):
    """'accepted', or the exception type the call raised."""
    try:
        call(value)
    except Exception as error:  # noqa: BLE001  (any refusal counts; its type is compared)
        return type(error)
    return "accepted"


@pytest.mark.parametrize("value, expected", SPELLINGS, ids=[repr(value) for value, _ in SPELLINGS])
def test_every_entry_point_accepts_and_refuses_the_same_spellings_of_a_pair(value, expected):
    outcomes = {name: _outcome(call, value) for name, call in ENTRY_POINTS.items()}
    assert set(outcomes.values()) == {expected}, outcomes


def test_a_1_tuple_means_a_square_window_everywhere():
    x = minicnn.randn(1, 3, 16, 16)
    assert F.conv2d(x, minicnn.randn(4, 3, 3, 3), stride=(3,)).shape == (1, 4, 5, 5)
    assert F.max_pool2d(x, (3,)).shape == F.avg_pool2d(x, (3,)).shape == (1, 3, 5, 5)
    assert nn.Conv2d(3, 4, (3,)).kernel_size == (3, 3)
    assert nn.MaxPool2d((3,))(x).shape == (1, 3, 5, 5)


@pytest.mark.parametrize("value, expected", SPELLINGS, ids=[repr(value) for value, _ in SPELLINGS])
def test_the_accepted_spellings_are_pytorchs(value, expected):
    torch = require_torch()
    x, w = torch.randn(1, 3, 16, 16), torch.randn(4, 3, 3, 3)
    # PyTorch's own functional checks decide; nn.Conv2d's kernel_size is left out, since torch builds a
    # weight from whatever its _pair passes through (True → 1x1, (3,) → a 3-D weight that fails later).
    torch_calls = {
        "F.conv2d stride": lambda v: torch.nn.functional.conv2d(x, w, stride=v),
        "F.max_pool2d kernel_size": lambda v: torch.nn.functional.max_pool2d(x, v),
        "F.avg_pool2d kernel_size": lambda v: torch.nn.functional.avg_pool2d(x, v),
        "nn.Conv2d stride": lambda v: torch.nn.Conv2d(3, 4, 3, stride=v)(x),
        "nn.MaxPool2d kernel_size": lambda v: torch.nn.MaxPool2d(v)(x),
    }
    for name, call in torch_calls.items():
        torch_accepts = _outcome(call, value) == "accepted"
        assert torch_accepts == (expected == "accepted"), f"torch's {name} on {value!r}"
        assert torch_accepts == (_outcome(ENTRY_POINTS[name], value) == "accepted"), f"minicnn's {name} on {value!r}"
