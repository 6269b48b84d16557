"""MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3"), large and small, torchvision-compatible:
``state_dict()`` keys, order and shapes equal torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small``.

The blocks are MobileNetV2's inverted residuals (expand 1×1 → depthwise k×k → linear project 1×1),
chosen block by block by an architecture search, with three additions:
- squeeze-and-excitation in some blocks: average each channel over space, pass the vector through a
  small two-layer net, and rescale the channels by the resulting gate in (0, 1);
- hard-swish x·relu6(x + 3)/6 in the deeper half: swish's accuracy without its exponential;
- redesigned expensive ends: a 16-channel stem, and the last stage's 1×1 conv moved after the pooling,
  where it costs 49× less.
Batch norm uses eps 0.001 and momentum 0.01 everywhere (TensorFlow's defaults, kept by torchvision).
"""
from minicnn import nn
from minicnn.models.mobilenet_v1 import (
    Conv2dNormActivation,
    check_image_batch,
    check_num_classes,
    init_mobilenet_weights,
)
from minicnn.models.mobilenet_v2 import make_divisible
from minicnn.models.width import check_width_mult
from minicnn.nn import functional as F

__all__ = ["mobilenet_v3_large", "mobilenet_v3_small"]


def v3_batch_norm(num_features):
    return nn.BatchNorm2d(num_features, eps=0.001, momentum=0.01)


class SqueezeExcitation(nn.Module):
    """Rescale each channel by a gate computed from the whole image (Hu et al. 2018):
    gate = hardsigmoid(fc2(relu(fc1(average over H, W of x)))), output = gate · x.

    fc1 and fc2 are 1×1 convs with bias (keys ``fc1`` / ``fc2``, as torchvision), i.e. fully connected
    layers applied to the (N, C, 1, 1) channel means.

    >>> SqueezeExcitation(16, 8)(minicnn.randn(2, 16, 5, 5)).shape
    (2, 16, 5, 5)
    """

    def __init__(self, input_channels, squeeze_channels):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()  # relu6(x + 3) / 6: a cheap sigmoid

    def gate(self, x):
        squeezed = self.avgpool(x)                                    # (N, C, 1, 1)
        return self.scale_activation(self.fc2(self.activation(self.fc1(squeezed))))

    def forward(self, x):
        return x * self.gate(x)  # the gate broadcasts over H and W


class BlockConfig:
    """One row of the paper's Tables 1–2, channels already scaled by ``width_mult``."""

    def __init__(self, input_channels, kernel, expanded_channels, out_channels, use_se, activation, stride,
                 width_mult):
        self.input_channels = make_divisible(input_channels * width_mult)
        self.kernel = kernel
        self.expanded_channels = make_divisible(expanded_channels * width_mult)
        self.out_channels = make_divisible(out_channels * width_mult)
        self.use_se = use_se
        self.use_hardswish = activation == "HS"
        self.stride = stride


