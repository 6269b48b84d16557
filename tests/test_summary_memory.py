"""summary refuses an input whose trace cannot fit in memory, from an estimate made on two small images;
inputs that clearly fit are traced exactly as before, without any estimate."""
import tracemalloc

import numpy as np
import pytest

import minicnn
from minicnn import models, nn, summary_memory
from minicnn.summary import summary
from minicnn.summary_memory import _estimate_memory


def vgg():
    minicnn.manual_seed(0)
    return models.vgg11_bn(width_mult=0.25, num_classes=10)


@pytest.mark.parametrize("input_size", [(3, 96, 160), (3, 256, 224)])
def test_the_estimate_of_layer_outputs_is_exact_when_the_sides_divide_evenly(input_size):
    model = vgg()
    estimate = _estimate_memory(model, "VGG", (2, *input_size), np.float32)  # probes at 64 and 128 only
    assert estimate.activation_bytes == summary(model, input_size, batch_size=2).totals.activation_bytes


def test_the_estimate_follows_a_resnet_to_an_odd_size_within_a_few_percent():
    minicnn.manual_seed(0)
    model = models.cifar_resnet20()
    estimate = _estimate_memory(model, "ResNet", (1, 3, 203, 197), np.float32)
    actual = summary(model, (3, 203, 197)).totals.activation_bytes
    assert abs(estimate.activation_bytes - actual) < 0.03 * actual


def test_the_peak_estimate_is_close_to_what_tracing_really_allocates():
    minicnn.manual_seed(0)
    model = models.cifar_resnet20()
    estimate = _estimate_memory(model, "ResNet", (1, 3, 192, 192), np.float32)
    tracemalloc.start()
    try:
        summary(model, (3, 192, 192), check_memory=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.85 * peak < estimate.peak_bytes < 1.15 * peak


def test_a_huge_input_is_refused_at_once_with_the_estimate_and_the_memory_available():
    minicnn.manual_seed(0)
    expected = (r"summary \(CifarResNet\): an input of \(1, 3, 30000, 30000\) needs about [\d,.]+ GiB "
                r"to trace \([\d,.]+ GiB of layer outputs\), but [\d,.]+ GiB of memory is available")
    with pytest.raises(MemoryError, match=expected):
        summary(models.cifar_resnet20(), (3, 30000, 30000))


def test_the_memory_available_decides(monkeypatch):
    monkeypatch.setattr(summary_memory, "_available_memory", lambda device: 2**16)  # a 64 KiB machine
    with pytest.raises(MemoryError, match="0.0 GiB of memory is available"):
        summary(vgg(), (3, 32, 32))
    assert summary(vgg(), (3, 32, 32), check_memory=False).totals.params > 0


def test_without_an_answer_about_memory_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(summary_memory, "_available_memory", lambda device: None)
    monkeypatch.setattr(summary_memory, "_estimate_memory", pytest.fail)
    assert len(summary(vgg(), (3, 32, 32))) > 0


def test_an_input_that_clearly_fits_is_traced_without_an_estimate(monkeypatch):
    model = vgg()
    before = str(summary(model, (3, 64, 64)))
    monkeypatch.setattr(summary_memory, "_estimate_memory", pytest.fail)
    assert str(summary(model, (3, 64, 64))) == before


def test_a_model_that_takes_one_input_size_only_gets_no_estimate_and_is_traced(monkeypatch):
    minicnn.manual_seed(0)
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 298 * 298, 2))  # 300x300 only
    assert _estimate_memory(fixed, "Sequential", (1, 3, 300, 300), np.float32) is None  # every probe refused
    monkeypatch.setattr(summary_memory, "_available_memory", lambda device: 2**16)
    assert summary(fixed, (3, 300, 300)).rows[-1].output_shape == (1, 2)


def test_the_memory_available_is_read_from_the_system():
    available = summary_memory._available_memory("cpu")
    assert available is None or available > 0
