"""The CIFAR-10 ResNets of He et al. 2015, section 4.2, and the plain nets they are compared with.

The paper's degradation experiment: a plain 56-layer net has a *higher
training error* than a plain 20-layer one, so it is not overfitting, it is
harder to optimise; the same nets with shortcuts get better with depth.
Both families are built here from one table, so the experiment is a loop:

    for depth in (20, 56):
        train(cifar_plain(depth)); train(cifar_resnet(depth))

The architecture (6n + 2 weighted layers):

    output map   32×32   16×16   8×8
    layers       1 + 2n  2n      2n       (the 1 is the first 3×3 conv)
    filters      16      32      64

then global average pooling and a 10-way fc.  Each stage stacks n blocks of
two 3×3 convs; the first block of stages 2 and 3 halves the map with stride 2.

Shortcuts are the paper's option A: identity, and where the shape changes
the input is subsampled (every second pixel) and the new channels are zeros.
So a ResNet has exactly the parameters of its plain net (0.27M for 20 layers);
their state_dicts even have the same keys.  ``shortcut="B"`` swaps in
projections (1×1 conv + BN) on those changes instead, as the ImageNet nets do.
``width_mult`` scales the 16/32/64 filters (as VGG's does) for
CPU-sized experiments: at 0.25 they are 4/8/16, and cifar_resnet20 has 17k
parameters.

>>> model = cifar_resnet20()
>>> model(minicnn.randn(8, 3, 32, 32)).shape
(8, 10)
"""
import numbers
import warnings

import minicnn.nn.functional as F
from minicnn import nn
from minicnn.backend import get_array_module
from minicnn.checks import check_positive_int
from minicnn.models.resnet import BasicBlock, check_image_batch, conv1x1, conv3x3
from minicnn.models.width import accepts_width_multiplier, check_width_mult
from minicnn.nn import init
from minicnn.tensor import Tensor

__all__ = [
    "CifarResNet",
    "PlainBlock",
    "ShortcutA",
    "cifar_plain",
    "cifar_plain20",
    "cifar_plain32",
    "cifar_plain44",
    "cifar_plain56",
    "cifar_plain110",
    "cifar_resnet",
    "cifar_resnet20",
    "cifar_resnet32",
    "cifar_resnet44",
    "cifar_resnet56",
    "cifar_resnet110",
    "cifar_resnet1202",
]

# Section 4.2: three stages, at 32×32, 16×16 and 8×8, with these filter counts.
CIFAR_STAGE_PLANES = (16, 32, 64)
CIFAR_STAGE_STRIDES = (1, 2, 2)


class ShortcutA(nn.Module):
    """Option A: a parameter-free shortcut from (N, C_in, H, W) to (N, C_out, ⌈H/s⌉, ⌈W/s⌉).

    Keeps every ``stride``-th pixel (the same grid a 3×3 conv with padding 1
    and that stride samples) and appends C_out − C_in channels of zeros.
    """

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"ShortcutA: cannot shrink {in_planes} channels to {out_planes} with zero padding")
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]  # (N, C_in, ⌈H/s⌉, ⌈W/s⌉)
        extra = self.out_planes - self.in_planes
        if extra:
            xp = get_array_module(x.data)  # the zeros live where x lives (CPU or GPU)
            zeros = Tensor(xp.zeros((x.shape[0], extra, x.shape[2], x.shape[3]), dtype=x.dtype))
            x = F.cat([x, zeros], dim=1)  # (N, C_out, ...)
        return x

    def extra_repr(self):
        return f"{self.in_planes} -> {self.out_planes}, stride={self.stride}"


class PlainBlock(nn.Module):
    """A BasicBlock without its shortcut: relu(bn2(conv2(relu(bn1(conv1(x)))))).

    Same layers, same keys as ``BasicBlock``; only the ``+ x`` is missing.
    """

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


