"""ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition") and ResNeXt (Xie et al. 2017).

A residual block learns F(x) and outputs relu(F(x) + x): when the best thing a
block can do is nothing, it only has to push F towards zero, which is easy,
instead of learning an identity through a stack of convolutions, which is
hard.  That is why the plain nets of the paper get *worse* with depth (the
degradation problem) and ResNets do not.

The ImageNet nets follow the paper's Table 1, one row per depth:

    stage     output   18 / 34 (BasicBlock)     50 / 101 / 152 (Bottleneck)
    conv1     112×112  7×7, 64, stride 2
              56×56    3×3 max pool, stride 2
    conv2_x   56×56    [3×3, 64; 3×3, 64]       [1×1, 64; 3×3, 64; 1×1, 256]
    conv3_x   28×28    [3×3,128; 3×3,128]       [1×1,128; 3×3,128; 1×1, 512]
    conv4_x   14×14    [3×3,256; 3×3,256]       [1×1,256; 3×3,256; 1×1,1024]
    conv5_x   7×7      [3×3,512; 3×3,512]       [1×1,512; 3×3,512; 1×1,2048]
              1×1      global average pool, fc, softmax

The builders are torchvision's (``resnet18`` … ``resnet152``, ``resnext50_32x4d``,
``resnext101_32x8d``): same state_dict keys, order and shapes, so torchvision
weights load unchanged.  Two torchvision details differ from the paper:

* "v1.5": a Bottleneck that halves the resolution does it in its 3×3 conv
  (conv2), not in the first 1×1 conv; a 1×1 conv with stride 2 simply drops
  three quarters of its input, the 3×3 conv sees all of it.
* shortcuts that change shape are projections, ``downsample = Sequential(1×1
  conv, BN)`` (the paper's option B); the CIFAR nets (resnet_cifar.py) use
  the parameter-free option A.

ResNeXt replaces the Bottleneck's 3×3 conv by a grouped conv ("cardinality"
``groups`` paths of ``width_per_group`` channels each): resnext50_32x4d has 32
paths of 4 channels at conv2_x, widening the block for about the same cost.

>>> model = resnet50()
>>> model(minicnn.randn(1, 3, 224, 224)).shape
(1, 1000)
"""
import numbers

import minicnn.nn.functional as F
from minicnn import checks, nn
from minicnn.checks import check_positive_int
from minicnn.nn import init
from minicnn.tensor import Tensor

