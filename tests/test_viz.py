"""minicnn.viz: every picture is a Figure whose artists hold exactly the data given (bar widths are the
ratios, the heatmap is the matrix, filter images are the weights stretched to [0, 1], feature-map images
are the layers' outputs), saves a real PNG, needs no display, and leaves the model as it found it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import minicnn
from minicnn import nn, viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_png(path):
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC


def stretched(array):
    """The [0, 1] stretch computed here independently: (x - min) / (max - min)."""
    array = np.asarray(array, dtype=np.float64)
    return (array - array.min()) / (array.max() - array.min())


def small_sequential():
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


class SharedReluNet(nn.Module):
    """Not a Sequential: conv → bn → relu → conv → relu (the same ReLU again) → pool → fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(3, 5, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(5 * 3 * 3, 2)

    def forward(self, x):
        x = self.relu(self.conv2(self.relu(self.bn(self.conv1(x)))))
        return self.fc(minicnn.flatten(self.pool(x), 1))


class ExplodingNet(SharedReluNet):
    def forward(self, x):
        self.conv1(x)
        raise RuntimeError("boom in forward")


# --- headless ----------------------------------------------------------------------------------------
def test_pictures_need_no_display_and_never_load_pyplot(tmp_path):
    # A GUI backend that cannot start here and no DISPLAY: pyplot would fail; the object API does not care.
    script = (
        "import sys, numpy as np\n"
        "from minicnn import viz\n"
        f"viz.confusion_matrix(np.eye(3, dtype=np.int64), save={str(tmp_path / 'c.png')!r})\n"
        "viz.training_curves({'train_loss': [1.0, 0.5]})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert_png(tmp_path / "c.png")


# --- training_curves -----------------------------------------------------------------------------
HISTORY = {"train_loss": [2.0, 1.1, 0.6], "train_accuracy": [0.4, 0.7, 0.9],
           "val_loss": [2.1, 1.3, 0.9], "val_accuracy": [0.35, 0.6, 0.8], "lr": [0.1, 0.1, 0.01]}


def test_training_curves_plot_train_and_val_of_loss_and_accuracy(tmp_path):
    path = tmp_path / "nested" / "runs" / "curves.png"
    figure = viz.training_curves(HISTORY, title="my run", save=path)
    assert isinstance(figure, Figure)
    loss_axes, accuracy_axes = figure.axes
    for axes, (train_key, val_key) in ((loss_axes, ("train_loss", "val_loss")),
                                       (accuracy_axes, ("train_accuracy", "val_accuracy"))):
        train_line, val_line = axes.lines
        assert (train_line.get_label(), val_line.get_label()) == ("train", "val")
        np.testing.assert_array_equal(train_line.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(train_line.get_ydata(), HISTORY[train_key])
        np.testing.assert_array_equal(val_line.get_ydata(), HISTORY[val_key])
    assert figure._suptitle.get_text() == "my run"
    assert_png(path)


class FakeHistory:
    """Stands in for minicnn.train.History: only to_dict() is used."""

    def to_dict(self):
        return {"train_loss": [1.0, 0.8], "train_accuracy": [0.5, 0.6], "val_loss": [], "val_accuracy": []}


def test_training_curves_take_objects_with_to_dict_and_leave_out_missing_validation():
    figure = viz.training_curves(FakeHistory())
    assert [len(axes.lines) for axes in figure.axes] == [1, 1]
    np.testing.assert_array_equal(figure.axes[1].lines[0].get_ydata(), [0.5, 0.6])
    only_loss = viz.training_curves({"train_loss": [3.0]})  # one epoch, no accuracy at all
    assert [len(axes.lines) for axes in only_loss.axes] == [1, 0]
    assert "no accuracy recorded" in only_loss.axes[1].texts[0].get_text()


def test_training_curves_draw_epochs_without_validation_as_gaps():
    figure = viz.training_curves({"train_loss": [1.0, 0.9, 0.8], "val_loss": [None, 0.95, None]})
    val_line = figure.axes[0].lines[1]
    np.testing.assert_array_equal(val_line.get_ydata(), [np.nan, 0.95, np.nan])


def test_training_curves_reject_bad_histories():
    with pytest.raises(TypeError, match=r"training_curves: history must be .* got list"):
        viz.training_curves([1.0, 0.5])
    with pytest.raises(ValueError, match=r"training_curves: history needs 'train_loss'.*keys \['val_loss'\]"):
        viz.training_curves({"val_loss": [1.0]})
    with pytest.raises(ValueError, match=r"training_curves: history needs 'train_loss' with at least one"):
        viz.training_curves({"train_loss": []})
    with pytest.raises(ValueError, match=r"training_curves: history\['val_loss'\] must be a list of numbers"):
        viz.training_curves({"train_loss": [1.0], "val_loss": ["high"]})


# --- filters -----------------------------------------------------------------------------------------------
def test_filters_draw_each_first_layer_filter_in_colour_stretched_to_unit_range(tmp_path):
    model = minicnn.models.get_model("vgg11_bn", num_classes=10, width_mult=0.25)
    weight = model.features[0].weight.numpy()
    assert weight.shape == (16, 3, 3, 3)
    figure = viz.filters(model, save=tmp_path / "filters.png")
    assert len(figure.axes) == 16
    for axes, expected in zip(figure.axes, weight):
        (image,) = axes.images
        picture = np.asarray(image.get_array())
        np.testing.assert_allclose(picture, stretched(expected.transpose(1, 2, 0)), atol=1e-6)
        assert picture.min() == 0.0 and picture.max() == pytest.approx(1.0)
    assert_png(tmp_path / "filters.png")


def test_filters_take_a_weight_array_or_tensor_in_grey_and_stop_at_max_filters():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(10, 1, 5, 5)).astype(np.float32)
    weight[3] = 2.5  # a constant filter has no contrast to stretch: mid-grey
    for given in (weight, minicnn.tensor(weight)):
        figure = viz.filters(given, max_filters=6)
        assert len(figure.axes) == 6
        pictures = [np.asarray(axes.images[0].get_array()) for axes in figure.axes]
        assert all(picture.shape == (5, 5) for picture in pictures)
        assert figure.axes[0].images[0].get_cmap().name == "gray"
        np.testing.assert_allclose(pictures[1], stretched(weight[1, 0]), atol=1e-6)
        np.testing.assert_array_equal(pictures[3], np.full((5, 5), 0.5))
    assert "first 6 of 10" in figure._suptitle.get_text()


def test_filters_find_the_first_conv_anywhere_in_the_model():
    model = SharedReluNet()
    figure = viz.filters(model)
    assert len(figure.axes) == 3  # conv1's 3 filters, not conv2's 5
    expected = stretched(model.conv1.weight.numpy()[2, 0])
    np.testing.assert_allclose(figure.axes[2].images[0].get_array(), expected, atol=1e-6)


def test_filters_reject_models_without_conv_and_bad_weights():
    with pytest.raises(ValueError, match=r"filters: Sequential has no Conv2d layer"):
        viz.filters(nn.Sequential(nn.Linear(4, 2), nn.ReLU()))
    with pytest.raises(ValueError, match=r"filters: expected a Module or a conv weight .* shape \(3, 3\)"):
        viz.filters(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"filters: max_filters must be a positive int, got 0"):
        viz.filters(np.ones((2, 1, 3, 3)), max_filters=0)
    with pytest.raises(TypeError, match=r"filters: model_or_weight must hold numbers"):
        viz.filters("conv1")


# --- feature_maps ---------------------------------------------------------------------------------------
def test_feature_maps_of_a_sequential_show_each_child_that_gives_maps(tmp_path):
    model = small_sequential()
    image = np.random.default_rng(1).normal(size=(3, 8, 8)).astype(np.float32)
    # The stages computed here, child by child: conv, relu, pool; Flatten and Linear give no maps.
    x, expected = minicnn.tensor(image[None]), []
    with minicnn.no_grad():
        for layer in list(model)[:3]:
            x = layer(x)
            expected.append(x.numpy()[0])
    figure = viz.feature_maps(model, image, max_channels=3, save=tmp_path / "maps.png")
    assert len(figure.axes) == 3
    for axes, maps, kind in zip(figure.axes, expected, ("Conv2d", "ReLU", "MaxPool2d")):
        assert kind in axes.get_ylabel()
        assert len(axes.images) == 3  # max_channels of the 4
        for image_artist, channel in zip(axes.images, maps):
            np.testing.assert_allclose(image_artist.get_array(), stretched(channel), atol=1e-6)
    assert_png(tmp_path / "maps.png")


def test_feature_maps_of_other_models_follow_the_run_order_of_conv_pool_and_relu():
    model = SharedReluNet()
    figure = viz.feature_maps(model, minicnn.randn(1, 1, 6, 6))  # a batch of one is fine
    labels = [axes.get_ylabel().split("\n")[0] for axes in figure.axes]
    assert labels == ["conv1", "relu", "conv2", "relu (call 2)", "pool"]
    assert [len(axes.images) for axes in figure.axes] == [3, 3, 5, 5, 5]
    assert "5×3×3" in figure.axes[-1].get_ylabel()


def test_feature_maps_layer_normalisation_shares_one_scale_per_row():
    model = small_sequential()
    figure = viz.feature_maps(model, np.ones((3, 8, 8), np.float32) * np.arange(8, dtype=np.float32),
                              layers=[model[0]], normalize="layer")
    pictures = np.stack([artist.get_array() for artist in figure.axes[0].images])
    assert pictures.min() == 0.0 and pictures.max() == pytest.approx(1.0)
    per_channel_ranges = pictures.max(axis=(1, 2)) - pictures.min(axis=(1, 2))
    assert not np.allclose(per_channel_ranges, 1.0)  # one scale for all: not every channel spans [0, 1]


def test_feature_maps_restore_modes_and_remove_hooks_and_keep_batchnorm_statistics():
    model = SharedReluNet().train()
    model.conv2.eval()  # a mixed state must come back exactly as it was
    running_mean = model.bn.running_mean.numpy().copy()
    viz.feature_maps(model, np.random.default_rng(2).normal(size=(1, 6, 6)))
    assert [module.training for module in model.modules()] == [True, True, True, True, False, True, True]
    assert all(not module._forward_hooks for module in model.modules())
    np.testing.assert_array_equal(model.bn.running_mean.numpy(), running_mean)  # ran in eval mode


def test_feature_maps_clean_up_even_when_forward_raises():
    model = ExplodingNet().train()
    with pytest.raises(RuntimeError, match="boom in forward"):
        viz.feature_maps(model, np.zeros((1, 6, 6), np.float32))
    assert all(module.training for module in model.modules())
    assert all(not module._forward_hooks for module in model.modules())


def test_feature_maps_take_layers_by_name_or_module():
    model = SharedReluNet()
    figure = viz.feature_maps(model, np.ones((1, 6, 6), np.float32), layers=["pool", model.conv1])
    assert [axes.get_ylabel().split("\n")[0] for axes in figure.axes] == ["conv1", "pool"]  # run order


def test_feature_maps_reject_bad_inputs():
    model = SharedReluNet()
    image = np.zeros((1, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"feature_maps: image must be one image .* got shape \(6, 6\)"):
        viz.feature_maps(model, np.zeros((6, 6)))
    with pytest.raises(TypeError, match=r"feature_maps: model must be a minicnn.nn.Module, got function"):
        viz.feature_maps(lambda x: x, image)
    with pytest.raises(ValueError, match=r"feature_maps: SharedReluNet has no layer named 'conv9'"):
        viz.feature_maps(model, image, layers=["conv9"])
    with pytest.raises(ValueError, match=r"feature_maps: Conv2d passed in layers is not part of Shared"):
        viz.feature_maps(model, image, layers=[nn.Conv2d(1, 1, 1)])
    with pytest.raises(ValueError, match=r"feature_maps: layer 'fc' \(Linear\) .* shape \(1, 2\), not"):
        viz.feature_maps(model, image, layers=["fc"])
    with pytest.raises(ValueError, match=r"feature_maps: MLP has no conv, pool or activation layers"):
        viz.feature_maps(type("MLP", (nn.Module,), {"__init__": mlp_init, "forward": mlp_forward})(), image)
    with pytest.raises(ValueError, match=r"feature_maps: max_channels must be a positive int, got -1"):
        viz.feature_maps(model, image, max_channels=-1)


def mlp_init(self):
    nn.Module.__init__(self)
    self.fc = nn.Linear(36, 2)


def mlp_forward(self, x):
    return self.fc(minicnn.flatten(x, 1))


# --- confusion_matrix --------------------------------------------------------------------------------
def test_confusion_matrix_draws_the_matrix_and_annotates_each_count(tmp_path):
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]], dtype=np.int64)
    figure = viz.confusion_matrix(matrix, classes=["cat", "dog", "fox"], save=tmp_path / "c" / "m.png")
    axes = figure.axes[0]
    assert len(figure.axes) == 2  # the heatmap and its colour bar
    np.testing.assert_array_equal(axes.images[0].get_array(), matrix)
    assert [text.get_text() for text in axes.texts] == [str(count) for count in matrix.ravel()]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["cat", "dog", "fox"]
    assert "accuracy 80.0% of 20" in axes.get_title()
    assert_png(tmp_path / "c" / "m.png")


