"""AlexNet: torchvision's variant against torchvision's facts, the 2012 paper's variant against the paper."""
import numpy as np
import pytest
from reference_facts import load_reference, param_count, state_dict_spec

import minicnn
from minicnn import nn
from minicnn.models.alexnet import MODELS, AlexNet, alexnet, alexnet_paper, feature_map_size


@pytest.fixture(scope="module")
def torchvision_alexnet():
    minicnn.manual_seed(0)
    return alexnet()


@pytest.fixture(scope="module")
def paper_alexnet():
    minicnn.manual_seed(0)
    return alexnet_paper()


def _conv_params(in_channels, out_channels, kernel_size, groups=1):
    # Each filter sees in/groups channels through a k x k window, plus one bias.
    return out_channels * (in_channels // groups * kernel_size * kernel_size + 1)


def _linear_params(in_features, out_features):
    return out_features * (in_features + 1)


# --- torchvision's AlexNet ---------------------------------------------------------------------------

def test_alexnet_state_dict_keys_order_and_shapes_match_torchvision(torchvision_alexnet):
    ours = [(key, tuple(array.shape)) for key, array in torchvision_alexnet.state_dict().items()]
    assert ours == state_dict_spec("alexnet")


def test_alexnet_parameter_count_matches_torchvision_and_is_float32(torchvision_alexnet):
    reference = load_reference()["alexnet"]
    assert param_count(torchvision_alexnet) == reference["params"] == 61_100_840
    assert all(p.dtype == np.float32 for p in torchvision_alexnet.parameters())
    assert list(torchvision_alexnet.buffers()) == []


def test_alexnet_classifier_drops_out_before_the_first_two_linear_layers(torchvision_alexnet):
    kinds = [type(layer) for layer in torchvision_alexnet.classifier]
    assert kinds == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Linear]
    assert isinstance(torchvision_alexnet.avgpool, nn.AdaptiveAvgPool2d)


def test_alexnet_forward_at_224_gives_one_row_of_logits(torchvision_alexnet):
    torchvision_alexnet.eval()
    logits = torchvision_alexnet(minicnn.randn(1, 3, 224, 224))
    assert logits.shape == tuple(load_reference()["alexnet"]["output_shape"])
    assert np.all(np.isfinite(logits.numpy()))


def test_alexnet_feature_map_size_follows_the_conv_arithmetic(torchvision_alexnet):
    features = torchvision_alexnet.features
    assert feature_map_size(features, (224, 224)) == (6, 6)
    # The arithmetic agrees with what the layers actually produce, here on a non-square input.
    assert features(minicnn.randn(1, 3, 63, 95)).shape[2:] == feature_map_size(features, (63, 95)) == (1, 2)


def test_alexnet_smallest_input_is_63x63(torchvision_alexnet):
    torchvision_alexnet.eval()
    assert torchvision_alexnet(minicnn.randn(1, 3, 63, 63)).shape == (1, 1000)
    with pytest.raises(ValueError, match="alexnet: input 62x62 is too small, the minimum is 63x63"):
        torchvision_alexnet(minicnn.randn(1, 3, 62, 62))


def test_alexnet_at_32x32_says_the_minimum_size(torchvision_alexnet):
    # torchvision fails here too, with a RuntimeError from deep inside the last max-pool.
    assert load_reference()["alexnet"]["output_shape_32"].startswith("error")
    with pytest.raises(ValueError, match=r"alexnet: input 32x32 is too small, the minimum is 63x63"):
        torchvision_alexnet(minicnn.randn(1, 3, 32, 32))


def test_alexnet_rejects_a_wrong_channel_count_or_a_non_tensor(torchvision_alexnet):
    with pytest.raises(ValueError, match=r"alexnet: expected input of shape \(N, 3, H, W\), got \(1, 1, 224, 224\)"):
        torchvision_alexnet(minicnn.randn(1, 1, 224, 224))
    with pytest.raises(ValueError, match=r"alexnet: .*got \(3, 224, 224\)"):
        torchvision_alexnet(minicnn.randn(3, 224, 224))
    with pytest.raises(TypeError, match="alexnet: input must be a Tensor, got ndarray"):
        torchvision_alexnet(np.zeros((1, 3, 224, 224), dtype=np.float32))


