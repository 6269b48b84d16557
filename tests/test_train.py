"""minicnn.train: fit and evaluate on tiny in-test datasets (no downloads, a few seconds in all)."""
import gc
import json
import math
import sys
import tracemalloc

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint
from minicnn.data import DataLoader
from minicnn.functions.elementwise import sqrt
from minicnn.models import GoogLeNetOutputs, googlenet_loss
from minicnn.train import History, NonFiniteLossError, clip_grad_norm_, default_loss, evaluate, fit


# --- tiny data and models ------------------------------------------------------------------------
class PatternImages:
    """Three classes of 1x6x6 images (a bright row, a bright column, a bright diagonal) plus noise.

    Follows the dataset contract's ``__len__`` / ``get_batch(indices, rng)`` (images already float32).
    """

    def __init__(self, count, seed, noise=0.3):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 3, count).astype(np.int64)
        patterns = np.zeros((3, 1, 6, 6), np.float32)
        patterns[0, 0, 2, :] = 1.0
        patterns[1, 0, :, 3] = 1.0
        patterns[2, 0, np.arange(6), np.arange(6)] = 1.0
        noise_images = noise * rng.standard_normal((count, 1, 6, 6)).astype(np.float32)
        self.images = patterns[self.labels] + noise_images

    def __len__(self):
        return len(self.labels)

    def get_batch(self, indices, rng):
        return self.images[indices], self.labels[indices]


class BatchList:
    """A loader over fixed batches; ``nan_at=(epoch, step)`` (from 1) poisons one batch's images."""

    def __init__(self, dataset, batch_size, nan_at=None):
        self.batches = [(dataset.images[start:start + batch_size], dataset.labels[start:start + batch_size])
                        for start in range(0, len(dataset), batch_size)]
        self.nan_at = nan_at
        self.epoch = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.epoch += 1
        for step, (images, labels) in enumerate(self.batches, start=1):
            if self.nan_at == (self.epoch, step):
                images = images.copy()
                images[0, 0, 0, 0] = np.nan
            yield minicnn.Tensor(images), minicnn.Tensor(labels)


class SmallConvNet(nn.Module):
    """Conv-BN-ReLU-pool then a linear head; parameter names start with ``features.0.weight``."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * 3 * 3, 3))

    def forward(self, x):
        return self.classifier(self.features(x))


def linear_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 3))


@pytest.fixture
def data():
    minicnn.manual_seed(0)
    return PatternImages(240, seed=1), PatternImages(90, seed=2)


# --- learning ------------------------------------------------------------------------------------
def test_fit_learns_a_separable_dataset_to_95_percent(data):
    train_set, val_set = data
    model = SmallConvNet()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, DataLoader(train_set, 16, shuffle=True, seed=3), DataLoader(val_set, 30),
                  optimizer=optimizer, epochs=4, progress=False)
    assert history.val_accuracy[-1] >= 0.95
    assert history.train_loss[-1] < history.train_loss[0]
    assert evaluate(model, DataLoader(val_set, 30))["accuracy"] == history.val_accuracy[-1]


def test_fit_reaches_90_percent_on_real_digits():
    pytest.importorskip("sklearn")
    from minicnn.data import load_dataset

    minicnn.manual_seed(0)
    train_set, test_set = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    history = fit(model, DataLoader(train_set, 32, shuffle=True, seed=0), DataLoader(test_set, 128),
                  optimizer=optim.Adam(model.parameters(), lr=0.01), epochs=3, progress=False)
    assert history.val_accuracy[-1] >= 0.90


# --- history -------------------------------------------------------------------------------------
def test_history_has_one_value_per_epoch_and_matches_the_schedule(data):
    train_set, val_set = data
    model = SmallConvNet()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, DataLoader(train_set, 32), DataLoader(val_set, 45), optimizer=optimizer, epochs=3,
                  scheduler=scheduler, progress=False)
    assert len(history) == 3
    for key in History.KEYS:
        assert len(getattr(history, key)) == 3, key
    assert history.lr == pytest.approx([0.1, 0.05, 0.025])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)  # stepped once per epoch
    assert all(0.0 <= value <= 1.0 for value in history.train_accuracy + history.val_accuracy)
    assert all(value > 0 for value in history.epoch_seconds + history.images_per_second)
    restored = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert restored.to_dict() == history.to_dict()


def test_train_loss_is_the_image_weighted_mean_of_the_batch_losses(data):
    train_set, _ = data
    model = linear_model()
    loader = BatchList(train_set, 50)  # batches of 50, 50, 50, 50, 40
    expected = evaluate(model, loader)
    history = fit(model, loader, optimizer=optim.SGD(model.parameters(), lr=0.0), epochs=1, progress=False)
    assert history.train_loss[0] == pytest.approx(expected["loss"], rel=1e-6)
    assert history.train_accuracy[0] == pytest.approx(expected["accuracy"])
    assert history.val_loss == [None] and history.val_accuracy == [None]


def test_fit_extends_a_history_from_start_epoch(data):
    train_set, _ = data
    model = linear_model()
    optimizer = optim.SGD(model.parameters(), lr=0.05)
    loader = DataLoader(train_set, 40)
    history = fit(model, loader, optimizer=optimizer, epochs=1, progress=False)
    history = fit(model, loader, optimizer=optimizer, epochs=3, start_epoch=1, history=history, progress=False)
    assert len(history) == 3
    with pytest.raises(ValueError, match="fit: history holds 3 epochs but start_epoch is 1"):
        fit(model, loader, optimizer=optimizer, epochs=4, start_epoch=1, history=history, progress=False)


def test_history_from_dict_rejects_uneven_lists():
    metrics = {key: [1.0] for key in History.KEYS}
    metrics["lr"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="History.from_dict: metric lists differ in length"):
        History.from_dict(metrics)


# --- GoogLeNet's auxiliary outputs --------------------------------------------------------------
class AuxHeadsNet(nn.Module):
    """Like GoogLeNet: (logits, aux_logits2, aux_logits1) in training, logits alone in eval."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.main, self.aux1, self.aux2 = nn.Linear(36, 3), nn.Linear(36, 3), nn.Linear(36, 3)

    def forward(self, x):
        x = self.flatten(x)
        if self.training:
            return GoogLeNetOutputs(self.main(x), self.aux2(x), self.aux1(x))
        return self.main(x)