class InvertedResidualV3(nn.Module):
    """[expand 1×1] → depthwise k×k with the stride → [squeeze-excite] → project 1×1 (linear) [+ input].

    Keys ``block.0``, ``block.1``, ...: the expand conv is left out when it would not change the width
    (expanded == input channels), so then ``block.0`` is the depthwise conv.  The SE squeeze width is
    make_divisible(expanded // 4): 16→8, 72→24, 120→32, 144→40, 240→64.
    """

    def __init__(self, config):
        super().__init__()
        activation = nn.Hardswish if config.use_hardswish else nn.ReLU
        self.use_res_connect = config.stride == 1 and config.input_channels == config.out_channels
        layers = []
        if config.expanded_channels != config.input_channels:
            layers.append(Conv2dNormActivation(config.input_channels, config.expanded_channels, kernel_size=1,
                                               norm_layer=v3_batch_norm, activation_layer=activation))
        layers.append(Conv2dNormActivation(config.expanded_channels, config.expanded_channels,
                                           kernel_size=config.kernel, stride=config.stride,
                                           groups=config.expanded_channels, norm_layer=v3_batch_norm,
                                           activation_layer=activation))
        if config.use_se:
            layers.append(SqueezeExcitation(config.expanded_channels, make_divisible(config.expanded_channels // 4)))
        layers.append(Conv2dNormActivation(config.expanded_channels, config.out_channels, kernel_size=1,
                                           norm_layer=v3_batch_norm, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = config.out_channels

    def forward(self, x):
        if self.use_res_connect:
            return x + self.block(x)
        return self.block(x)


# The paper's Table 1 (large) and Table 2 (small), as torchvision builds them.  Each row is one block:
# input channels, kernel, expanded channels, output channels, squeeze-excite?, RE(LU) or H(ard)S(wish),
# stride.  Then: the last conv widens to 6× the last block's output, and the head's hidden layer width.
V3_CONFIGS = {
    "mobilenet_v3_large": {
        "blocks": [
            (16, 3, 16, 16, False, "RE", 1),
            (16, 3, 64, 24, False, "RE", 2),
            (24, 3, 72, 24, False, "RE", 1),
            (24, 5, 72, 40, True, "RE", 2),
            (40, 5, 120, 40, True, "RE", 1),
            (40, 5, 120, 40, True, "RE", 1),
            (40, 3, 240, 80, False, "HS", 2),
            (80, 3, 200, 80, False, "HS", 1),
            (80, 3, 184, 80, False, "HS", 1),
            (80, 3, 184, 80, False, "HS", 1),
            (80, 3, 480, 112, True, "HS", 1),
            (112, 3, 672, 112, True, "HS", 1),
            (112, 5, 672, 160, True, "HS", 2),
            (160, 5, 960, 160, True, "HS", 1),
            (160, 5, 960, 160, True, "HS", 1),
        ],
        "last_channel": 1280,
    },
    "mobilenet_v3_small": {
        "blocks": [
            (16, 3, 16, 16, True, "RE", 2),
            (16, 3, 72, 24, False, "RE", 2),
            (24, 3, 88, 24, False, "RE", 1),
            (24, 5, 96, 40, True, "HS", 2),
            (40, 5, 240, 40, True, "HS", 1),
            (40, 5, 240, 40, True, "HS", 1),
            (40, 5, 120, 48, True, "HS", 1),
            (48, 5, 144, 48, True, "HS", 1),
            (48, 5, 288, 96, True, "HS", 2),
            (96, 5, 576, 96, True, "HS", 1),
            (96, 5, 576, 96, True, "HS", 1),
        ],
        "last_channel": 1024,
    },
}


class MobileNetV3(nn.Module):
    """stem 3×3/2 conv (Hardswish) → the table's blocks → 1×1 conv to 6× channels (Hardswish) →
    global average pool → Linear → Hardswish → Dropout → Linear (keys ``classifier.0`` / ``classifier.3``).
    """

    def __init__(self, arch, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        if arch not in V3_CONFIGS:
            raise ValueError(f"MobileNetV3: arch must be one of {sorted(V3_CONFIGS)}, got {arch!r}")
        num_classes = check_num_classes(arch, num_classes)
        width_mult = check_width_mult(arch, width_mult)
        self.arch = arch
        configs = [BlockConfig(*row, width_mult=width_mult) for row in V3_CONFIGS[arch]["blocks"]]
        layers = [Conv2dNormActivation(3, configs[0].input_channels, kernel_size=3, stride=2,
                                       norm_layer=v3_batch_norm, activation_layer=nn.Hardswish)]
        layers.extend(InvertedResidualV3(config) for config in configs)
        last_conv_channels = 6 * configs[-1].out_channels
        layers.append(Conv2dNormActivation(configs[-1].out_channels, last_conv_channels, kernel_size=1,
                                           norm_layer=v3_batch_norm, activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last_channel = make_divisible(V3_CONFIGS[arch]["last_channel"] * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv_channels, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        init_mobilenet_weights(self)

    def forward(self, x):
        check_image_batch(self.arch, x)
        x = self.features(x)        # (N, 960 or 576, H/32, W/32)
        x = self.avgpool(x)         # (N, C, 1, 1)
        x = F.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v3_large(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNetV3-Large, torchvision-compatible (5,483,032 parameters at width 1.0)."""
    return MobileNetV3("mobilenet_v3_large", num_classes=num_classes, width_mult=width_mult, **kwargs)


def mobilenet_v3_small(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNetV3-Small, torchvision-compatible (2,542,856 parameters at width 1.0).

    >>> mobilenet_v3_small(num_classes=10)(minicnn.randn(2, 3, 32, 32)).shape
    (2, 10)
    """
    return MobileNetV3("mobilenet_v3_small", num_classes=num_classes, width_mult=width_mult, **kwargs)


MODELS = {"mobilenet_v3_large": mobilenet_v3_large, "mobilenet_v3_small": mobilenet_v3_small}
