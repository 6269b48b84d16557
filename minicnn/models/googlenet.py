"""GoogLeNet (Szegedy et al. 2015, "Going deeper with convolutions"), the ILSVRC 2014 winner.

Four ideas a student should see in this file:

* 1×1 convolutions reduce channels before the expensive 3×3 and 5×5 convs (the "#reduce"
  columns of the table below), which is what keeps 22 layers at ~1.5 GMACs;
* the ``Inception`` module runs 1×1, 3×3, 5×5 convs and a 3×3 max-pool side by side on the
  same input and concatenates their outputs along channels;
* two auxiliary classifiers (``InceptionAux``) after 4a and 4d add gradient signal to the
  middle of the network while training, weighted 0.3 in the loss (``googlenet_loss``), and
  are switched off at test time;
* global average pooling replaces AlexNet/VGG's big fully connected layers: the only FC
  layer left is 1024 → classes, so the whole net has ~6.6M parameters (VGG16: 138M).

Two variants share one class:

``googlenet()``        torchvision's: BatchNorm (eps 0.001) after every conv, no LRN, the
                       "5×5" branch built with a 3×3 conv (torchvision bug #906, kept so
                       its pretrained weights load), maxpool4 2×2, dropout 0.2, aux heads
                       pooled adaptively to 4×4.  state_dict() keys, order and shapes equal
                       torchvision's, so exported weights load unchanged.
``googlenet_paper()``  the paper's Figure 3: convs with bias + ReLU and no BN, LRN after the
                       stem's max-pool and after conv3, a true 5×5 branch, maxpool4 3×3,
                       dropout 0.4, aux heads with a 5×5/3 average pool.

>>> model = googlenet(num_classes=10).eval()
>>> model(minicnn.randn(1, 3, 64, 64)).shape
(1, 10)
"""
import numbers
from collections import namedtuple

import minicnn.nn.functional as F
from minicnn import nn
from minicnn.checks import check_image_batch, check_pair, check_type
from minicnn.nn import init
from minicnn.shapes import conv_output_size
from minicnn.tensor import Tensor

# The builders (the zoo's registry convention); GoogLeNet, Inception, InceptionAux, GoogLeNetOutputs,
# googlenet_loss and load_torchvision_state_dict are imported from this module by name.
__all__ = ["googlenet", "googlenet_paper"]

PAPER_AUX_WEIGHT = 0.3  # "their loss gets added to the total loss of the network with a discount weight"


class GoogLeNetOutputs(namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])):
    """What GoogLeNet returns in training: the main logits first, the aux heads deepest-first (torchvision's order).

    ``weighted_logits()`` says how a training loss weighs each head; ``minicnn.train.fit``'s default loss asks
    any output for it, so the training loop needs to know no model.
    """
    __slots__ = ()

    def weighted_logits(self, aux_weight=PAPER_AUX_WEIGHT, op="GoogLeNetOutputs.weighted_logits"):
        """[(weight, logits)] for the loss: the main head at 1, each auxiliary head present at ``aux_weight``."""
        if isinstance(aux_weight, bool) or not isinstance(aux_weight, numbers.Real) or aux_weight < 0:
            raise ValueError(f"{op}: aux_weight must be a non-negative number, got {aux_weight!r}")
        return [(1.0, self.logits)] + [(aux_weight, aux_logits) for aux_logits in (self.aux_logits1, self.aux_logits2)
                                       if aux_logits is not None]

# The paper's Table 1, one row per Inception module; out_channels = #1x1 + #3x3 + #5x5 + pool proj:
#          (in_channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
inception_cfgs = {
    "3a": (192, 64, 96, 128, 16, 32, 32),        # 28×28 → 256
    "3b": (256, 128, 128, 192, 32, 96, 64),      # 28×28 → 480
    "4a": (480, 192, 96, 208, 16, 48, 64),       # 14×14 → 512  (aux1 reads this)
    "4b": (512, 160, 112, 224, 24, 64, 64),      # 14×14 → 512
    "4c": (512, 128, 128, 256, 24, 64, 64),      # 14×14 → 512
    "4d": (512, 112, 144, 288, 32, 64, 64),      # 14×14 → 528  (aux2 reads this)
    "4e": (528, 256, 160, 320, 32, 128, 128),    # 14×14 → 832
    "5a": (832, 256, 160, 320, 32, 128, 128),    # 7×7 → 832
    "5b": (832, 384, 192, 384, 48, 128, 128),    # 7×7 → 1024
}