# The generic ``resnet(depth)`` stays out of __all__: minicnn.models exports these names, and
# there "resnet" is this module.
__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
]


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    """3×3 conv with padding 1 ("same" at stride 1); no bias, since a BN follows and has its own."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1×1 conv: mixes channels at each pixel (reduce, restore, or project a shortcut)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs and a shortcut (the paper's Fig. 2, left): ResNet-18 and -34.

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), where the
    shortcut is ``x`` itself, or ``downsample(x)`` when the block changes the
    resolution or the channel count.
    """

    expansion = 1  # output channels = planes · expansion

    def __init__(self, in_planes, planes, stride=1, downsample=None, groups=1, width_per_group=64):
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError(
                f"BasicBlock: groups and width_per_group only apply to Bottleneck (ResNeXt), "
                f"got groups={groups}, width_per_group={width_per_group}"
            )
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    def last_bn(self):
        """The BN whose γ = 0 makes the block start as relu(shortcut(x)) (``zero_init_residual``)."""
        return self.bn2


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 restore (×4) and a shortcut (Fig. 5, right): ResNet-50/101/152, ResNeXt.

    The 1×1 convs make the 3×3 conv work on 4× fewer channels, so a 50-layer
    net costs about what a 34-layer one does.  The stride sits on the 3×3 conv
    (torchvision's v1.5); ``groups`` > 1 makes that conv grouped (ResNeXt).
    """

    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None, groups=1, width_per_group=64):
        super().__init__()
        # ResNet: width = planes.  ResNeXt-50 32×4d at conv2_x: 32 groups × 4 channels = 128.
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = conv1x1(in_planes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def last_bn(self):
        return self.bn3


# The paper's Table 1: the block type and how many blocks each stage (conv2_x … conv5_x) stacks.
RESNET_CFGS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}
STAGE_PLANES = (64, 128, 256, 512)  # conv2_x … conv5_x; channels double where the resolution halves
STAGE_STRIDES = (1, 2, 2, 2)        # conv2_x needs none: the max pool has just halved the map


def check_image_batch(model_name, x, in_channels):
    """Raise a TypeError/ValueError naming the model unless ``x`` is an (N, in_channels, H, W) Tensor."""
    checks.check_type(model_name, "input", x, Tensor)
    checks.check_image_batch(model_name, x, channels=in_channels)


class ResNet(nn.Module):
    """The ImageNet ResNet: stem, four stages of ``block``, global average pool, fc.

    ``layers`` gives the number of blocks per stage (a row of Table 1).  Any
    input of 1×1 pixels or more works: every stride-2 layer pads, so a 32×32
    image ends as a 1×1 map before the pool.

    ``zero_init_residual`` sets γ = 0 in each block's last BN, so every block
    starts as relu(shortcut(x)) and the net as a shallow one (Goyal et al. 2017).
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, in_channels=3, name="ResNet"):
        super().__init__()
        if not (isinstance(block, type) and issubclass(block, (BasicBlock, Bottleneck))):
            raise TypeError(f"{name}: block must be BasicBlock or Bottleneck, got {block!r}")
        if not isinstance(layers, (list, tuple)) or len(layers) != len(STAGE_PLANES):
            raise ValueError(f"{name}: layers must list the blocks of the 4 stages, got {layers!r}")
        layers = [check_positive_int(name, "each stage's block count", count) for count in layers]
        self.name = name
        self.in_channels = check_positive_int(name, "in_channels", in_channels)
        num_classes = check_positive_int(name, "num_classes", num_classes)
        self.groups = check_positive_int(name, "groups", groups)
        self.width_per_group = check_positive_int(name, "width_per_group", width_per_group)
        self.in_planes = 64  # channels entering the next block; _make_stage advances it

        # Stem (conv1 row of Table 1): 224 → 112 → 56.
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # conv2_x … conv5_x, named layer1 … layer4 as in torchvision.
        for index, (planes, count, stride) in enumerate(zip(STAGE_PLANES, layers, STAGE_STRIDES), start=1):
            setattr(self, f"layer{index}", self._make_stage(block, planes, count, stride))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(STAGE_PLANES[-1] * block.expansion, num_classes)

        self._init_weights(zero_init_residual)

    def _make_stage(self, block, planes, count, stride):
        """``count`` blocks; only the first may change resolution or channels, so only it needs a projection."""
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.in_planes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.in_planes, planes, stride, downsample, self.groups, self.width_per_group)]
        self.in_planes = planes * block.expansion
        for _ in range(1, count):
            blocks.append(block(self.in_planes, planes, groups=self.groups, width_per_group=self.width_per_group))
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He init on fan_out: keeps the gradient's variance steady going backwards through ReLUs.
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                init.ones_(module.weight)
                init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    init.zeros_(module.last_bn().weight)

    def forward(self, x):
        check_image_batch(self.name, x, self.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.flatten(self.avgpool(x), 1)  # (N, 512·expansion)
        return self.fc(x)


def resnet(depth, num_classes=1000, **kwargs):
    """The ResNet of Table 1 with ``depth`` weighted layers (18, 34, 50, 101 or 152).

    ``kwargs``: ``zero_init_residual``, ``groups`` and ``width_per_group``
    (ResNeXt: ``resnet(50, groups=32, width_per_group=4)``), ``in_channels``.

    >>> len(resnet(34).layer3)  # conv4_x of ResNet-34 stacks 6 blocks
    6
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise TypeError(f"resnet: depth must be an int (one of {sorted(RESNET_CFGS)}), got {depth!r}")
    if depth not in RESNET_CFGS:
        raise ValueError(f"resnet: depth {depth} is not in Table 1; choose one of {sorted(RESNET_CFGS)}")
    block, layers = RESNET_CFGS[depth]
    kwargs.setdefault("name", f"resnet{depth}")
    return ResNet(block, layers, num_classes=num_classes, **kwargs)


def resnet18(num_classes=1000, **kwargs):
    return resnet(18, num_classes, **kwargs)


def resnet34(num_classes=1000, **kwargs):
    return resnet(34, num_classes, **kwargs)


def resnet50(num_classes=1000, **kwargs):
    return resnet(50, num_classes, **kwargs)


def resnet101(num_classes=1000, **kwargs):
    return resnet(101, num_classes, **kwargs)


def resnet152(num_classes=1000, **kwargs):
    return resnet(152, num_classes, **kwargs)


def resnext50_32x4d(num_classes=1000, **kwargs):
    """ResNeXt-50 with cardinality 32 and 4 channels per path (Xie et al. 2017, Table 1)."""
    return resnet(50, num_classes, groups=32, width_per_group=4, name="resnext50_32x4d", **kwargs)


def resnext101_32x8d(num_classes=1000, **kwargs):
    """ResNeXt-101 with cardinality 32 and 8 channels per path."""
    return resnet(101, num_classes, groups=32, width_per_group=8, name="resnext101_32x8d", **kwargs)


MODELS = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnext50_32x4d": resnext50_32x4d,
    "resnext101_32x8d": resnext101_32x8d,
}
