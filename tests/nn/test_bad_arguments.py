"""Bad constructor arguments and bad inputs: the error names the layer, what it expected, what came."""
import numpy as np
import pytest

import minicnn
from minicnn import nn

BAD_CONSTRUCTORS = [
    (lambda: nn.Conv2d(4, 6, 3, groups=3), ValueError, r"Conv2d: in_channels \(4\) must be divisible by groups \(3\)"),
    (lambda: nn.Conv2d(6, 4, 3, groups=3), ValueError, r"Conv2d: out_channels \(4\) must be divisible by groups"),
    (lambda: nn.Conv2d(3, 8, 0), ValueError, "Conv2d: kernel_size must be positive, got 0"),
    (lambda: nn.Conv2d(0, 8, 3), ValueError, "Conv2d: in_channels must be positive, got 0"),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), ValueError, "Conv2d: padding must be >= 0, got -1"),
    (lambda: nn.Conv2d(3, 8, 3, stride=1.5), TypeError, "Conv2d: stride must be an int or a pair of ints, got float"),
    (lambda: nn.Conv2d(3, 8, (3, 3, 3)), ValueError, r"Conv2d: kernel_size must be an int or a pair of ints"),
    (lambda: nn.Conv2d(3, 8, 3, padding="full"), ValueError, "Conv2d: padding must be an int, a pair, 'valid' or"),
    (lambda: nn.Conv2d(3, 8, 3, stride=2, padding="same"), ValueError, r"Conv2d: padding='same' needs stride 1"),
    (lambda: nn.Conv2d(3, 8, 2, padding="same"), ValueError, "needs uneven padding, which is not supported"),
    (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features must be positive, got 0"),
    (lambda: nn.Linear(3, True), TypeError, "Linear: out_features must be an int, got bool True"),
    (lambda: nn.BatchNorm2d(0), ValueError, "BatchNorm2d: num_features must be positive, got 0"),
    (lambda: nn.BatchNorm2d(4, eps=0), ValueError, "BatchNorm2d: eps must be a positive number, got 0"),
    (lambda: nn.BatchNorm1d(4, momentum=1.5), ValueError, r"BatchNorm1d: momentum must be None or a number in"),
    (lambda: nn.Dropout(1.0), ValueError, r"Dropout: p must be in \[0, 1\), got 1.0"),
    (lambda: nn.Dropout(-0.1), ValueError, r"Dropout: p must be in \[0, 1\), got -0.1"),
    (lambda: nn.Dropout("half"), TypeError, "Dropout: p must be a number, got str 'half'"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, "MaxPool2d: padding must be at most half of kernel_size, got"),
    (lambda: nn.AvgPool2d(0), ValueError, "AvgPool2d: kernel_size must be positive, got 0"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be positive, got 0"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d: output_size must be positive, got 0"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), ValueError, "AdaptiveAvgPool2d: output_size must be an int or a pair"),
    (lambda: nn.LocalResponseNorm(0), ValueError, "LocalResponseNorm: size must be positive, got 0"),
    (lambda: nn.LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a number"),
    (lambda: nn.Flatten(1.0), TypeError, "Flatten: start_dim must be an int, got float 1.0"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "CrossEntropyLoss: reduction must be one of"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\], got 1.5"),
    (lambda: nn.CrossEntropyLoss([[1.0, 2.0]]), ValueError, r"CrossEntropyLoss: weight must be 1-D .*got shape \(1, 2\)"),
    (lambda: nn.MSELoss(reduction="max"), ValueError, "MSELoss: reduction must be one of"),
    (lambda: nn.CrossEntropyLoss(ignore_index=0.5), TypeError, "CrossEntropyLoss: ignore_index must be an int"),
]


@pytest.mark.parametrize("make, error, message", BAD_CONSTRUCTORS, ids=[m for _, _, m in BAD_CONSTRUCTORS])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_cross_entropy_loss_arguments_after_weight_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        nn.CrossEntropyLoss(None, None, -100)


BAD_INPUTS = [
    (lambda: nn.Conv2d(3, 8, 3), (2, 4, 5, 5), ValueError, "Conv2d: input has 4 channels but in_channels is 3"),
    (lambda: nn.Conv2d(3, 8, 3), (3, 5), ValueError, r"Conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\)"),
    (lambda: nn.Linear(4, 2), (3, 5), ValueError, r"Linear: input's last dimension must be in_features=4, got shape"),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5), ValueError, "BatchNorm2d: input has 4 channels but num_features is 3"),
    (lambda: nn.BatchNorm2d(3), (2, 3, 5), ValueError, r"BatchNorm2d: expected input of shape \(N, C, H, W\), got"),
    (lambda: nn.BatchNorm1d(3), (1, 3), ValueError, "BatchNorm1d: expected more than 1 value per channel when"),
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 4), ValueError, r"BatchNorm1d: expected input of shape \(N, C\) or \(N, C,"),
    (lambda: nn.LocalResponseNorm(3), (4, 5), ValueError, r"LocalResponseNorm: expected input of shape \(N, C, L\) or"),
]


@pytest.mark.parametrize("make, shape, error, message", BAD_INPUTS, ids=[m for *_, m in BAD_INPUTS])
def test_bad_inputs_name_the_layer(make, shape, error, message):
    layer = make()
    with pytest.raises(error, match=message):
        layer(minicnn.Tensor(np.zeros(shape, dtype=np.float32)))


def test_batch_of_one_is_fine_in_eval_mode():
    bn = nn.BatchNorm1d(3).eval()
    assert bn(minicnn.randn(1, 3)).shape == (1, 3)