def test_fit_uses_googlenet_loss_for_aux_outputs_and_scores_the_main_logits(data):
    train_set, _ = data
    model = AuxHeadsNet()
    loader = BatchList(train_set, 60)
    losses, correct = [], 0
    for images, labels in loader:
        outputs = model(images)
        losses.append(googlenet_loss(outputs, labels).item())
        correct += int((outputs.logits.numpy().argmax(1) == labels.numpy()).sum())
    plain_ce = np.mean([F.cross_entropy(model(x).logits, y).item() for x, y in loader])
    history = fit(model, loader, optimizer=optim.SGD(model.parameters(), lr=0.0), epochs=1, progress=False)
    assert history.train_loss[0] == pytest.approx(np.mean(losses), rel=1e-6)
    assert history.train_loss[0] > plain_ce * 1.2  # the aux heads' 0.3-weighted terms are in
    assert history.train_accuracy[0] == pytest.approx(correct / len(train_set))


def test_the_default_loss_asks_the_outputs_how_to_weigh_their_heads():
    rng = np.random.default_rng(0)
    logits, aux2, aux1 = (minicnn.tensor(rng.standard_normal((6, 4)).astype(np.float32)) for _ in range(3))
    labels = minicnn.tensor(rng.integers(0, 4, 6))
    assert default_loss(logits, labels).item() == F.cross_entropy(logits, labels).item()
    outputs = GoogLeNetOutputs(logits, aux2, aux1)
    expected = (F.cross_entropy(logits, labels) + 0.3 * F.cross_entropy(aux1, labels)
                + 0.3 * F.cross_entropy(aux2, labels))
    assert default_loss(outputs, labels).item() == pytest.approx(expected.item(), rel=1e-7)
    assert googlenet_loss(outputs, labels).item() == pytest.approx(expected.item(), rel=1e-7)
    assert googlenet_loss(outputs, labels, aux_weight=0).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-7)
    # any model's outputs can carry their own weights: the loop knows the protocol, not the model
    class TwoHeads(tuple):
        def weighted_logits(self):
            return [(1.0, self[0]), (0.5, self[1])]

    mixed = default_loss(TwoHeads((logits, aux1)), labels).item()
    assert mixed == pytest.approx(F.cross_entropy(logits, labels).item() + 0.5 * F.cross_entropy(aux1, labels).item(),
                                  rel=1e-6)
    with pytest.raises(ValueError, match="googlenet_loss: aux_weight must be a non-negative number, got -1"):
        googlenet_loss(outputs, labels, aux_weight=-1)
    with pytest.raises(ValueError, match="cross_entropy_of_heads: expected at least one"):
        F.cross_entropy_of_heads([], labels)


