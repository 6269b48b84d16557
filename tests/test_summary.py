"""minicnn.summary: rows, MACs, receptive fields and totals, checked against numbers computed here
independently (a layer-by-layer forward, the formulas, autograd) and against torchvision's reference."""
import math
import os
import sys

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from minicnn.functions import conv as conv_functions
from minicnn.summary import LayerRow, Summary, receptive_field_comparison, summary
from minicnn.tensor import Function

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "models"))
from reference_facts import load_reference


def small_cnn():
    minicnn.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),          # 0
        nn.BatchNorm2d(8),                      # 1
        nn.ReLU(),                              # 2
        nn.MaxPool2d(2),                        # 3
        nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=False),  # 4
        nn.ReLU(),                              # 5
        nn.AdaptiveAvgPool2d(1),                # 6
        nn.Flatten(),                           # 7
        nn.Linear(16, 10),                      # 8
    )


def conv_macs(layer, output_shape):
    """C_out·H_out·W_out · C_in/groups · k_h · k_w, written out from the layer's settings."""
    _, c_out, h_out, w_out = output_shape
    k_h, k_w = layer.kernel_size
    return c_out * h_out * w_out * (layer.in_channels // layer.groups) * k_h * k_w


def test_rows_follow_a_layer_by_layer_forward():
    model = small_cnn().eval()
    table = summary(model, (3, 20, 20))

    x = minicnn.Tensor(np.random.default_rng(1).standard_normal((1, 3, 20, 20)).astype(np.float32))
    expected = []
    with minicnn.no_grad():
        for index, layer in enumerate(model):
            x = layer(x)
            params = sum(p.numel() for p in layer.parameters())
            if isinstance(layer, nn.Conv2d):
                macs = conv_macs(layer, x.shape)
            elif isinstance(layer, nn.Linear):
                macs = layer.in_features * layer.out_features
            else:
                macs = 0
            expected.append((str(index), type(layer).__name__, x.shape, params, macs))

    assert [(r.name, r.type, r.output_shape, r.params, r.macs) for r in table.rows] == expected
    # hand-checked: conv0 8·20·20·3·9; the grouped conv 16·5·5·(8/2)·9; the classifier 16·10
    assert table["0"].macs == 8 * 20 * 20 * 27
    assert table["4"].macs == 16 * 5 * 5 * 4 * 9
    assert table["4"].params == 16 * 4 * 9
    assert table["8"].macs == 160
    assert table["1"].params == 16 and table["8"].params == 170


def test_totals_add_up_and_split_trainable_from_frozen():
    model = small_cnn()
    model[0].requires_grad_(False)  # freeze the first conv: 3·8·9 + 8 parameters
    table = summary(model, (3, 20, 20))
    totals = table.totals
    assert totals.params == sum(p.numel() for p in model.parameters()) == 224 + 16 + 576 + 170
    assert totals.non_trainable_params == 224
    assert totals.trainable_params == totals.params - 224
    assert totals.macs == sum(row.macs for row in table.rows)
    assert totals.buffers == 3 and totals.buffer_elements == 8 + 8 + 1
    assert totals.param_bytes == 4 * totals.params
    # activation memory: every row's output in float32 (the Flatten's output as well)
    assert totals.activation_bytes == 4 * sum(math.prod(row.output_shape) for row in table.rows)


def test_batch_size_scales_memory_not_macs():
    one, four = summary(small_cnn(), (3, 16, 16)), summary(small_cnn(), (3, 16, 16), batch_size=4)
    assert four.totals.macs == one.totals.macs
    assert four.totals.activation_bytes == 4 * one.totals.activation_bytes
    assert four.rows[0].output_shape == (4, 8, 16, 16)
    double = summary(small_cnn().double(), (3, 16, 16), dtype=np.float64)
    assert double.totals.activation_bytes == 2 * one.totals.activation_bytes


def test_receptive_field_and_jump_of_the_known_stack():
    # conv3 s1 → conv3 s1 → pool2 s2 → conv3: 3, 5, 6, then 6 + 2·2 = 10 with jump 2
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1),
                          nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
    table = summary(model, (1, 16, 16))
    assert [row.receptive_field for row in table.rows] == [(3, 3), (3, 3), (5, 5), (6, 6), (10, 10)]
    assert [row.jump for row in table.rows] == [(1, 1), (1, 1), (1, 1), (2, 2), (2, 2)]


def test_receptive_field_counts_dilation_and_rectangular_kernels():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2, padding=2), nn.Conv2d(1, 1, (1, 5), stride=(1, 2)),
                          nn.Conv2d(1, 1, 3))
    table = summary(model, (1, 20, 20))
    assert table.rows[0].receptive_field == (5, 5)
    assert table.rows[1].receptive_field == (5, 9) and table.rows[1].jump == (1, 2)
    assert table.rows[2].receptive_field == (7, 13)
    assert "7x13" in str(table)