# transform_input: torchvision's pretrained GoogLeNet came from a model fed [-1, 1] images, so
# ImageNet-normalised input x_c = (image_c - mean_c)/std_c is mapped back to (image_c - 0.5)/0.5.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """conv (no bias: BN's shift replaces it) → BatchNorm(eps=0.001) → ReLU; keys ``conv.*``, ``bn.*``.

    ReLU is the functional one, as in torchvision, so no extra module appears in the keys.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ConvReLU(nn.Module):
    """The paper's unit (2014, before batch norm): conv with bias → ReLU; keys ``conv.weight/bias``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return F.relu(self.conv(x))


class Inception(nn.Module):
    """Four branches over the same input, concatenated along channels (every branch keeps H and W).

    branch1: 1×1 | branch2: 1×1 reduce → 3×3 | branch3: 1×1 reduce → "5×5" | branch4: 3×3 max-pool → 1×1.
    ``branch3_kernel`` is 3 in torchvision (its bug #906, kept for weight compatibility) and 5 in the paper.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 conv_block=BasicConv2d, branch3_kernel=3):
        super().__init__()
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            conv_block(ch5x5red, ch5x5, kernel_size=branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return F.cat(branches, dim=1)  # (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)


class InceptionAux(nn.Module):
    """An auxiliary classifier: pool to 4×4 → 1×1 conv 128 → flatten 2048 → fc1 1024 → ReLU → dropout → fc2.

    ``pool`` is torchvision's adaptive 4×4 average (any input size) or the paper's 5×5 stride-3
    average (14×14 → 4×4 at 224×224 input).
    """

    def __init__(self, in_channels, num_classes, conv_block=BasicConv2d, dropout=0.7, pool=None):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4)) if pool is None else pool
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = self.conv(self.pool(x))      # (N, 128, 4, 4)
        x = F.flatten(x, 1)              # (N, 2048)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception v1; see the module docstring and the builders ``googlenet``, ``googlenet_paper``.

    In ``train()`` mode with ``aux_logits`` the output is ``GoogLeNetOutputs(logits, aux_logits2,
    aux_logits1)``; otherwise (and always in ``eval()``) it is the logits alone.
    """

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False, init_weights=True,
                 dropout=0.2, dropout_aux=0.7, paper=False):
        super().__init__()
        self.model_name = "googlenet_paper" if paper else "googlenet"
        _check_options(self.model_name, num_classes, dropout, dropout_aux)
        self.num_classes = num_classes
        self.aux_logits = bool(aux_logits)
        self.transform_input = bool(transform_input)
        self.paper = bool(paper)
        conv_block = ConvReLU if paper else BasicConv2d
        block = {"conv_block": conv_block, "branch3_kernel": 5 if paper else 3}

        # Stem: conventional convs and pools bring 224×224 down to 28×28 before the first Inception.
        self.conv1 = conv_block(3, 64, kernel_size=7, stride=2, padding=3)               # 112×112×64
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                        # 56×56
        # The paper normalises (LRN) after the first pool and after conv3; BN made that obsolete.
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if paper else None
        self.conv2 = conv_block(64, 64, kernel_size=1)                                   # the 3×3's "reduce"
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)                       # 56×56×192
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if paper else None
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                        # 28×28

        self.inception3a = Inception(*inception_cfgs["3a"], **block)
        self.inception3b = Inception(*inception_cfgs["3b"], **block)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                        # 14×14
        self.inception4a = Inception(*inception_cfgs["4a"], **block)
        self.inception4b = Inception(*inception_cfgs["4b"], **block)
        self.inception4c = Inception(*inception_cfgs["4c"], **block)
        self.inception4d = Inception(*inception_cfgs["4d"], **block)
        self.inception4e = Inception(*inception_cfgs["4e"], **block)
        # torchvision pools 2×2 here (same 7×7 output at 224, slightly different windows).
        self.maxpool4 = nn.MaxPool2d(3 if paper else 2, stride=2, ceil_mode=True)        # 7×7
        self.inception5a = Inception(*inception_cfgs["5a"], **block)
        self.inception5b = Inception(*inception_cfgs["5b"], **block)

        if self.aux_logits:
            aux = {"conv_block": conv_block, "dropout": dropout_aux}
            make_pool = (lambda: nn.AvgPool2d(5, stride=3, ceil_mode=True)) if paper else (lambda: None)
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, pool=make_pool(), **aux)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, pool=make_pool(), **aux)
        else:
            self.aux1 = self.aux2 = None

        # Global average pooling: 7×7×1024 → 1024, no weights (the paper's 7×7 average pool at 224).
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.inception5b.out_channels, num_classes)

        if init_weights:
            self._init_weights()

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                if self.paper:
                    # Caffe's bvlc_googlenet: "xavier" = U(±sqrt(3/fan_in)); biases 0.2 keep the ReLUs
                    # of a BN-free net alive at the start (the classifiers' biases start at 0, below).
                    init.kaiming_uniform_(module.weight, nonlinearity="linear")
                    init.constant_(module.bias, 0.2)
                else:
                    # torchvision: N(0, 0.01²) "truncated" at ±2, i.e. ±200σ: in effect a plain normal.
                    init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(module, nn.BatchNorm2d):
                init.constant_(module.weight, 1)
                init.constant_(module.bias, 0)
        if self.paper:
            for classifier in [self.fc] + ([self.aux1.fc2, self.aux2.fc2] if self.aux_logits else []):
                init.zeros_(classifier.bias)

    # --- input checks ----------------------------------------------------------------
    # Read from the layers themselves, so the check can never disagree with the model.
    @staticmethod
    def _side_after(layer, size):
        """Output side of a conv or pool ``layer`` for an input side ``size`` (0: nothing left)."""
        if size < 1:
            return 0
        # Square windows here, so the height of each pair serves both sides.
        op = type(layer).__name__
        k, s = (check_pair(op, name, getattr(layer, name))[0] for name in ("kernel_size", "stride"))
        p = check_pair(op, "padding", layer.padding, minimum=0)[0]
        return max(conv_output_size(size, k, s, p, 1, getattr(layer, "ceil_mode", False)), 0)

    def _trunk_sizes(self, size):
        """Side lengths after each layer that changes H/W for an input side ``size``: [5] 4a's, [6] 5b's."""
        sizes = []
        for layer in (self.conv1.conv, self.maxpool1, self.conv2.conv, self.conv3.conv, self.maxpool2,
                      self.maxpool3, self.maxpool4):
            size = self._side_after(layer, size)
            sizes.append(size)
        return sizes

    def _trunk_fits(self, size):
        return min(self._trunk_sizes(size)) >= 1

    def _paper_aux_fits(self, size):
        """The paper's 5×5/3 aux pool must give exactly 4×4 (fc1 expects 128·4·4): 4a's output is 12–14 px."""
        return self._side_after(self.aux1.pool, self._trunk_sizes(size)[5]) == 4

    def min_input_size(self):
        """The smallest square input side this model accepts (15 for torchvision's, 31 for the paper's)."""
        return next(size for size in range(1, 1025) if self._trunk_fits(size))

    def paper_aux_input_range(self):
        """(smallest, largest) input side for which the paper's aux heads work (they were made for 224)."""
        sizes = [size for size in range(1, 1025) if self._paper_aux_fits(size)]
        return sizes[0], sizes[-1]

    def _check_input(self, x):
        check_type(self.model_name, "input", x, Tensor)
        check_image_batch(self.model_name, x, channels=3)
        height, width = x.shape[2:]
        if not (self._trunk_fits(height) and self._trunk_fits(width)):  # the search for the minimum only now
            check_image_batch(self.model_name, x, channels=3, min_size=self.min_input_size())
        if self.paper and self.aux_logits and self.training and not (
                self._paper_aux_fits(height) and self._paper_aux_fits(width)):
            low, high = self.paper_aux_input_range()
            raise ValueError(
                f"{self.model_name}: input {height}x{width} does not fit the aux heads in training mode: "
                f"their 5x5/3 average pool gives 4x4 only for inputs from {low}x{low} to {high}x{high} "
                "(use aux_logits=False, or googlenet(), whose aux heads pool adaptively)")

    # --- forward -----------------------------------------------------------------------
    def _transform_input(self, x):
        if not self.transform_input:
            return x
        channels = []
        for c, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD)):
            # (x_c·std + mean − 0.5) / 0.5, written as torchvision does it (same float rounding)
            channels.append(x[:, c:c + 1] * (std / 0.5) + (mean - 0.5) / 0.5)
        return F.cat(channels, dim=1)

    def forward(self, x):
        self._check_input(x)
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        if self.lrn1 is not None:
            x = self.lrn1(x)
        x = self.conv3(self.conv2(x))
        if self.lrn2 is not None:
            x = self.lrn2(x)
        x = self.maxpool2(x)

        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.maxpool3(x))
        with_aux = self.aux_logits and self.training
        aux_logits1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux_logits2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))

        x = F.flatten(self.avgpool(x), 1)   # (N, 1024)
        logits = self.fc(self.dropout(x))
        if with_aux:
            return GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
        return logits

    # --- loading -----------------------------------------------------------------------
    def load_state_dict(self, state_dict, strict=True):
        """As ``Module.load_state_dict``, except that a model built with ``aux_logits=False`` ignores
        ``aux1.*``/``aux2.*`` entries: torchvision's GoogLeNet checkpoint carries the aux heads
        (364 keys) and its no-aux model (344 keys) drops them the same way.
        """
        if not self.aux_logits and hasattr(state_dict, "items"):
            state_dict = {key: value for key, value in state_dict.items()
                          if not key.startswith(("aux1.", "aux2."))}
        return super().load_state_dict(state_dict, strict)

    def extra_repr(self):
        return f"aux_logits={self.aux_logits}, transform_input={self.transform_input}"


