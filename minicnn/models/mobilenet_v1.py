"""MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications"): a plain stack of depthwise separable convolutions.

A standard 3×3 conv from M to N channels costs 9·M·N weights.  MobileNet splits it in two:
a *depthwise* 3×3 conv that filters each channel on its own (9·M weights, ``groups=M``), then a
*pointwise* 1×1 conv that mixes channels (M·N weights).  The ratio 1/N + 1/9 is why the net needs
about 8–9× fewer multiply-adds than with full 3×3 convs, at a small loss in accuracy.

Two knobs shrink it further (section 3.3–3.4 of the paper):
- the width multiplier α (``width_mult``) thins every layer to α·channels; cost falls by about α²;
- the resolution multiplier ρ is just a smaller input: global average pooling makes any size work.

torchvision has no MobileNet v1, so there are no weights to be compatible with; the layers are named
like torchvision's MobileNets anyway: ``features.N`` is one row of the paper's Table 1, with
``features.N.0`` the conv, ``.1`` its batch norm and ``.2`` its ReLU.

This file also holds what all three MobileNets share: ``Conv2dNormActivation`` (conv → BN → activation),
the torchvision weight initialisation, and the argument and input checks.
"""
import numbers

from minicnn import checks, nn
from minicnn.models.width import check_width_mult
from minicnn.nn import functional as F
from minicnn.nn import init
from minicnn.tensor import Tensor

__all__ = ["mobilenet_v1"]


class Conv2dNormActivation(nn.Sequential):
    """conv (no bias: the BN's β does its job) → BatchNorm2d → activation, children "0", "1", "2".

    Padding (kernel_size − 1) // 2 keeps H and W at stride 1 and halves them at stride 2.
    ``activation_layer=None`` leaves the activation out (MobileNetV2's linear bottleneck).
    ``norm_layer`` is a callable taking the channel count, e.g. ``lambda c: nn.BatchNorm2d(c, eps=1e-3)``.

    >>> [name for name, _ in Conv2dNormActivation(3, 32, stride=2).named_children()]
    ['0', '1', '2']
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU):
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                      groups=groups, bias=False),
            norm_layer(out_channels),
        ]
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)
        self.out_channels = out_channels


# --- shared by the MobileNets ----------------------------------------------------------------------

def check_num_classes(model_name, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"{model_name}: num_classes must be an int, got {type(num_classes).__name__} "
                        f"{num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{model_name}: num_classes must be positive, got {num_classes}")
    return int(num_classes)


def check_image_batch(model_name, x, in_channels=3):
    """Reject anything but an (N, 3, H, W) Tensor before the first conv, with the model's name in the error."""
    checks.check_type(model_name, "input", x, Tensor)
    checks.check_image_batch(model_name, x, channels=in_channels)


def init_mobilenet_weights(model):
    """torchvision's MobileNet initialisation: convs kaiming-normal (fan_out, gain √2), BN γ=1 β=0,
    Linear N(0, 0.01), every bias 0.

    fan_out of a depthwise conv counts C·k·k although each weight reaches only k·k outputs, so those
    weights start small; batch norm right after every conv undoes the scale, so training does not mind.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, 0, 0.01)
            init.zeros_(module.bias)


# --- MobileNet v1 ---------------------------------------------------------------------------------

# Table 1 of the paper, one entry per depthwise separable block: (pointwise out channels, depthwise stride).
# The table prints "Conv dw / s2" for the last block, but its input and output are both 7×7, so the stride
# is 1 (a known typo; every released implementation uses 1).
V1_STEM_CHANNELS = 32
V1_BLOCKS = [
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),  # the "5×" rows
    (1024, 2), (1024, 1),
]


def scale_channels(channels, width_mult):
    """α·channels, rounded to the nearest integer, at least 1 (the paper's αM, exact for α = 1, .75, .5, .25)."""
    return max(1, int(channels * width_mult + 0.5))


def depthwise_separable(in_channels, out_channels, stride):
    """Two rows of Table 1: a 3×3 depthwise conv (one filter per channel, ``groups=in_channels``) that
    carries the stride, then a 1×1 pointwise conv that mixes the channels; each with BN and ReLU."""
    return [
        Conv2dNormActivation(in_channels, in_channels, kernel_size=3, stride=stride, groups=in_channels),
        Conv2dNormActivation(in_channels, out_channels, kernel_size=1),
    ]


class MobileNetV1(nn.Module):
    """features (27 conv layers, each conv → BN → ReLU) → global average pool → dropout → Linear.

    With the fully connected layer that makes the paper's 28 layers.  At α = 1 and 224×224: 4.2M
    parameters and 569M multiply-adds; the input may have any size (32×32 ends at 1×1).
    ``dropout`` defaults to 0: the paper uses little regularisation for small models.
    """

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.0):
        super().__init__()
        num_classes = check_num_classes("mobilenet_v1", num_classes)
        width_mult = check_width_mult("mobilenet_v1", width_mult)
        in_channels = scale_channels(V1_STEM_CHANNELS, width_mult)
        layers = [Conv2dNormActivation(3, in_channels, kernel_size=3, stride=2)]  # the one full conv
        for channels, stride in V1_BLOCKS:
            out_channels = scale_channels(channels, width_mult)
            layers.extend(depthwise_separable(in_channels, out_channels, stride))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.last_channel = in_channels
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, num_classes))
        init_mobilenet_weights(self)

    def forward(self, x):
        check_image_batch("mobilenet_v1", x)
        x = self.features(x)                   # (N, 1024α, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, 1)        # the paper's 7×7 average pool, for any input size
        x = F.flatten(x, 1)                    # (N, 1024α)
        return self.classifier(x)


def mobilenet_v1(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNet v1 with width multiplier α = ``width_mult`` (the paper's 1.0, 0.75, 0.5, 0.25 or any α > 0).

    >>> model = mobilenet_v1(num_classes=10, width_mult=0.25)
    >>> model(minicnn.randn(2, 3, 32, 32)).shape
    (2, 10)
    """
    return MobileNetV1(num_classes=num_classes, width_mult=width_mult, **kwargs)


MODELS = {"mobilenet_v1": mobilenet_v1}