def test_receptive_field_equals_the_input_region_autograd_reaches():
    """The formula against the definition: which input pixels change one output value."""
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, dilation=2, padding=2),
                          nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(3, stride=2),
                          nn.Conv2d(1, 1, 3, padding=1))
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            nn.init.constant_(layer.weight, 1.0)  # all-positive: no cancellation hides a pixel
    x = minicnn.ones(1, 1, 96, 96, requires_grad=True)
    out = model(x)
    centre = out.shape[-1] // 2
    out[0, 0, centre, centre].backward()
    rows, cols = np.nonzero(x.grad.numpy()[0, 0])
    assert rows.min() > 0 and rows.max() < 95  # inside the image: no padding trims what it sees
    seen = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    table = summary(model, (1, 96, 96))
    assert table.rows[-1].receptive_field == seen
    assert seen == (3 + 4 + 1 + 2 * 2 + 2 * 2 + 4 * 2,) * 2  # 24, by the rule written out


def test_branches_follow_the_conv_path_and_functional_calls_are_counted():
    class Block(nn.Module):
        """A residual block written with F.relu, an SE-style gate, and its classifier called functionally."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.fc = nn.Linear(4 * 4 * 4, 3)

        def forward(self, x):
            y = self.conv2(F.relu(self.conv1(x)))
            y = F.relu(y + x)                                   # shortcut: RF 1, conv path: RF 5
            y = y * F.sigmoid(y.mean(axis=(2, 3), keepdims=True))  # gate (N, C, 1, 1) only rescales
            y = F.max_pool2d(y, 2)                              # a functional window still counts
            return F.linear(y.flatten(1), self.fc.weight, self.fc.bias)

    table = summary(Block(), (4, 8, 8))
    assert [row.name for row in table.rows] == ["conv1", "conv2", "fc"]
    fc = table["fc"]
    assert fc.type == "linear (functional)" and fc.macs == 64 * 3 and fc.params == 64 * 3 + 3
    assert table.totals.macs == 2 * (4 * 8 * 8 * 4 * 9) + 64 * 3
    # after conv2: 5; the pool: 6 (jump 2); the Linear sees the whole 4x4 map: 6 + 3·2 = 12
    assert table["conv2"].receptive_field == (5, 5)
    assert fc.receptive_field == (12, 12) and fc.jump == (8, 8)


def test_a_layer_run_through_forward_directly_still_gets_its_row():
    class Direct(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.head = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.head(F.relu(self.stem.forward(x)))  # .forward skips __call__, so no hook fires

    table = summary(Direct(), (3, 8, 8))
    assert [(row.name, row.type) for row in table.rows] == [("stem", "conv2d (functional)"), ("head", "Conv2d")]
    assert table["stem"].params == 4 * 3 * 9 + 4 and table["stem"].macs == 4 * 4 * 4 * 3 * 9
    assert table["head"].receptive_field == (3, 3) and table["head"].jump == (2, 2)
    assert sum(row.params for row in table.rows) == table.totals.params


def test_module_called_twice_shows_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    table = summary(Twice(), (2, 6, 6))
    assert [row.receptive_field[0] for row in table.rows] == [3, 5]
    assert [row.params for row in table.rows] == [2 * 2 * 9 + 2, 0]
    assert table.rows[1].type == "Conv2d (again)"
    assert table.totals.macs == 2 * (2 * 6 * 6 * 2 * 9)


def test_summary_leaves_the_model_as_it_was():
    model = small_cnn()
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    running_mean = model[1].running_mean.numpy().copy()
    rng_state = minicnn.get_rng_state()
    summary(model, (3, 16, 16))
    after_summary = minicnn.randn(5).numpy()
    minicnn.set_rng_state(rng_state)
    np.testing.assert_array_equal(after_summary, minicnn.randn(5).numpy())  # random stream untouched
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True, True, True, True, True]
    np.testing.assert_array_equal(model[1].running_mean.numpy(), running_mean)
    assert int(model[1].num_batches_tracked.item()) == 0
    assert all(not m._forward_hooks for m in model.modules())


def test_forward_hooks_see_every_call_until_removed():
    layer = nn.Linear(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    x = minicnn.randn(4, 3)
    y = layer(x)
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is y
    handle.remove()
    handle.remove()  # twice is harmless
    layer(x)
    assert len(seen) == 1
    with layer.register_forward_hook(lambda module, inputs, output: output * 0):  # a returned value replaces
        assert np.all(layer(x).numpy() == 0)
    assert np.any(layer(x).numpy() != 0)
    with pytest.raises(TypeError, match="callable"):
        layer.register_forward_hook("print")


def test_a_failing_forward_still_removes_hooks_and_the_tape():
    model = nn.Sequential(nn.Conv2d(3, 4, 5), nn.MaxPool2d(2))
    original_call = Function.__call__
    with pytest.raises(ValueError, match="kernel 5x5"):
        summary(model, (3, 3, 3))
    assert Function.__call__ is original_call
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


def test_table_prints_aligned_columns_and_totals():
    text = str(summary(small_cnn(), (3, 20, 20)))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Layer"))
    body = lines[lines.index(header) + 2: lines.index(header) + 2 + 9]
    assert all(len(line) == len(header) for line in body)  # right-aligned last column: equal widths
    for column in ("Params", "MACs", "RF"):
        end = header.index(column) + len(column)
        assert all(line[end - 1] != " " for line in body)  # numbers end under their heading
    assert "Parameters:       986 (986 trainable, 0 frozen)" in text
    assert "MACs per image:" in text and "Activations:" in text


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(TypeError, match="minicnn.nn.Module"):
        summary("vgg16", (3, 224, 224))
    with pytest.raises(TypeError, match=r"input_size must be a tuple of ints"):
        summary(small_cnn(), "3x224x224")
    with pytest.raises(ValueError, match="positive"):
        summary(small_cnn(), (3, 0, 224))
    with pytest.raises(ValueError, match="batch_size"):
        summary(small_cnn(), (3, 16, 16), batch_size=0)
    with pytest.raises(TypeError, match="floating-point"):
        summary(small_cnn(), (3, 16, 16), dtype=np.int32)
    with pytest.raises(KeyError, match="no layer named"):
        summary(small_cnn(), (3, 16, 16))["classifier"]


def test_stacked_3x3_convs_see_as_far_as_one_big_conv_with_fewer_parameters():
    channels = 16
    comparison = receptive_field_comparison(channels)
    by_depth = {row.depth: row for row in comparison.rows}
    c2 = channels * channels
    assert (by_depth[2].receptive_field, by_depth[2].single_kernel) == (5, 5)
    assert (by_depth[3].receptive_field, by_depth[3].single_kernel) == (7, 7)
    assert by_depth[2].stacked_params == 2 * 9 * c2 and by_depth[2].single_params == 25 * c2
    assert by_depth[3].stacked_params == 3 * 9 * c2 and by_depth[3].single_params == 49 * c2
    assert by_depth[3].non_linearities == 3
    text = str(comparison)
    assert "sees 7x7" in text and f"{27 * c2:,} params" in text and f"{49 * c2:,}" in text


def test_stack_comparison_is_measured_not_written_down(monkeypatch):
    # If Conv2d had an extra weight per output channel, the comparison must notice.
    calls = []
    original = conv_functions.Conv2d.forward
    monkeypatch.setattr(conv_functions.Conv2d, "forward", lambda self, *a: calls.append(1) or original(self, *a))
    receptive_field_comparison(4, depths=(2,))
    assert len(calls) == 2 + 1  # the two stacked convs and the single 5x5 really ran


def test_rows_are_dataclasses_a_user_can_read():
    row = summary(small_cnn(), (3, 8, 8)).rows[0]
    assert isinstance(row, LayerRow)
    assert row.name == "0" and row.output_shape == (1, 8, 8, 8) and row.receptive_field == (3, 3)
    assert isinstance(summary(small_cnn(), (3, 8, 8)), Summary)


# --- the zoo against torchvision's numbers (only for the builders that exist) --------------------
REFERENCE_MODELS = ["alexnet", "resnet18", "mobilenet_v2", "mobilenet_v3_small", "googlenet"]


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_totals_at_224_equal_torchvision(name):
    models = pytest.importorskip("minicnn.models")
    builder = getattr(models, name, None)
    if builder is None:
        pytest.skip(f"minicnn.models.{name} is not written yet")
    reference = load_reference()[name]
    table = summary(builder(), (3, 224, 224))
    assert table.totals.params == reference["params"]
    assert table.totals.trainable_params == reference["trainable"]
    assert table.totals.buffers == reference["buffers"]["count"]
    assert table.totals.macs == reference["macs_224"]
    assert table.rows[-1].output_shape == tuple(reference["output_shape"])


def test_vgg16_receptive_fields_are_the_textbook_ones():
    vgg = pytest.importorskip("minicnn.models.vgg")
    if not hasattr(vgg, "make_layers") or "D" not in getattr(vgg, "cfgs", {}):
        pytest.skip("minicnn.models.vgg has no make_layers(cfgs['D'])")
    # Receptive fields depend on neither the input size nor the width: VGG16's features at 1/8 width.
    table = summary(vgg.make_layers(vgg.cfgs["D"], width_mult=0.125), (3, 32, 32))
    convs = [row for row in table.rows if row.type == "Conv2d"]
    # conv1_1 3, conv1_2 5, pool1 → conv2_1 10 ... conv5_3 196 (the figure usually quoted)
    assert [row.receptive_field[0] for row in convs[:3]] == [3, 5, 10]
    assert convs[-1].receptive_field == (196, 196) and convs[-1].jump == (16, 16)
