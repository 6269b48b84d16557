"""The model zoo: the course's networks built from minicnn's own layers.

Every family's file reads like its paper's table and registers its named
builders in a ``MODELS`` dict; this package gathers them.  As in torchvision,
``minicnn.models.vgg16`` is the builder; the family's file stays importable as
``minicnn.models.vgg`` for its blocks (``from minicnn.models.vgg import vgg_block``).

>>> from minicnn import models
>>> "resnet50" in models.list_models()
True
>>> model = models.get_model("vgg11_bn", num_classes=10, width_mult=0.25)
>>> "vgg11_bn" in models.WIDTH_MULT_MODELS   # the builders that take width_mult
True

``linear_to_conv`` (convert.py) turns any fully connected layer into the convolution that computes it,
the rule behind VGG's fully-convolutional test mode.
"""
from minicnn.models import alexnet as _alexnet
from minicnn.models import googlenet as _googlenet
from minicnn.models import mobilenet_v1 as _mobilenet_v1
from minicnn.models import mobilenet_v2 as _mobilenet_v2
from minicnn.models import mobilenet_v3 as _mobilenet_v3
from minicnn.models import resnet as _resnet
from minicnn.models import resnet_cifar as _resnet_cifar
from minicnn.models import vgg as _vgg
from minicnn.models.alexnet import *  # noqa: F403
from minicnn.models.convert import linear_to_conv  # noqa: F401
from minicnn.models.googlenet import GoogLeNetOutputs, googlenet_loss, load_torchvision_state_dict  # noqa: F401
from minicnn.models.googlenet import *  # noqa: F403
from minicnn.models.mobilenet_v1 import *  # noqa: F403
from minicnn.models.mobilenet_v2 import *  # noqa: F403
from minicnn.models.mobilenet_v3 import *  # noqa: F403
from minicnn.models.resnet import *  # noqa: F403
from minicnn.models.resnet_cifar import *  # noqa: F403
from minicnn.models.vgg import *  # noqa: F403
from minicnn.models.weights import load_npz_state_dict, read_npz, save_npz_state_dict  # noqa: F401

_REGISTRY = {}
for _family in (_alexnet, _vgg, _googlenet, _resnet, _resnet_cifar, _mobilenet_v1, _mobilenet_v2, _mobilenet_v3):
    _REGISTRY.update(_family.MODELS)

# The builders that take ``width_mult`` (width.py) and ``in_channels`` (grey images), so a caller such as
# ``minicnn train`` knows which options a model has without guessing from its name.
WIDTH_MULT_MODELS = frozenset(name for family in (_vgg, _resnet_cifar, _mobilenet_v1, _mobilenet_v2, _mobilenet_v3)
                              for name in family.MODELS)
IN_CHANNELS_MODELS = frozenset(name for family in (_vgg, _resnet, _resnet_cifar) for name in family.MODELS)


def list_models():
    """Names accepted by ``get_model``, sorted."""
    return sorted(_REGISTRY)


def get_model(name, **kwargs):
    """Build a model by name; keyword arguments (``num_classes``, ``width_mult``, ...) go to its builder."""
    if not isinstance(name, str):
        raise TypeError(f"get_model: name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"get_model: unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
