"""summary's figures against the papers' own tables (VGG Table 2, ResNet §4.2, MobileNet Tables 6-7),
and a training step for the one family whose tests had none (AlexNet)."""
import numpy as np
import pytest

import minicnn
from minicnn import models


@pytest.mark.parametrize("builder, millions", [
    ("vgg11", 133), ("vgg11_lrn", 133), ("vgg13", 133), ("vgg16_c", 134), ("vgg16", 138), ("vgg19", 144),
])
def test_vgg_parameters_match_table_2(builder, millions):
    """Simonyan & Zisserman, Table 2: A, A-LRN, B, C, D, E have 133, 133, 133, 134, 138, 144 million."""
    table = minicnn.summary(models.get_model(builder), (3, 224, 224))
    assert round(table.totals.params / 1e6) == millions


@pytest.mark.parametrize("depth, millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)])
def test_cifar_resnet_parameters_match_section_4_2(depth, millions):
    """He et al., Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters."""
    table = minicnn.summary(models.get_model(f"cifar_resnet{depth}"), (3, 32, 32))
    digits = 1 if millions >= 1 else 2
    assert round(table.totals.params / 1e6, digits) == millions
    # Three stages of feature maps, 32×32 → 16×16 → 8×8, each with 6n+2 weighted layers in total.
    conv_rows = [row for row in table.rows if row.type == "Conv2d"]
    assert {tuple(row.output_shape[2:]) for row in conv_rows} == {(32, 32), (16, 16), (8, 8)}


@pytest.mark.parametrize("width_mult, million_macs, million_params", [
    (1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.47),
])
def test_mobilenet_v1_width_multiplier_matches_table_6(width_mult, million_macs, million_params):
    table = minicnn.summary(models.get_model("mobilenet_v1", width_mult=width_mult), (3, 224, 224))
    assert round(table.totals.macs / 1e6) == million_macs
    assert round(table.totals.params / 1e6, 1 if million_params >= 1 else 2) == million_params


@pytest.mark.parametrize("resolution, million_macs", [(224, 569), (192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_multiplier_matches_table_7(resolution, million_macs):
    """Table 7 rounds inconsistently (290.7M is printed as 290), so allow ±1M."""
    table = minicnn.summary(models.get_model("mobilenet_v1"), (3, resolution, resolution))
    assert abs(table.totals.macs / 1e6 - million_macs) <= 1


def test_alexnet_training_step_lowers_the_loss():
    minicnn.manual_seed(0)
    model = models.alexnet(num_classes=4, dropout=0.0)
    x = minicnn.randn(4, 3, 64, 64)
    target = minicnn.Tensor(np.array([0, 1, 2, 3]))
    optimizer = minicnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(4):
        loss = minicnn.nn.functional.cross_entropy(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < losses[0]
