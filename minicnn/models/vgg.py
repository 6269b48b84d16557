"""VGG (Simonyan & Zisserman, 2014): very deep nets of 3x3 convs, all six configurations of the paper's Table 1.

The whole family is one table, ``cfgs``: a number is a 3x3 conv (stride 1, padding 1, so H and W stay)
with that many output channels, ``(channels, 1)`` a 1x1 conv, ``"LRN"`` local response normalisation and
``"M"`` a 2x2 max-pool that halves H and W.  Channels double after each pool (64 → 128 → 256 → 512) to
make up for the lost resolution.  Two stacked 3x3 convs see 5x5 and three see 7x7, with 2·9C² and 3·9C²
weights against 25C² and 49C², and a ReLU between each.

``vgg11/13/16/19`` and their ``_bn`` variants (configurations A, B, D, E) match torchvision's
``state_dict`` key for key, so its weights load unchanged.  ``vgg(cfg)`` builds any row of the table,
``width_mult`` shrinks every layer for CPU-sized experiments, and ``fully_convolutional()`` turns
the classifier into convolutions for the paper's dense test-time evaluation.

>>> model = vgg16(num_classes=10)
>>> model(minicnn.randn(1, 3, 32, 32)).shape   # 32x32 works: the 1x1 features are replicated to 7x7
(1, 10)
"""
import numbers

from minicnn import nn
from minicnn.checks import check_image_batch, check_type
from minicnn.models.convert import linear_to_conv
from minicnn.models.width import accepts_width_multiplier, check_width_mult
from minicnn.nn import functional as F
from minicnn.tensor import Tensor

__all__ = [
    "VGG", "FullyConvolutionalVGG", "cfgs", "make_layers", "vgg", "vgg11", "vgg11_bn", "vgg11_lrn", "vgg13",
    "vgg13_bn", "vgg16", "vgg16_bn", "vgg16_c", "vgg19", "vgg19_bn", "vgg_block", "vgg_to_fully_convolutional",
]

# Table 1 of the paper, one column per configuration (weight layers: A 11, B 13, C 16, D 16, E 19).
cfgs = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    # C adds a 1x1 conv (a per-pixel linear map + ReLU: more non-linearity, same receptive field) to the
    # last three stages; D replaces those with 3x3 convs and wins.
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}

FEATURE_SIZE = 7  # the classifier's first layer expects 512·7·7 = 25088 inputs (224 / 2⁵ = 7)
HIDDEN_FEATURES = 4096


def _scaled(channels, width_mult):
    return max(1, round(channels * width_mult))


def conv_layers(in_channels, out_channels, kernel_size=3, batch_norm=False):
    """One conv of the table as a list: conv → [BatchNorm] → ReLU, "same" padding.

    The conv keeps its bias even before batch norm (where it is redundant), as torchvision does, so
    the ``_bn`` weights load.
    """
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU())
    return layers


def vgg_block(num_convs, in_channels, out_channels, batch_norm=False):
    """d2l's VGG block: ``num_convs`` 3x3 convs then a 2x2 max-pool that halves H and W.

    >>> vgg_block(2, 3, 64)(minicnn.randn(1, 3, 32, 32)).shape
    (1, 64, 16, 16)
    """
    layers = []
    for _ in range(num_convs):
        layers += conv_layers(in_channels, out_channels, 3, batch_norm)
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def _paper_lrn():
    # A-LRN uses AlexNet's normalisation (Krizhevsky et al. 2012): k=2, n=5, α=1e-4, β=0.75.
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


def _check_cfg(cfg):
    """The table column for ``cfg``: a name from ``cfgs`` or a list in the same format."""
    if isinstance(cfg, str):
        if cfg not in cfgs:
            raise ValueError(f"vgg: unknown configuration {cfg!r}, expected one of {', '.join(cfgs)} "
                             "or a list like cfgs['D']")
        return cfgs[cfg]
    if not isinstance(cfg, (list, tuple)):
        raise TypeError(f"vgg: cfg must be a configuration name ({', '.join(cfgs)}) or a list, "
                        f"got {type(cfg).__name__}")
    for item in cfg:
        is_channels = isinstance(item, numbers.Integral) and not isinstance(item, bool) and item > 0
        is_conv_with_kernel = (isinstance(item, tuple) and len(item) == 2 and item[1] in (1, 3)
                      and isinstance(item[0], numbers.Integral) and item[0] > 0)
        if not (is_channels or is_conv_with_kernel or item in ("M", "LRN")):
            raise ValueError(f"vgg: configuration entry {item!r} is not a channel count, "
                             "(channels, kernel_size), 'M' or 'LRN'")
    if not any(item not in ("M", "LRN") for item in cfg):
        raise ValueError(f"vgg: configuration {list(cfg)!r} has no convolution")
    return list(cfg)


