"""torchvision's VGG-11-BN, VGG-16, ResNet-18, ResNet-50 and MobileNetV2, written out in plain ``torch.nn``.

bench_models.py times minicnn's models against PyTorch's.  The natural reference is
``torchvision.models``, but torchvision cannot be installed beside the pinned CPU torch here
(PyPI's wheel fails to import: "operator torchvision::nms does not exist"), so the five
networks are transcribed from torchvision's source: the same layers, in the same order, under
the same attribute names, with torchvision's configuration tables.

A transcription is only as good as its check.  ``check_against_torchvision(name, model)``
compares the model's ``state_dict()`` (every key, in order, and every shape) with the one
torchvision itself produced, recorded in tests/models/reference.json; the benchmark runs it on
every model it builds, and tests/test_bench_models.py runs it on all five.  Equal state dicts
mean the weights of a minicnn model load into these strictly, layer for layer; the benchmark
then checks that both compute the same logits.  Initial weights are PyTorch's defaults (not
torchvision's init): the benchmark overwrites them with minicnn's.
"""
import json
import os

from torch import nn

REFERENCE = os.path.join(os.path.dirname(__file__), os.pardir, "tests", "models", "reference.json")


# --- VGG (torchvision/models/vgg.py) ----------------------------------------------------
VGG_CFGS = {  # channels of each 3x3 convolution, "M" a 2x2 max-pool
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-11
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # VGG-16
}


def vgg_features(cfg, batch_norm):
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features, num_classes=1000):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg11_bn(num_classes=1000):
    return VGG(vgg_features(VGG_CFGS["A"], batch_norm=True), num_classes)


def vgg16(num_classes=1000):
    return VGG(vgg_features(VGG_CFGS["D"], batch_norm=False), num_classes)


# --- ResNet (torchvision/models/resnet.py) -----------------------------------------------
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(inplanes, planes, stride), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4  # ResNet v1.5: the stride sits on the 3x3 convolution, as in torchvision

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(inplanes, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes=1000):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes=1000):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


# --- MobileNetV2 (torchvision/models/mobilenetv2.py, width 1.0) ----------------------------
def conv_bn_relu6(in_channels, out_channels, kernel_size=3, stride=1, groups=1):
    """torchvision's Conv2dNormActivation: a Sequential, so its keys are ``.0.weight`` (conv), ``.1.*``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                                   groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn_relu6(inp, hidden_dim, kernel_size=1)] if expand_ratio != 1 else []
        layers += [conv_bn_relu6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # depthwise
                   nn.Conv2d(hidden_dim, oup, 1, bias=False), nn.BatchNorm2d(oup)]  # linear bottleneck
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


MOBILENET_V2_SETTING = [  # t (expansion), c (channels), n (blocks), s (stride of the first)
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
]


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        features, input_channel = [conv_bn_relu6(3, 32, stride=2)], 32
        for t, c, n, s in MOBILENET_V2_SETTING:
            for i in range(n):
                features.append(InvertedResidual(input_channel, c, s if i == 0 else 1, expand_ratio=t))
                input_channel = c
        features.append(conv_bn_relu6(input_channel, 1280, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.flatten(1))


def mobilenet_v2(num_classes=1000):
    return MobileNetV2(num_classes)


MODELS = {"vgg11_bn": vgg11_bn, "vgg16": vgg16, "resnet18": resnet18, "resnet50": resnet50,
          "mobilenet_v2": mobilenet_v2}


# --- the check -----------------------------------------------------------------------------
def torchvision_state_dict_spec(name, num_classes=1000):
    """[(key, shape), ...] of torchvision's ``name``, in order; the classifier resized to ``num_classes``."""
    with open(REFERENCE) as file:
        spec = [(key, tuple(shape)) for key, shape in json.load(file)[name]["state_dict"]]
    # Each of the five ends with its classifier's Linear: weight (1000, features), then bias (1000,).
    (weight, weight_shape), (bias, _) = spec[-2:]
    return spec[:-2] + [(weight, (num_classes, weight_shape[1])), (bias, (num_classes,))]


def check_against_torchvision(name, model, num_classes=1000):
    """Raise ValueError at the first state_dict key or shape of ``model`` that differs from torchvision's."""
    expected = torchvision_state_dict_spec(name, num_classes)
    actual = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    for index, (want, got) in enumerate(zip(expected, actual)):
        if want != got:
            raise ValueError(f"{name}: state_dict entry {index} is {got[0]} {got[1]}; "
                             f"torchvision has {want[0]} {want[1]}")
    if len(actual) != len(expected):
        raise ValueError(f"{name}: {len(actual)} state_dict entries; torchvision has {len(expected)}")