class StrictGpuArray:
    """Behaves like a CuPy array where it matters here: ``.get()`` works, an implicit np.asarray does not."""

    __module__ = "cupy_strict_for_tests"

    def __init__(self, array):
        self.array = np.asarray(array)

    def get(self):
        return self.array.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")


def test_plots_take_gpu_arrays_through_get():
    matrix = np.array([[3, 1], [0, 2]], dtype=np.int64)
    figure = viz.confusion_matrix(StrictGpuArray(matrix))
    np.testing.assert_array_equal(figure.axes[0].images[0].get_array(), matrix)


def test_confusion_matrix_normalizes_rows_and_leaves_empty_classes_at_zero():
    matrix = [[3, 1], [0, 0]]
    figure = viz.confusion_matrix(matrix, normalize=True, annotate=True)
    np.testing.assert_allclose(figure.axes[0].images[0].get_array(), [[0.75, 0.25], [0.0, 0.0]])
    assert [text.get_text() for text in figure.axes[0].texts] == ["0.75", "0.25", "0.00", "0.00"]
    assert not viz.confusion_matrix(np.eye(4), annotate=False).axes[0].texts


def test_confusion_matrix_rejects_bad_matrices_and_class_names():
    with pytest.raises(ValueError, match=r"confusion_matrix: matrix must be 2-D .* got shape \(4,\)"):
        viz.confusion_matrix(np.ones(4))
    with pytest.raises(ValueError, match=r"confusion_matrix: matrix must be square .* got shape \(2, 3\)"):
        viz.confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"confusion_matrix: .*finite counts >= 0, got min -1"):
        viz.confusion_matrix([[1, -1], [0, 2]])
    with pytest.raises(ValueError, match=r"confusion_matrix: classes must name each of the 2 classes"):
        viz.confusion_matrix(np.eye(2), classes=["a", "b", "c"])