def test_the_training_loop_imports_no_model():
    import ast
    import pathlib

    source = pathlib.Path(minicnn.train.__file__).read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not any(name.startswith("minicnn.models") for name in imported), sorted(imported)


def test_fit_trains_a_googlenet_style_model_with_a_validation_loader(data):
    train_set, val_set = data
    model = AuxHeadsNet()
    history = fit(model, BatchList(train_set, 30), BatchList(val_set, 30),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
    assert history.val_accuracy[-1] >= 0.9
    assert model.training  # fit leaves the model in train mode after its evaluations


# --- gradient clipping ---------------------------------------------------------------------------
def test_clip_grad_norm_scales_all_gradients_to_the_bound():
    first = nn.Parameter(minicnn.zeros(2))
    second = nn.Parameter(minicnn.zeros(1))
    first.grad, second.grad = minicnn.tensor([3.0, 0.0]), minicnn.tensor([4.0])
    norm = clip_grad_norm_([first, second], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    clipped = np.concatenate([first.grad.numpy(), second.grad.numpy()])
    assert np.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(clipped, [0.6, 0.0, 0.8], rtol=1e-5)  # direction kept
    assert first.grad.dtype == np.float32
    assert clip_grad_norm_([first, second], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(first.grad.numpy(), [0.6, 0.0], rtol=1e-5)  # below the bound: untouched


def _global_norms_seen_by_step(model, loader, grad_clip):
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    norms, step = [], optimizer.step

    def recording_step():
        norms.append(math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in model.parameters())))
        return step()

    optimizer.step = recording_step
    fit(model, loader, optimizer=optimizer, epochs=1, grad_clip=grad_clip, progress=False)
    return norms


def test_fit_grad_clip_bounds_the_global_norm_at_every_step(data):
    train_set, _ = data
    minicnn.manual_seed(4)
    unclipped = _global_norms_seen_by_step(linear_model(), BatchList(train_set, 40), None)
    minicnn.manual_seed(4)
    clipped = _global_norms_seen_by_step(linear_model(), BatchList(train_set, 40), 0.05)
    assert max(unclipped) > 0.05  # so the bound below has something to cut
    assert len(clipped) == len(unclipped) == 6
    assert max(clipped) <= 0.05 * (1 + 1e-5)


# --- non-finite losses ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_stops_with_the_step_and_the_parameter(data, tmp_path):
    train_set, _ = data
    model = SmallConvNet()
    optimizer = optim.SGD(model.parameters(), lr=0.05)
    loader = BatchList(train_set, 40)
    history = fit(model, loader, optimizer=optimizer, epochs=1, checkpoint_dir=tmp_path, progress=False)
    good_state = {key: value.copy() for key, value in model.state_dict().items()}
    good_file = (tmp_path / "last.npz").read_bytes()

    optimizer.param_groups[0]["lr"] = 1e30  # one step sends the weights past float32's range
    with pytest.raises(NonFiniteLossError) as caught:
        fit(model, loader, optimizer=optimizer, epochs=3, start_epoch=1, history=history,
            checkpoint_dir=tmp_path, progress=False)
    error = caught.value
    assert isinstance(error, ArithmeticError)
    assert error.epoch == 2 and error.step >= 2
    assert f"at epoch 2, step {error.step} (global step {6 + error.step})" in str(error)
    assert error.parameter in dict(model.named_parameters())
    assert f"{error.parameter!r}" in str(error)
    assert (tmp_path / "last.npz").read_bytes() == good_file  # the last good checkpoint is kept
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())  # the bad update never ran
    assert any(not np.array_equal(value, good_state[key]) for key, value in model.state_dict().items())


def test_a_nan_in_the_input_is_reported_with_its_epoch_step_and_first_parameter(data, tmp_path):
    train_set, _ = data
    model = SmallConvNet()
    loader = BatchList(train_set, 40, nan_at=(2, 3))
    with pytest.raises(NonFiniteLossError) as caught:
        fit(model, loader, optimizer=optim.SGD(model.parameters(), lr=0.05), epochs=3,
            checkpoint_dir=tmp_path, progress=False)
    error = caught.value
    assert (error.epoch, error.step, error.input_non_finite) == (2, 3, True)
    assert math.isnan(error.loss)
    assert error.parameter == "features.0.weight"  # the first parameter in registration order
    message = str(error)
    assert message.startswith("fit: the loss became nan at epoch 2, step 3 (global step 9)")
    assert "the input batch itself contains NaN or Inf" in message and "'features.0.weight'" in message
    assert f"{tmp_path / 'last.npz'} holds the last good epoch" in message
    assert load_checkpoint(tmp_path / "last.npz", SmallConvNet())["epoch"] == 1