def check_cifar_depth(model_name, depth):
    """n = (depth − 2) / 6 blocks per stage; raise naming the model unless depth is 6n + 2 with n ≥ 1."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise TypeError(f"{model_name}: depth must be an int of the form 6n + 2 (20, 32, 44, 56, 110, 1202), "
                        f"got {depth!r}")
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"{model_name}: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110, 1202), got {depth}")
    return (depth - 2) // 6


def cifar_stage_planes(width_mult=1.0):
    """The three stages' filter counts scaled by ``width_mult``, each at least 1.

    >>> cifar_stage_planes(0.25)
    (4, 8, 16)
    """
    return tuple(max(1, round(planes * width_mult)) for planes in CIFAR_STAGE_PLANES)


class CifarResNet(nn.Module):
    """Section 4.2's net of ``depth`` = 6n + 2 layers, with shortcuts (``residual=True``) or plain.

    ``shortcut``: "A" (zero-padding identity, the paper's CIFAR choice) or "B"
    (projection where the shape changes).  ``zero_init_residual``: γ = 0 in
    each block's last BN, so every residual block starts as relu(shortcut(x)).
    ``width_mult`` scales the stage filters 16/32/64 (rounded, at least 1).
    """

    @accepts_width_multiplier
    def __init__(self, depth, num_classes=10, residual=True, shortcut="A", zero_init_residual=False,
                 in_channels=3, name=None, width_mult=1.0):
        super().__init__()
        name = name or f"cifar_{'resnet' if residual else 'plain'}{depth}"
        blocks_per_stage = check_cifar_depth(name, depth)
        if shortcut not in ("A", "B"):
            raise ValueError(f"{name}: shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
        if zero_init_residual and not residual:
            raise ValueError(f"{name}: zero_init_residual needs shortcuts; a plain net would output zeros")
        self.name = name
        self.depth, self.residual, self.shortcut = depth, bool(residual), shortcut
        self.in_channels = check_positive_int(name, "in_channels", in_channels)
        num_classes = check_positive_int(name, "num_classes", num_classes)
        self.width_mult = check_width_mult(name, width_mult)
        stage_planes = cifar_stage_planes(self.width_mult)
        self.in_planes = stage_planes[0]

        self.conv1 = conv3x3(in_channels, stage_planes[0])
        self.bn1 = nn.BatchNorm2d(stage_planes[0])
        self.relu = nn.ReLU()
        for index, (planes, stride) in enumerate(zip(stage_planes, CIFAR_STAGE_STRIDES), start=1):
            setattr(self, f"layer{index}", self._make_stage(planes, blocks_per_stage, stride))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(stage_planes[-1], num_classes)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    init.zeros_(module.last_bn().weight)

    def _make_stage(self, planes, count, stride):
        blocks = []
        for position in range(count):
            block_stride = stride if position == 0 else 1
            if not self.residual:
                blocks.append(PlainBlock(self.in_planes, planes, block_stride))
            else:
                downsample = None
                if block_stride != 1 or self.in_planes != planes:
                    if self.shortcut == "A":
                        downsample = ShortcutA(self.in_planes, planes, block_stride)
                    else:
                        downsample = nn.Sequential(conv1x1(self.in_planes, planes, block_stride),
                                                   nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(self.in_planes, planes, block_stride, downsample))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        check_image_batch(self.name, x, self.in_channels)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.flatten(self.avgpool(x), 1))  # (N, 64·width) → (N, num_classes)

    @property
    def width_multiplier(self):
        """The old name of ``width_mult``, deprecated."""
        warnings.warn(f"{self.name}: width_multiplier is deprecated; use width_mult (torchvision's name)",
                      DeprecationWarning, stacklevel=2)
        return self.width_mult

    def extra_repr(self):
        width = f", width_mult={self.width_mult}" if self.width_mult != 1.0 else ""
        return f"depth={self.depth}, residual={self.residual}, shortcut={self.shortcut!r}{width}"


def cifar_resnet(depth, num_classes=10, **kwargs):
    """The CIFAR ResNet with ``depth`` = 6n + 2 layers; ``kwargs`` go to ``CifarResNet``.

    >>> cifar_resnet(56, width_mult=0.25)(minicnn.randn(2, 3, 32, 32)).shape
    (2, 10)
    """
    kwargs.setdefault("name", f"cifar_resnet{depth}")
    return CifarResNet(depth, num_classes, residual=True, **kwargs)


def cifar_plain(depth, num_classes=10, **kwargs):
    """The plain net (no shortcuts) with ``depth`` = 6n + 2 layers, for the degradation experiment."""
    kwargs.setdefault("name", f"cifar_plain{depth}")
    return CifarResNet(depth, num_classes, residual=False, **kwargs)


def cifar_resnet20(num_classes=10, **kwargs):
    return cifar_resnet(20, num_classes, **kwargs)


def cifar_resnet32(num_classes=10, **kwargs):
    return cifar_resnet(32, num_classes, **kwargs)


def cifar_resnet44(num_classes=10, **kwargs):
    return cifar_resnet(44, num_classes, **kwargs)


def cifar_resnet56(num_classes=10, **kwargs):
    return cifar_resnet(56, num_classes, **kwargs)


def cifar_resnet110(num_classes=10, **kwargs):
    return cifar_resnet(110, num_classes, **kwargs)


def cifar_resnet1202(num_classes=10, **kwargs):
    return cifar_resnet(1202, num_classes, **kwargs)


def cifar_plain20(num_classes=10, **kwargs):
    return cifar_plain(20, num_classes, **kwargs)


def cifar_plain32(num_classes=10, **kwargs):
    return cifar_plain(32, num_classes, **kwargs)


def cifar_plain44(num_classes=10, **kwargs):
    return cifar_plain(44, num_classes, **kwargs)


def cifar_plain56(num_classes=10, **kwargs):
    return cifar_plain(56, num_classes, **kwargs)


def cifar_plain110(num_classes=10, **kwargs):
    return cifar_plain(110, num_classes, **kwargs)


MODELS = {
    "cifar_resnet20": cifar_resnet20,
    "cifar_resnet32": cifar_resnet32,
    "cifar_resnet44": cifar_resnet44,
    "cifar_resnet56": cifar_resnet56,
    "cifar_resnet110": cifar_resnet110,
    "cifar_resnet1202": cifar_resnet1202,
    "cifar_plain20": cifar_plain20,
    "cifar_plain32": cifar_plain32,
    "cifar_plain44": cifar_plain44,
    "cifar_plain56": cifar_plain56,
    "cifar_plain110": cifar_plain110,
}