# --- benchmark_bars ----------------------------------------------------------------------------------------
def test_benchmark_bars_are_the_ratios_with_a_parity_line(tmp_path):
    with open(os.path.join(REPO, "benchmarks", "results", "cpu_ops.json")) as file:
        report = json.load(file)
    figure = viz.benchmark_bars(report, save=tmp_path / "bench.png")  # the whole JSON: its "results"
    axes = figure.axes[0]
    ratios = [result["ratio"] for result in report["results"]]
    np.testing.assert_allclose([bar.get_width() for bar in axes.patches], ratios)
    assert [label.get_text() for label in axes.get_yticklabels()] == [r["case"] for r in report["results"]]
    (parity,) = axes.lines
    np.testing.assert_array_equal(parity.get_xdata(), [1.0, 1.0])
    assert_png(tmp_path / "bench.png")


def test_benchmark_bars_compute_the_ratio_from_times_and_colour_by_parity():
    figure = viz.benchmark_bars([{"case": "slow", "minicnn_ms": 40.0, "torch_ms": 10.0},
                                 {"case": "fast", "ratio": 1.5}])
    slow, fast = figure.axes[0].patches
    assert (slow.get_width(), fast.get_width()) == (0.25, 1.5)
    assert slow.get_facecolor() != fast.get_facecolor()
    assert [text.get_text() for text in figure.axes[0].texts] == ["0.25×", "1.50×"]


