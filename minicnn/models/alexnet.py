"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012): the ILSVRC 2012 winner, 5 convs + 3 fully connected layers.

Two versions, each written as its table of layers:

* ``alexnet``: torchvision's, from the "one weird trick" paper (Krizhevsky 2014): 64-192-384-256-256
  channels, no LRN, no groups, and an adaptive pool so any input from 63x63 up works.  Its
  ``state_dict`` matches torchvision's key for key, so torchvision's weights load unchanged.
* ``alexnet_paper``: the 2012 paper's: 96-256-384-384-256 channels, local response normalisation
  after conv1 and conv2, and conv2/4/5 split in two groups (the two GPUs of the paper, each holding half
  of the filters and seeing only its own half of the previous layer); input 227x227.

What the course points at: ReLU instead of tanh, an 11x11 stride-4 first conv without padding (paper),
LRN, and dropout in the first two fully connected layers (the three of them hold 96% of the parameters).

>>> model = alexnet(num_classes=10)
>>> model(minicnn.randn(1, 3, 224, 224)).shape
(1, 10)
"""
from minicnn import nn
from minicnn.checks import check_image_batch, check_pair, check_type
from minicnn.nn import functional as F
from minicnn.shapes import conv_output_size
from minicnn.tensor import Tensor

__all__ = ["AlexNet", "alexnet", "alexnet_paper"]


def feature_map_size(features, size):
    """(H, W) after ``features`` for an (H, W) input, by the conv arithmetic H2 = (H1 − F + 2P)/S + 1.

    Walks the Conv2d and MaxPool2d layers (both floor the division); other layers keep the size.
    A size of 0 means the input is too small.

    >>> feature_map_size(alexnet().features, (224, 224))
    (6, 6)
    """
    height, width = size
    for layer in features:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            # A pool keeps its arguments as given (3, (3,) or (3, 3)): read each as (height, width).
            op = type(layer).__name__
            kernels, strides, dilations = [check_pair(op, name, getattr(layer, name))
                                           for name in ("kernel_size", "stride", "dilation")]
            if isinstance(layer, nn.Conv2d):
                paddings = layer._padding_pair  # "same" and "valid" resolved to numbers
            else:
                paddings = check_pair(op, "padding", layer.padding, minimum=0)
            sizes = [max(conv_output_size(length, kernel, stride, padding, dilation), 0)
                     for length, kernel, stride, padding, dilation
                     in zip((height, width), kernels, strides, paddings, dilations)]
            height, width = sizes
    return height, width


def _smallest_input(features, needed):
    """The smallest square input whose feature maps are at least ``needed`` pixels wide."""
    size = 1
    while feature_map_size(features, (size, size))[0] < needed:
        size += 1
    return size


class AlexNet(nn.Module):
    """features (convs and pools) → pool to 6x6 → flatten (256·6·6 = 9216) → classifier.

    ``pool`` is torchvision's ``AdaptiveAvgPool2d((6, 6))``, which lets other input sizes reach the
    classifier; with ``pool=None`` (the paper) the features themselves must come out 6x6.
    Build it with ``alexnet()`` or ``alexnet_paper()``.
    """

    def __init__(self, features, classifier, pool=None, name="alexnet", in_channels=3):
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.features = features
        if pool is not None:  # registered only when present, so the key order is torchvision's
            self.avgpool = pool
        self.classifier = classifier

    def _check_input(self, x):
        check_type(self.name, "input", x, Tensor)
        check_image_batch(self.name, x, channels=self.in_channels)
        height, width = x.shape[2:]
        out_height, out_width = feature_map_size(self.features, (height, width))
        if "avgpool" in self._modules:
            if min(out_height, out_width) < 1:  # the search for the minimum (milliseconds) only when it fails
                minimum = _smallest_input(self.features, 1)
                check_image_batch(self.name, x, channels=self.in_channels, min_size=minimum)
        elif (out_height, out_width) != (6, 6):
            # The paper's net has no adaptive pool: fc6 is wired to exactly 256·6·6 inputs.
            raise ValueError(f"{self.name}: input {height}x{width} gives {out_height}x{out_width} feature maps, "
                             "the classifier needs 6x6 (input 227x227)")

    def forward(self, x):
        self._check_input(x)
        x = self.features(x)
        if "avgpool" in self._modules:
            x = self.avgpool(x)
        x = F.flatten(x, 1)  # (N, 256, 6, 6) → (N, 9216)
        return self.classifier(x)


def alexnet(num_classes=1000, dropout=0.5):
    """torchvision's AlexNet: 61.1M parameters, 0.71 GMACs at 224x224, inputs from 63x63 up.

    Default PyTorch initialisation (torchvision applies no init of its own to AlexNet).
    """
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),   # 224 → 55
        nn.MaxPool2d(kernel_size=3, stride=2),                              # → 27 (overlapping pool)
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),                              # → 13
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),                              # → 6
    )
    # torchvision drops out *before* each of the first two Linear layers (keys classifier.1/.4/.6).
    classifier = nn.Sequential(
        nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )
    return AlexNet(features, classifier, pool=nn.AdaptiveAvgPool2d((6, 6)), name="alexnet")


def _paper_lrn():
    # Section 3.3: k=2, n=5, α=1e-4, β=0.75.  (minicnn's LRN, like PyTorch's and Caffe's, divides α by n.)
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


def alexnet_paper(num_classes=1000, dropout=0.5):
    """The 2012 paper's AlexNet (Figure 2): 227x227 input, 61.0M parameters.

    groups=2 reproduces the two-GPU split: conv2, conv4 and conv5 see only the half of the previous
    layer's maps that lives on their GPU; conv3 and the fully connected layers see everything.
    LRN follows the ReLU of conv1 and conv2, before their max-pool.
    """
    features = nn.Sequential(
        nn.Conv2d(3, 96, kernel_size=11, stride=4), nn.ReLU(), _paper_lrn(),  # 227 → 55, no padding
        nn.MaxPool2d(kernel_size=3, stride=2),                                 # → 27
        nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2), nn.ReLU(), _paper_lrn(),
        nn.MaxPool2d(kernel_size=3, stride=2),                                 # → 13
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),              # crosses the GPUs
        nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),                                 # → 6
    )
    # "We use dropout in the first two fully-connected layers": on the outputs of fc6 and fc7.
    classifier = nn.Sequential(
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(4096, num_classes),
    )
    return AlexNet(features, classifier, pool=None, name="alexnet_paper")


MODELS = {"alexnet": alexnet, "alexnet_paper": alexnet_paper}
