"""The model zoo: the course's networks built from minicnn's own layers.

Every family's file reads like its paper's table and registers its named
builders in a ``MODELS`` dict; this package gathers them.

>>> from minicnn import models
>>> models.list_models()[:3]
['alexnet', 'alexnet_paper', 'cifar_plain110']
>>> model = models.get_model("vgg11_bn", num_classes=10)
"""
import importlib

_FAMILIES = ["alexnet", "vgg", "googlenet", "resnet", "resnet_cifar",
             "mobilenet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3"]

_REGISTRY = {}
for _family in _FAMILIES:
    try:
        _module = importlib.import_module(f"minicnn.models.{_family}")
    except ModuleNotFoundError as error:
        if error.name != f"minicnn.models.{_family}":
            raise
        continue
    _REGISTRY.update(getattr(_module, "MODELS", {}))
    for _name in getattr(_module, "__all__", []):
        globals()[_name] = getattr(_module, _name)


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