def test_benchmark_bars_reject_bad_results():
    with pytest.raises(ValueError, match=r"benchmark_bars: results is empty"):
        viz.benchmark_bars([])
    with pytest.raises(ValueError, match=r"benchmark_bars: result 1 \('b'\) needs 'ratio' or both"):
        viz.benchmark_bars([{"case": "a", "ratio": 1.0}, {"case": "b", "minicnn_ms": 3.0}])
    with pytest.raises(ValueError, match=r"benchmark_bars: result 0 \('a'\) has ratio -2.0"):
        viz.benchmark_bars([{"case": "a", "ratio": -2.0}])
    with pytest.raises(ValueError, match=r"benchmark_bars: result 0 must be a dict with 'case'"):
        viz.benchmark_bars([{"ratio": 1.0}])
    with pytest.raises(TypeError, match=r"benchmark_bars: results must be a list of result dicts, got str"):
        viz.benchmark_bars("cpu_ops.json")


# --- saving --------------------------------------------------------------------------------------------
def test_save_and_dpi_are_checked(tmp_path):
    with pytest.raises(TypeError, match=r"confusion_matrix: save must be a path .* got int"):
        viz.confusion_matrix(np.eye(2), save=3)
    with pytest.raises(ValueError, match=r"training_curves: dpi must be a positive number, got 0"):
        viz.training_curves({"train_loss": [1.0]}, dpi=0)
    viz.confusion_matrix(np.eye(2), save=str(tmp_path / "no_extension"), dpi=50)
    assert_png(tmp_path / "no_extension")
