"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"),
torchvision-compatible: ``state_dict()`` keys, order and shapes equal torchvision's ``mobilenet_v2``.

The building block turns ResNet's bottleneck inside out.  A thin tensor (the bottleneck) is
*expanded* t-fold by a 1×1 conv, filtered by a 3×3 depthwise conv in that wide space, and
*projected* back to a thin tensor by a 1×1 conv.  Two ideas:
- inverted residual: the shortcut joins the thin ends, so the memory it carries stays small;
- linear bottleneck: the projection has no activation.  ReLU on a low-dimensional tensor destroys
  information it cannot get back; in the wide expanded space it does little harm.
Elsewhere the activation is ReLU6 (min(max(0, x), 6)), robust under low-precision arithmetic.
"""
from minicnn import nn
from minicnn.models.mobilenet_v1 import (
    Conv2dNormActivation,
    check_image_batch,
    check_num_classes,
    init_mobilenet_weights,
)
from minicnn.models.width import check_width_mult
from minicnn.nn import functional as F

__all__ = ["mobilenet_v2"]


def make_divisible(value, divisor=8):
    """Round a channel count to the nearest multiple of ``divisor`` (hardware likes multiples of 8),
    never below ``divisor`` and never more than 10% below ``value``.  torchvision's ``_make_divisible``.

    >>> make_divisible(32 * 0.75), make_divisible(24 * 0.35), make_divisible(72 // 4)
    (24, 8, 24)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:  # rounding down must not lose more than 10%
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """expand 1×1 (ReLU6) → depthwise 3×3 with the stride (ReLU6) → project 1×1 (linear) [+ input].

    Keys as torchvision: ``conv.0`` expand, ``conv.1`` depthwise, ``conv.2`` projecting conv,
    ``conv.3`` its BN; with ``expand_ratio == 1`` there is nothing to expand, so ``conv.0`` is the
    depthwise conv and ``conv.1`` / ``conv.2`` the projection.  The shortcut exists only when the
    output has the input's shape: stride 1 and the same channel count.
    """

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden_channels = round(in_channels * expand_ratio)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(in_channels, hidden_channels, kernel_size=1,
                                               activation_layer=nn.ReLU6))
        layers.extend([
            Conv2dNormActivation(hidden_channels, hidden_channels, kernel_size=3, stride=stride,
                                 groups=hidden_channels, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_channels, out_channels, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_channels),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


# Table 2 of the paper: each row is a stage of n blocks with expansion t and c output channels; the
# first block of a stage carries the stride s.  Input 224×224 → 7×7 after the stem and these stages.
INVERTED_RESIDUAL_SETTING = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]
V2_STEM_CHANNELS = 32
V2_LAST_CHANNELS = 1280


class MobileNetV2(nn.Module):
    """stem 3×3/2 conv → 17 inverted residual blocks → 1×1 conv to 1280 → global average pool →
    Dropout → Linear.  ``features.0`` … ``features.18``, ``classifier.1``, as torchvision.

    ``width_mult`` scales every width (rounded by ``make_divisible``) except that the last conv
    never goes below 1280 channels.
    """

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        num_classes = check_num_classes("mobilenet_v2", num_classes)
        width_mult = check_width_mult("mobilenet_v2", width_mult)
        in_channels = make_divisible(V2_STEM_CHANNELS * width_mult)
        self.last_channel = make_divisible(V2_LAST_CHANNELS * max(1.0, width_mult))
        layers = [Conv2dNormActivation(3, in_channels, kernel_size=3, stride=2, activation_layer=nn.ReLU6)]
        for expand_ratio, channels, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
            out_channels = make_divisible(channels * width_mult)
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                layers.append(InvertedResidual(in_channels, out_channels, stride, expand_ratio))
                in_channels = out_channels
        layers.append(Conv2dNormActivation(in_channels, self.last_channel, kernel_size=1,
                                           activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        init_mobilenet_weights(self)

    def forward(self, x):
        check_image_batch("mobilenet_v2", x)
        x = self.features(x)               # (N, 1280, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, 1)    # functional, as torchvision: no module, no key
        x = F.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNetV2, torchvision-compatible at any ``width_mult`` (3,504,872 parameters at 1.0).

    >>> model = mobilenet_v2(num_classes=10, width_mult=0.25)
    >>> model(minicnn.randn(2, 3, 32, 32)).shape
    (2, 10)
    """
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, **kwargs)


MODELS = {"mobilenet_v2": mobilenet_v2}