def _check_options(name, num_classes, dropout, dropout_aux):
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive int, got {num_classes!r}")
    for option, p in (("dropout", dropout), ("dropout_aux", dropout_aux)):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"{name}: {option} must be a probability in [0, 1), got {p!r}")


def load_torchvision_state_dict(model, state_dict, strict=True):
    """Load a torchvision GoogLeNet state_dict (arrays, e.g. from an ``.npz``) into ``model``.

    The same as ``model.load_state_dict(state_dict, strict)``: a no-aux model skips the aux heads' keys.

    >>> load_torchvision_state_dict(googlenet(aux_logits=False), dict(np.load("googlenet.npz")))
    """
    if not isinstance(model, GoogLeNet):
        raise TypeError(f"load_torchvision_state_dict: expected a GoogLeNet, got {type(model).__name__}")
    return model.load_state_dict(state_dict, strict)


def googlenet(num_classes=1000, aux_logits=True, transform_input=False, init_weights=True, dropout=0.2,
              dropout_aux=0.7):
    """torchvision's GoogLeNet (13,004,888 parameters with aux heads, 6,624,904 without; 1.5 GMACs at 224).

    Load torchvision's pretrained weights with ``transform_input=True`` (what its builder sets) and, to
    drop the aux heads, ``aux_logits=False``: the checkpoint's ``aux1.*``/``aux2.*`` keys are then ignored.
    """
    return GoogLeNet(num_classes, aux_logits, transform_input, init_weights, dropout, dropout_aux)


