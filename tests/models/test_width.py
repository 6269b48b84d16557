"""``width_mult``, torchvision's name for the width multiplier, on every model that has one (models/width.py).

VGG and the CIFAR nets once spelt it ``width_multiplier``: that spelling still builds the same model, with
a DeprecationWarning that names the model, and both spellings at once are refused.
"""
import inspect
import warnings

import numpy as np
import pytest
from reference_facts import param_count

import minicnn
from minicnn import models
from minicnn.models.resnet_cifar import MODELS as CIFAR_MODELS
from minicnn.models.resnet_cifar import CifarResNet, cifar_plain, cifar_resnet
from minicnn.models.vgg import MODELS as VGG_MODELS
from minicnn.models.vgg import cfgs, make_layers, vgg

SLOWEST = {"cifar_resnet1202"}  # 1202 layers: the slowest build, the same code as cifar_resnet20
WIDTH_MODELS = sorted(models.WIDTH_MULT_MODELS - SLOWEST)
OLD_SPELLING_MODELS = sorted((set(VGG_MODELS) | set(CIFAR_MODELS)) - SLOWEST)  # the families that said width_multiplier

# The functions behind the named builders, each with the model name its warning and its errors carry.
BUILDERS = {
    "vgg": lambda **options: vgg("A", **options),
    "make_layers": lambda **options: make_layers(cfgs["A"], **options),
    "CifarResNet": lambda **options: CifarResNet(20, **options),
    "cifar_resnet20": lambda **options: cifar_resnet(20, **options),
    "cifar_plain44": lambda **options: cifar_plain(44, **options),
    "vgg16_c": lambda **options: models.get_model("vgg16_c", **options),
}


def same_state(first, second):
    return list(first.state_dict()) == list(second.state_dict()) and all(
        np.array_equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


@pytest.mark.parametrize("name", WIDTH_MODELS)
def test_every_model_with_a_width_takes_width_mult(name):
    thin = models.get_model(name, num_classes=3, width_mult=0.25)
    thinner = models.get_model(name, num_classes=3, width_mult=0.125)
    assert param_count(thinner) < param_count(thin)


@pytest.mark.parametrize("name", sorted(set(models.list_models()) - models.WIDTH_MULT_MODELS))
def test_every_other_model_refuses_width_mult(name):
    with pytest.raises(TypeError, match="width_mult"):
        models.get_model(name, width_mult=0.5)


@pytest.mark.parametrize("build", [vgg, make_layers, CifarResNet.__init__])
def test_signatures_show_width_mult_not_the_old_name(build):
    parameters = inspect.signature(build).parameters
    assert parameters["width_mult"].default == 1.0 and "width_multiplier" not in parameters


@pytest.mark.parametrize("name", OLD_SPELLING_MODELS)
def test_the_old_keyword_warns_naming_the_model_and_builds_the_same_model(name):
    minicnn.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=rf"^{name}: width_multiplier is deprecated; use width_mult "):
        old = models.get_model(name, num_classes=3, width_multiplier=0.25)
    minicnn.manual_seed(0)
    new = models.get_model(name, num_classes=3, width_mult=0.25)
    assert same_state(old, new)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_functions_behind_the_builders_take_the_old_keyword_too(name):
    minicnn.manual_seed(1)
    with pytest.warns(DeprecationWarning, match=rf"^{name}: width_multiplier is deprecated; use width_mult "):
        old = BUILDERS[name](width_multiplier=0.125)
    minicnn.manual_seed(1)
    assert same_state(old, BUILDERS[name](width_mult=0.125))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_both_keywords_at_once_are_refused(name):
    with pytest.raises(TypeError, match=rf"^{name}: got width_mult and width_multiplier \(its deprecated name\); "
                                        r"pass width_mult only$"):
        BUILDERS[name](width_mult=0.5, width_multiplier=0.5)


def test_the_warning_points_at_the_callers_line():
    # Python shows a DeprecationWarning only when it points into __main__: at a line inside minicnn.models
    # (vgg11 calls vgg, which got the keyword) a script would never see it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models.vgg11(num_classes=3, width_multiplier=0.125)
    [warning] = [w for w in caught if w.category is DeprecationWarning]
    assert warning.filename == __file__


def test_a_cifar_nets_width_multiplier_attribute_is_the_old_name_of_width_mult():
    model = cifar_resnet(20, width_mult=0.25)
    with pytest.warns(DeprecationWarning, match="^cifar_resnet20: width_multiplier is deprecated; use width_mult "):
        assert model.width_multiplier == model.width_mult == 0.25