def test_alexnet_dropout_is_active_in_training_only(torchvision_alexnet):
    x = minicnn.randn(1, 3, 63, 63)
    torchvision_alexnet.train()
    assert not np.array_equal(torchvision_alexnet(x).numpy(), torchvision_alexnet(x).numpy())
    torchvision_alexnet.eval()
    np.testing.assert_array_equal(torchvision_alexnet(x).numpy(), torchvision_alexnet(x).numpy())


# --- the 2012 paper's AlexNet ---------------------------------------------------------------------------

def test_alexnet_paper_parameter_count_is_the_sum_of_its_layers(paper_alexnet):
    expected = (_conv_params(3, 96, 11) + _conv_params(96, 256, 5, groups=2) + _conv_params(256, 384, 3)
                + _conv_params(384, 384, 3, groups=2) + _conv_params(384, 256, 3, groups=2)
                + _linear_params(256 * 6 * 6, 4096) + _linear_params(4096, 4096) + _linear_params(4096, 1000))
    assert param_count(paper_alexnet) == expected == 60_965_224
    assert round(expected / 1e6) == 61  # the paper: "60 million parameters"


def test_alexnet_paper_convs_have_the_papers_channels_and_two_gpu_groups(paper_alexnet):
    convs = [layer for layer in paper_alexnet.features if isinstance(layer, nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [96, 256, 384, 384, 256]
    assert [conv.groups for conv in convs] == [1, 2, 1, 2, 2]
    assert [tuple(conv.weight.shape) for conv in convs] == [
        (96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3)]
    assert convs[0].stride == (4, 4) and convs[0].padding == (0, 0)


def test_alexnet_paper_normalises_after_relu_and_before_pool_in_the_first_two_layers(paper_alexnet):
    kinds = [type(layer) for layer in paper_alexnet.features]
    conv, relu, lrn, pool = nn.Conv2d, nn.ReLU, nn.LocalResponseNorm, nn.MaxPool2d
    assert kinds == [conv, relu, lrn, pool, conv, relu, lrn, pool, conv, relu, conv, relu, conv, relu, pool]
    for layer in paper_alexnet.features:
        if isinstance(layer, nn.LocalResponseNorm):
            assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 1e-4, 0.75, 2.0)


def test_alexnet_paper_grouped_conv_keeps_the_two_gpus_apart(paper_alexnet):
    conv2 = paper_alexnet.features[4]
    x = np.random.default_rng(0).standard_normal((1, 96, 13, 13)).astype(np.float32)
    changed = x.copy()
    changed[:, 48:] += 1.0  # only the maps that live on the second GPU
    before, after = conv2(minicnn.tensor(x)).numpy(), conv2(minicnn.tensor(changed)).numpy()
    np.testing.assert_array_equal(before[:, :128], after[:, :128])  # the first GPU's filters never see them
    assert not np.allclose(before[:, 128:], after[:, 128:])


def test_alexnet_paper_takes_227x227_and_explains_why_224_fails(paper_alexnet):
    paper_alexnet.eval()
    assert feature_map_size(paper_alexnet.features[:4], (227, 227)) == (27, 27)  # 11x11 stride 4 → 55 → pool 27
    logits = paper_alexnet(minicnn.randn(1, 3, 227, 227))
    assert logits.shape == (1, 1000) and np.all(np.isfinite(logits.numpy()))
    with pytest.raises(ValueError, match=r"alexnet_paper: input 224x224 gives 5x5 feature maps.*227x227"):
        paper_alexnet(minicnn.randn(1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"alexnet_paper: expected input of shape \(N, 3, H, W\)"):
        paper_alexnet(minicnn.randn(1, 4, 227, 227))


def test_alexnet_paper_drops_out_the_outputs_of_fc6_and_fc7(paper_alexnet):
    kinds = [type(layer) for layer in paper_alexnet.classifier]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert "avgpool" not in dict(paper_alexnet.named_children())


# --- registry ---------------------------------------------------------------------------------------------

def test_alexnet_builders_are_registered_and_take_num_classes():
    assert MODELS == {"alexnet": alexnet, "alexnet_paper": alexnet_paper}
    model = alexnet(num_classes=7).eval()
    assert isinstance(model, AlexNet)
    assert model.classifier[6].weight.shape == (7, 4096)
    assert model(minicnn.randn(2, 3, 63, 63)).shape == (2, 7)