def googlenet_paper(num_classes=1000, aux_logits=True, transform_input=False, init_weights=True, dropout=0.4,
                    dropout_aux=0.7):
    """The paper's GoogLeNet: no BN, LRN after the stem, a true 5×5 branch, maxpool4 3×3, dropout 0.4."""
    return GoogLeNet(num_classes, aux_logits, transform_input, init_weights, dropout, dropout_aux, paper=True)


def googlenet_loss(outputs, target, aux_weight=PAPER_AUX_WEIGHT):
    """The paper's training loss: CE(logits) + aux_weight · (CE(aux_logits1) + CE(aux_logits2)).

    ``outputs`` is what the model returned: a ``GoogLeNetOutputs`` in training (aux heads weighted
    0.3 as in the paper), or plain logits in eval mode (then just the cross-entropy).
    """
    if isinstance(outputs, Tensor):
        return F.cross_entropy(outputs, target)
    if not isinstance(outputs, tuple) or len(outputs) != 3:
        raise TypeError(f"googlenet_loss: expected logits (a Tensor) or GoogLeNetOutputs, "
                        f"got {type(outputs).__name__}")
    return F.cross_entropy_of_heads(GoogLeNetOutputs(*outputs).weighted_logits(aux_weight, "googlenet_loss"), target)


MODELS = {"googlenet": googlenet, "googlenet_paper": googlenet_paper}