@accepts_width_multiplier
def make_layers(cfg, batch_norm=False, in_channels=3, width_mult=1.0):
    """The convolutional part of one configuration, as one flat Sequential.

    Flat (not one Sequential per block) because that is torchvision's layout: its keys count every
    layer, ``features.0`` (conv), ``features.1`` (ReLU), ``features.2`` (pool), ``features.3`` (conv)...
    """
    layers = []
    for item in _check_cfg(cfg):
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif item == "LRN":
            layers.append(_paper_lrn())
        else:
            channels, kernel_size = item if isinstance(item, tuple) else (item, 3)
            channels = _scaled(channels, width_mult)
            layers += conv_layers(in_channels, channels, kernel_size, batch_norm)
            in_channels = channels
    return nn.Sequential(*layers)


def _check_images(name, x, in_channels, minimum):
    """A clear error unless ``x`` is an (N, in_channels, H, W) Tensor with H and W at least ``minimum``."""
    check_type(name, "input", x, Tensor)
    check_image_batch(name, x, channels=in_channels, min_size=minimum)


class VGG(nn.Module):
    """features → AdaptiveAvgPool2d((7, 7)) → flatten → three fully connected layers.

    The classifier is Linear(C·7·7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
    Linear(4096, num_classes) (keys classifier.0/.3/.6).  The adaptive pool is the identity at 224x224;
    at 32x32 the features are 1x1 and it copies that pixel to 7x7, so the classifier still fits.
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5,
                 hidden_features=HIDDEN_FEATURES, name="vgg"):
        super().__init__()
        self.name = name
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((FEATURE_SIZE, FEATURE_SIZE))
        convs = [layer for layer in features if isinstance(layer, nn.Conv2d)]
        self.in_channels = convs[0].in_channels
        feature_channels = convs[-1].out_channels
        self.classifier = nn.Sequential(
            nn.Linear(feature_channels * FEATURE_SIZE * FEATURE_SIZE, hidden_features), nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden_features, hidden_features), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(hidden_features, num_classes),
        )
        if init_weights:
            self._initialize_weights()

    def _initialize_weights(self):
        # torchvision's: He init (fan_out) for the convs, N(0, 0.01) for the fully connected layers.
        # (The paper initialised A randomly and the deeper nets from A's layers.)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    @property
    def num_pools(self):
        return sum(isinstance(layer, nn.MaxPool2d) for layer in self.features)

    def forward(self, x):
        # Each 2x2 pool halves the size: below 2^pools pixels the last pool has nothing left.
        _check_images(self.name, x, self.in_channels, 2 ** self.num_pools)
        x = self.features(x)
        x = self.avgpool(x)
        x = F.flatten(x, 1)  # (N, 512, 7, 7) → (N, 25088)
        return self.classifier(x)

    def fully_convolutional(self):
        """This model with its classifier as convolutions (see ``vgg_to_fully_convolutional``)."""
        return FullyConvolutionalVGG(self)


class FullyConvolutionalVGG(nn.Module):
    """VGG for dense evaluation (paper, section 3.2): fc6 → 7x7 conv, fc7 and fc8 → 1x1 convs.

    Any input from 224x224 up works; the output is a class-score map (N, num_classes, h, w) with
    h = H/32 − 6, each pixel the scores of one 224x224 window, and ``predict`` averages it over space.
    At 224x224 the map is 1x1 and equals the original model's logits.  The features and the biases are
    the original model's own modules and Parameters, the conv filters views of its Linear weights.
    """

    def __init__(self, model):
        super().__init__()
        if not isinstance(model, VGG):
            raise TypeError(f"vgg_to_fully_convolutional: expected a VGG model, got {type(model).__name__}")
        self.name = f"{model.name} (fully convolutional)"
        self.in_channels = model.in_channels
        self.num_pools = model.num_pools
        # No adaptive pool: it is the identity at 224x224, and on larger inputs it would squeeze the very
        # feature map we want to slide the classifier over.
        self.features = model.features
        fc6, fc7, fc8 = [layer for layer in model.classifier if isinstance(layer, nn.Linear)]
        dropouts = [layer for layer in model.classifier if isinstance(layer, nn.Dropout)]
        feature_channels = fc6.in_features // (FEATURE_SIZE * FEATURE_SIZE)
        # Same slots as the original classifier, so the keys stay classifier.0/.3/.6.
        self.classifier = nn.Sequential(
            linear_to_conv(fc6, feature_channels, FEATURE_SIZE), nn.ReLU(), nn.Dropout(p=dropouts[0].p),
            linear_to_conv(fc7, fc7.in_features, 1), nn.ReLU(), nn.Dropout(p=dropouts[1].p),
            linear_to_conv(fc8, fc8.in_features, 1),
        )
        self.train(model.training)

    def forward(self, x):
        """(N, C, H, W) → class-score map (N, num_classes, H/32 − 6, W/32 − 6)."""
        _check_images(self.name, x, self.in_channels, FEATURE_SIZE * 2 ** self.num_pools)
        return self.classifier(self.features(x))

    def predict(self, x):
        """Class scores (N, num_classes): the score map averaged over all its positions."""
        return self(x).mean(axis=(2, 3))


def vgg_to_fully_convolutional(model):
    """Turn a VGG's fully connected layers into convolutions with the same weights.

    >>> dense = vgg_to_fully_convolutional(vgg16().eval())
    >>> dense(minicnn.randn(1, 3, 384, 384)).shape   # a 6x6 map of class scores
    (1, 1000, 6, 6)
    """
    return FullyConvolutionalVGG(model)


@accepts_width_multiplier
def vgg(cfg, batch_norm=False, num_classes=1000, width_mult=1.0, in_channels=3, init_weights=True,
        dropout=0.5, name=None):
    """Any configuration of Table 1: ``vgg("C")``, ``vgg("E", batch_norm=True)`` or ``vgg([64, "M", ...])``.

    ``width_mult`` scales every conv's channels and the 4096-wide hidden layers (0.125 gives a
    VGG that trains on a laptop at 32x32, with the same depth and layout).
    """
    if name is None:
        name = f"vgg ({cfg})" if isinstance(cfg, str) else "vgg"
    width_mult = check_width_mult(name, width_mult)
    features = make_layers(cfg, batch_norm, in_channels, width_mult)
    return VGG(features, num_classes, init_weights, dropout, _scaled(HIDDEN_FEATURES, width_mult), name)


def vgg11(num_classes=1000, **kwargs):
    """VGG-11 (configuration A); keyword options as ``vgg``."""
    return vgg("A", batch_norm=False, num_classes=num_classes, name="vgg11", **kwargs)


def vgg11_bn(num_classes=1000, **kwargs):
    """VGG-11 (A) with batch norm; keyword options as ``vgg``."""
    return vgg("A", batch_norm=True, num_classes=num_classes, name="vgg11_bn", **kwargs)


def vgg13(num_classes=1000, **kwargs):
    """VGG-13 (configuration B); keyword options as ``vgg``."""
    return vgg("B", batch_norm=False, num_classes=num_classes, name="vgg13", **kwargs)


def vgg13_bn(num_classes=1000, **kwargs):
    """VGG-13 (B) with batch norm; keyword options as ``vgg``."""
    return vgg("B", batch_norm=True, num_classes=num_classes, name="vgg13_bn", **kwargs)


def vgg16(num_classes=1000, **kwargs):
    """VGG-16 (configuration D); keyword options as ``vgg``."""
    return vgg("D", batch_norm=False, num_classes=num_classes, name="vgg16", **kwargs)


def vgg16_bn(num_classes=1000, **kwargs):
    """VGG-16 (D) with batch norm; keyword options as ``vgg``."""
    return vgg("D", batch_norm=True, num_classes=num_classes, name="vgg16_bn", **kwargs)


def vgg19(num_classes=1000, **kwargs):
    """VGG-19 (configuration E); keyword options as ``vgg``."""
    return vgg("E", batch_norm=False, num_classes=num_classes, name="vgg19", **kwargs)


def vgg19_bn(num_classes=1000, **kwargs):
    """VGG-19 (E) with batch norm; keyword options as ``vgg``."""
    return vgg("E", batch_norm=True, num_classes=num_classes, name="vgg19_bn", **kwargs)


def vgg11_lrn(num_classes=1000, **kwargs):
    """The paper's A-LRN: VGG-11 with LRN after the first conv (not in torchvision); options as ``vgg``."""
    return vgg("A-LRN", batch_norm=False, num_classes=num_classes, name="vgg11_lrn", **kwargs)


def vgg16_c(num_classes=1000, **kwargs):
    """The paper's C: VGG-16 with 1x1 convs in stages 3-5 (not in torchvision); options as ``vgg``."""
    return vgg("C", batch_norm=False, num_classes=num_classes, name="vgg16_c", **kwargs)


MODELS = {
    "vgg11": vgg11, "vgg11_bn": vgg11_bn, "vgg13": vgg13, "vgg13_bn": vgg13_bn,
    "vgg16": vgg16, "vgg16_bn": vgg16_bn, "vgg19": vgg19, "vgg19_bn": vgg19_bn,
    "vgg11_lrn": vgg11_lrn, "vgg16_c": vgg16_c,
}