def test_an_overflowing_loss_with_finite_gradients_says_so(data):
    train_set, _ = data
    model = linear_model()

    def overflowing_loss(outputs, labels):
        return F.cross_entropy(outputs, labels) + minicnn.tensor(np.float32(np.inf))

    with pytest.raises(NonFiniteLossError, match="all gradients of the last backward were finite: "
                                                 "the loss itself overflowed") as caught:
        fit(model, BatchList(train_set, 40), optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=overflowing_loss, progress=False)
    assert caught.value.parameter is None and (caught.value.epoch, caught.value.step) == (1, 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_gradient_under_a_finite_loss_stops_before_the_update(data):
    train_set, _ = data
    model = linear_model()
    before = [p.numpy().copy() for p in model.parameters()]

    def sqrt_of_zero_loss(outputs, labels):  # forward sqrt(0) = 0, backward 1 / (2 sqrt(0)) = inf
        return sqrt(((outputs - outputs.detach()) ** 2).sum())

    with pytest.raises(NonFiniteLossError, match=r"fit: the gradient of '1.weight' went non-finite at epoch 1, "
                                                 r"step 1 \(global step 1\) while the loss was finite \(0\)"):
        fit(model, BatchList(train_set, 40), optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=sqrt_of_zero_loss, progress=False)
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))


# --- evaluate ------------------------------------------------------------------------------------
class GradModeSpy(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.grad_modes = []

    def forward(self, x):
        self.grad_modes.append(minicnn.is_grad_enabled())
        return self.inner(x)


def test_evaluate_gives_loss_accuracy_and_confusion(data):
    _, val_set = data
    model = GradModeSpy(SmallConvNet(dropout=0.5))
    loader = BatchList(val_set, 40)  # 40, 40, 10: the loss must weigh the short batch by its size
    result = evaluate(model, loader)
    model.eval()
    logits = model(minicnn.Tensor(val_set.images)).numpy()
    predicted = logits.argmax(1)
    expected_loss = F.cross_entropy(minicnn.Tensor(logits), minicnn.Tensor(val_set.labels)).item()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == val_set.labels))
    expected_confusion = np.zeros((3, 3), np.int64)
    np.add.at(expected_confusion, (val_set.labels, predicted), 1)
    assert result["confusion"].dtype == np.int64
    np.testing.assert_array_equal(result["confusion"], expected_confusion)
    assert model.grad_modes[:3] == [False, False, False]


def test_evaluate_restores_each_modules_mode_and_draws_no_randomness(data):
    _, val_set = data
    model = SmallConvNet(dropout=0.5)
    model.train()
    model.features[1].eval()  # a frozen batch norm inside a training model stays frozen
    rng_before = minicnn.get_rng_state()
    first, second = evaluate(model, BatchList(val_set, 30)), evaluate(model, BatchList(val_set, 30))
    assert first["loss"] == second["loss"]  # dropout off, batch norm on running statistics
    assert minicnn.get_rng_state() == rng_before
    assert model.training and model.classifier[1].training and not model.features[1].training
    model.eval()
    evaluate(model, BatchList(val_set, 30))
    assert not model.training


def test_evaluate_rejects_an_empty_loader_and_out_of_range_labels(data):
    with pytest.raises(ValueError, match="evaluate: the loader yielded no batches"):
        evaluate(linear_model(), [])
    bad_labels = [(minicnn.zeros(2, 1, 6, 6), minicnn.tensor(np.array([0, 5], np.int64)))]
    with pytest.raises(ValueError, match=r"evaluate: labels must lie in \[0, 3\)"):
        evaluate(linear_model(), bad_labels)
    with pytest.raises(TypeError, match="evaluate: model must be a minicnn.nn.Module, got str"):
        evaluate("model", [])


