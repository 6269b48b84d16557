"""The zoo as a whole: the registry, num_classes everywhere, and summary totals against torchvision's."""
import numpy as np
import pytest
from reference_facts import load_reference

import minicnn
from minicnn import models

# reference.json's names; "googlenet_noaux" is googlenet(aux_logits=False).
REFERENCE_BUILDS = {name: (name, {}) for name in [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]}
REFERENCE_BUILDS["googlenet_noaux"] = ("googlenet", {"aux_logits": False})


def test_every_reference_model_is_in_the_registry():
    names = set(models.list_models())
    assert {builder for builder, _ in REFERENCE_BUILDS.values()} <= names
    assert {"alexnet_paper", "googlenet_paper", "mobilenet_v1", "cifar_resnet20", "cifar_plain56"} <= names
    assert models.list_models() == sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE_BUILDS))
def test_summary_totals_at_224_equal_torchvision(name):
    """Parameters, buffers and MACs at 1×3×224×224 (eval mode) equal reference.json, for all 20 entries."""
    expected = load_reference()[name]
    builder, kwargs = REFERENCE_BUILDS[name]
    model = models.get_model(builder, **kwargs)
    table = minicnn.summary(model, (3, 224, 224))
    assert table.totals.params == expected["params"]
    assert table.totals.trainable_params == expected["trainable"]
    assert table.totals.buffers == expected["buffers"]["count"]
    assert table.totals.buffer_elements == expected["buffers"]["elements"]
    assert table.totals.macs == expected["macs_224"]
    assert [key for key, _ in expected["state_dict"]] == list(model.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in models.list_models() if not n.startswith(("vgg", "cifar_resnet1202"))])
def test_every_builder_takes_num_classes(name):
    minicnn.manual_seed(0)
    model = models.get_model(name, num_classes=7)
    model.eval()
    size = 227 if name == "alexnet_paper" else 224 if name == "googlenet_paper" else 64
    with minicnn.no_grad():
        out = model(minicnn.randn(1, 3, size, size))
    assert out.shape == (1, 7) and out.dtype == np.float32


@pytest.mark.parametrize("name", ["vgg11", "vgg16_c", "vgg11_lrn"])
def test_vgg_builders_take_num_classes(name):
    model = models.get_model(name, num_classes=7, width_mult=0.125)
    model.eval()
    with minicnn.no_grad():
        assert model(minicnn.randn(1, 3, 32, 32)).shape == (1, 7)


def test_get_model_rejects_unknown_names_and_non_strings():
    with pytest.raises(ValueError, match=r"get_model: unknown model 'resnet19'; choose one of alexnet, "):
        models.get_model("resnet19")
    with pytest.raises(TypeError, match="get_model: name must be a str, got int"):
        models.get_model(18)


def test_zoo_model_npz_round_trip_gives_the_same_outputs(tmp_path):
    minicnn.manual_seed(1)
    model = models.get_model("mobilenet_v3_small", num_classes=5).eval()
    path = tmp_path / "weights.npz"
    models.save_npz_state_dict(model, path)
    minicnn.manual_seed(2)
    fresh = models.get_model("mobilenet_v3_small", num_classes=5).eval()
    x = minicnn.randn(2, 3, 64, 64)
    with minicnn.no_grad():
        before = fresh(x).data.copy()
        models.load_npz_state_dict(fresh, path)
        np.testing.assert_array_equal(fresh(x).data, model(x).data)
    assert not np.array_equal(before, fresh(x).data)