# --- arguments -----------------------------------------------------------------------------------
def test_fit_on_cuda_without_a_gpu_says_why_before_any_work(data):
    import minicnn.cuda

    if minicnn.cuda.is_available():
        pytest.skip("a GPU is available here: fit(device='cuda') runs instead of refusing")
    train_set, _ = data
    model = linear_model()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"fit: CUDA is not available \("):
        fit(model, BatchList(train_set, 40), optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1,
            device="cuda", progress=False)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("arguments, error, message", [
    ({"epochs": -1}, ValueError, "fit: epochs must be >= 0, got -1"),
    ({"epochs": 2.5}, TypeError, "fit: epochs must be an int, got float"),
    ({"grad_clip": 0.0}, ValueError, "fit: grad_clip must be a positive finite number"),
    ({"grad_clip": -1.0}, ValueError, "fit: grad_clip must be a positive finite number"),
    ({"grad_clip": "1"}, TypeError, "fit: grad_clip must be a number or None, got str"),
    ({"optimizer": None}, ValueError, r"fit: an optimizer is needed to train \(got optimizer=None\)"),
    ({"device": "tpu"}, ValueError, "fit: device must be 'cpu' or 'cuda', got 'tpu'"),
    ({"device": 0}, TypeError, r"fit: device must be a str \('cpu', 'cuda' or 'cuda:0'\), got int"),
    ({"start_epoch": 3}, ValueError, r"fit: start_epoch \(3\) is past epochs \(1\)"),
    ({"progress": "yes"}, TypeError, "fit: progress must be True, False or None"),
    ({"loss_fn": 3}, TypeError, "fit: loss_fn must be callable"),
    ({"train_loader": None}, TypeError, "fit: train_loader must be an iterable"),
    ({"val_loader": 5}, TypeError, "fit: val_loader must be None or an iterable"),
    ({"checkpoint_dir": 5}, TypeError, r"fit: checkpoint_dir must be a path \(str or os.PathLike\) or None"),
])
def test_fit_rejects_bad_arguments_with_clear_messages(data, arguments, error, message):
    train_set, _ = data
    model = linear_model()
    call = {"model": model, "train_loader": BatchList(train_set, 40),
            "optimizer": optim.SGD(model.parameters(), lr=0.1), "epochs": 1, "progress": False}
    call.update(arguments)
    with pytest.raises(error, match=message):
        fit(**call)


def test_fit_with_zero_epochs_needs_no_optimizer(data):
    history = fit(linear_model(), BatchList(data[0], 40), epochs=0)
    assert len(history) == 0


# --- progress bars -------------------------------------------------------------------------------
def test_progress_is_silent_when_stdout_is_not_a_terminal(data, capsys):
    assert not sys.stdout.isatty()
    model = linear_model()
    fit(model, BatchList(data[0], 40), BatchList(data[1], 45), optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_shows_a_bar_at_a_terminal_but_not_in_ci(data, capsys, monkeypatch):
    model = linear_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    fit(model, BatchList(data[0], 40), optimizer=optimizer, epochs=1)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("CI")
    fit(model, BatchList(data[0], 40), BatchList(data[1], 45), optimizer=optimizer, epochs=2, start_epoch=1,
        history=fit(model, BatchList(data[0], 40), optimizer=optimizer, epochs=1, progress=False))
    bar = capsys.readouterr().err
    assert "epoch 2/2" in bar and "6/6" in bar
    for field in ("loss=", "acc=", "img/s=", "val_loss=", "val_acc="):
        assert field in bar


# --- memory --------------------------------------------------------------------------------------
class MemoryProbe:
    """500 batches of one fixed sample set; records traced memory as batches 50 and 500 are handed out."""

    def __init__(self, images, labels, steps=500):
        self.images, self.labels, self.steps = minicnn.Tensor(images), minicnn.Tensor(labels), steps
        self.traced = {}

    def __len__(self):
        return self.steps

    def __iter__(self):
        for step in range(1, self.steps + 1):
            if step in (50, self.steps):
                gc.collect()  # count only what is still reachable, not garbage waiting for the collector
                self.traced[step] = tracemalloc.get_traced_memory()[0]
            yield self.images, self.labels


def _traced_growth_over_500_steps(train_set, loss_fn=None):
    model = SmallConvNet(dropout=0.2)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    probe = MemoryProbe(train_set.images[:8], train_set.labels[:8])
    tracemalloc.start()
    try:
        fit(model, probe, optimizer=optimizer, epochs=1, loss_fn=loss_fn, grad_clip=1.0, progress=False)
    finally:
        tracemalloc.stop()
    return probe.traced[500] - probe.traced[50]


def test_memory_stays_flat_over_500_training_steps(data):
    growth = _traced_growth_over_500_steps(data[0])
    assert growth < 256 * 1024, f"traced memory grew by {growth} bytes between steps 50 and 500"


def test_the_memory_probe_catches_a_loop_that_keeps_its_graphs(data):
    kept = []

    def leaking_loss(outputs, labels):  # what `losses.append(loss)` instead of `loss.item()` does
        loss = F.cross_entropy(outputs, labels)
        kept.append(loss)
        return loss

    assert _traced_growth_over_500_steps(data[0], leaking_loss) > 2 * 1024 * 1024
