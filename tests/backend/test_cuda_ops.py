"""The op suite on device "cuda": forward and backward against the CPU, float64 gradchecks.

Parametrised over two backends:

* ``cuda``: a real GPU through CuPy.  Skipped visibly ("CUDA not available: …")
  where there is none.
* ``emulated``: no GPU needed.  A fake ``cupy`` (NumPy underneath) whose
  ``RawModule`` runs the unmodified kernels/*.cu on the CPU emulator, so the whole
  path (Tensor.to, Module.to, the functions' ``kernels_for``, the CUDA wrappers,
  launch.py) runs here exactly as it would on a GPU, minus the hardware.

Every case computes on the CPU, moves the same inputs (and modules) to the
device, runs the same code there and compares outputs and gradients.
"""
import sys
from pathlib import Path

import fake_cupy
import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import cuda, nn, optim

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["emulated", "cuda"])
def device(request, monkeypatch):
    """Yields "cuda" with either a real GPU or the emulated one behind it."""
    if request.param == "cuda":
        if not cuda.is_available():
            pytest.skip(f"CUDA not available: {cuda.unavailable_reason()}")
        yield "cuda"
        return
    launches = fake_cupy.install_emulated(monkeypatch, request.getfixturevalue("emulator"), REPO / "kernels")
    cuda._reset_probe_for_tests()
    yield "cuda"
    cuda._reset_probe_for_tests()
    pure_matmul = request.node.callspec.params.get("name") == "linear"  # cuBLAS (cupy.matmul) only
    assert launches or pure_matmul, "the emulated run launched no CUDA kernel: the op never reached the backend"


def tolerance(dtype):
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}


def compare_on_device(device, fn, arrays, dtype, seed=0):
    """fn(*tensors) on the CPU and on ``device``: outputs and input gradients must agree."""
    results = []
    for where in ("cpu", device):
        leaves = [minicnn.Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        output = fn(*[leaf.to(where) for leaf in leaves])
        assert output.device == where
        grad = np.random.default_rng(seed).standard_normal(output.shape).astype(dtype)
        output.backward(minicnn.tensor(grad, dtype=dtype).to(where).data)
        results.append((output.numpy(), [leaf.grad.numpy() for leaf in leaves]))
    (cpu_out, cpu_grads), (dev_out, dev_grads) = results
    np.testing.assert_allclose(dev_out, cpu_out, **tolerance(dtype))
    for dev_grad, cpu_grad in zip(dev_grads, cpu_grads):
        np.testing.assert_allclose(dev_grad, cpu_grad, **tolerance(dtype))


def rand(*shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


DTYPES = [np.float32, np.float64]


def in_place_block(x, w):
    """ResNet's `out += identity` and friends: in-place updates recorded in the graph."""
    out = F.conv2d(x, w, padding=1)
    out += x
    out[:, 0] = out[:, 0] + 2 * x[:, 0]
    out *= 0.5
    return F.relu(out)

OPS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(2, 3, 7, 6), (4, 3, 3, 3), (4,)]),
    "conv2d_dilated_groups": (lambda x, w: F.conv2d(x, w, None, padding=2, dilation=2, groups=2),
                              [(2, 4, 6, 6), (6, 2, 3, 3)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, None, stride=2, padding=1, groups=3),
                         [(2, 3, 7, 7), (3, 1, 3, 3)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(5, 4), (3, 4), (3,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(2, 3, 7, 6)]),
    "max_pool2d_dilated_ceil": (lambda x: F.max_pool2d(x, 2, stride=2, padding=1, dilation=2, ceil_mode=True),
                                [(2, 3, 8, 7)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [(2, 3, 7, 6)]),
    "avg_pool2d_exclude_pad_ceil": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                           count_include_pad=False), [(2, 3, 8, 7)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(2, 3, 7, 5)]),
    "relu": (F.relu, [(3, 8)]), "relu6": (lambda x: F.relu6(x * 8), [(3, 8)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [(3, 8)]), "sigmoid": (F.sigmoid, [(3, 8)]),
    "tanh": (F.tanh, [(3, 8)]), "hardswish": (lambda x: F.hardswish(x * 5), [(3, 8)]),
    "hardsigmoid": (lambda x: F.hardsigmoid(x * 5), [(3, 8)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [(4, 6)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [(4, 6)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 5, 5), (3,), (3,)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3), [(2, 5, 4, 4)]),
    "in_place_block": (in_place_block, [(2, 3, 5, 5), (3, 3, 3, 3)]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_the_cpu(device, name, dtype):
    fn, shapes = OPS[name]
    compare_on_device(device, fn, [rand(*shape, seed=i) for i, shape in enumerate(shapes)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_the_cpu(device, dtype):
    target = np.array([0, 3, 2, 1, 3])

    def loss(logits):
        on = logits.device
        return F.cross_entropy(logits, minicnn.tensor(target).to(on), label_smoothing=0.1)

    compare_on_device(device, loss, [rand(5, 4)], dtype)


def test_dropout_masks_match_the_cpu(device):
    x = np.ones((4, 50), dtype=np.float32)
    minicnn.manual_seed(7)
    on_cpu = F.dropout(minicnn.Tensor(x), 0.3).numpy()
    minicnn.manual_seed(7)
    on_device = F.dropout(minicnn.Tensor(x).to(device), 0.3)
    assert on_device.device == "cuda"
    np.testing.assert_array_equal(on_device.numpy(), on_cpu)


def test_float64_gradcheck_on_the_device(device):
    weight = rand(3, 2, 3, 3, seed=1)

    def fn(x):
        y = F.conv2d(x.to(device), minicnn.Tensor(weight).to(device), None, padding=1)
        return F.max_pool2d(F.relu(y), 2).to("cpu")

    assert minicnn.gradcheck_directional(fn, [rand(2, 2, 5, 5)])


def small_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )


def test_a_manual_in_place_sgd_step_updates_the_model_on_the_device(device):
    x, target = rand(6, 1, 8, 8), np.array([0, 1, 2, 0, 1, 2])
    states = []
    for where in ("cpu", device):
        minicnn.manual_seed(0)
        model = small_model().to(where)
        loss = F.cross_entropy(model(minicnn.Tensor(x.astype(np.float32)).to(where)), minicnn.tensor(target).to(where))
        loss.backward()
        with minicnn.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        assert all(p.device == where for p in model.parameters())
        states.append(model.state_dict())
    for key in states[0]:
        np.testing.assert_allclose(states[1][key], states[0][key], rtol=1e-4, atol=1e-5, err_msg=key)
    y = minicnn.Tensor(x.astype(np.float32), requires_grad=True).to(device).exp()
    y += 1
    with pytest.raises(RuntimeError, match="output .* of Exp was changed by an in-place operation"):
        y.sum().backward()


def test_a_model_trains_the_same_on_the_device(device):
    x, target = rand(6, 1, 8, 8), np.array([0, 1, 2, 0, 1, 2])
    models = []
    for where in ("cpu", device):
        minicnn.manual_seed(0)
        model = small_model()
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model.to(where)
        for _ in range(2):
            loss = F.cross_entropy(model(minicnn.Tensor(x.astype(np.float32)).to(where)),
                                   minicnn.tensor(target).to(where))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert all(p.device == where for p in model.parameters())
        models.append(model.state_dict())
    for key in models[0]:
        np.testing.assert_allclose(models[1][key], models[0][key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_the_gradcheck_command_passes_every_op_on_the_device(device, capsys, request):
    from minicnn.cli import main

    # Every op on a real GPU; on the emulator (each launch starts a thread per CUDA thread) a sample.
    emulated = request.node.callspec.params["device"] == "emulated"
    ops = ["--ops", "conv2d depthwise,max_pool2d,batch_norm,local_response_norm,cross_entropy"] if emulated else []
    assert main(["gradcheck", "--device", device, *ops]) == 0
    printed = capsys.readouterr().out
    assert "float64 gradient checks on cuda" in printed and "FAILED" not in printed
    assert ", 0 failed" in printed


def test_the_gpu_benchmark_runs_and_agrees_with_numpy(device, tmp_path):
    """benchmarks/bench_gpu.py --smoke: every table runs (GPU time is scarce: the script must not fail there)."""
    import json

    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_gpu

    results = bench_gpu.main(["--smoke", "--json", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text()).keys() == results.keys()
    kernel_names = {row["kernel"].split()[0] for row in results["kernels"]}
    assert {"im2col", "col2im", "max_pool2d_backward", "dropout_mask", "batch_norm_backward",
            "cross_entropy_backward", "depthwise_conv2d_forward"} <= kernel_names
    for row in results["kernels"] + results["gemm"] + results["ops"]:
        assert row["rel_error"] <= 1e-5, row
    assert [row["device"] for row in results["train_step"]] == ["cuda", "cpu"]
    assert [(row["framework"], row["device"]) for row in results["vgg16_step"]] == [("minicnn", "cuda"),
                                                                                    ("minicnn", "cpu")]


@pytest.mark.parametrize("dtype", DTYPES)
def test_teaching_gemm_matches_cublas_and_drives_a_conv(device, dtype):
    import cupy

    from minicnn.backend.cuda import kernels as cuda_kernels

    rng = np.random.default_rng(5)
    for a_shape, b_shape in [((37, 61), (61, 45)), ((3, 17, 33), (3, 33, 9)), ((1, 1), (1, 130)),
                             ((300, 77), (77, 260))]:
        a, b = (cupy.asarray(rng.standard_normal(s).astype(dtype)) for s in (a_shape, b_shape))
        for kernel in ("tiled", "blocked"):
            np.testing.assert_allclose(cuda_kernels.gemm(a, b, kernel=kernel).get(), cupy.matmul(a, b).get(),
                                       **tolerance(dtype), err_msg=kernel)
    cuda_kernels.use_teaching_gemm(True)
    try:
        compare_on_device(device, OPS["conv2d"][0], [rand(*s, seed=i) for i, s in enumerate(OPS["conv2d"][1])],
                          dtype)
    finally:
        cuda_kernels.use_teaching_gemm(False)


class _Patterns:
    """Three classes of 1x8x8 images (a row, a column, a diagonal) plus noise, float32 (the loader contract)."""

    def __init__(self, count, seed):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 3, count).astype(np.int64)
        patterns = np.zeros((3, 1, 8, 8), np.float32)
        patterns[0, 0, 3, :] = patterns[1, 0, :, 4] = patterns[2, 0, np.arange(8), np.arange(8)] = 1.0
        self.images = patterns[self.labels] + 0.3 * rng.standard_normal((count, 1, 8, 8)).astype(np.float32)

    def __len__(self):
        return len(self.labels)

    def get_batch(self, indices, rng):
        return self.images[indices], self.labels[indices]


def test_fit_evaluate_and_checkpoints_run_on_the_device(device, tmp_path):
    from minicnn.checkpoint import load_checkpoint
    from minicnn.data import DataLoader
    from minicnn.train import evaluate, fit

    train_set, val_set = _Patterns(24, seed=1), _Patterns(12, seed=2)
    runs = {}
    for where in ("cpu", device):
        minicnn.manual_seed(0)
        model = small_model()
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = fit(model, DataLoader(train_set, 8, shuffle=True, seed=0), DataLoader(val_set, 6),
                      optimizer=optimizer, epochs=2, device=where, grad_clip=5.0, progress=False,
                      checkpoint_dir=tmp_path / where)
        assert all(p.device == where for p in model.parameters())
        runs[where] = (history, evaluate(model, DataLoader(val_set, 6)), model.state_dict())
    (cpu_history, cpu_eval, cpu_state), (gpu_history, gpu_eval, gpu_state) = runs["cpu"], runs[device]
    np.testing.assert_allclose(gpu_history.train_loss, cpu_history.train_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu_history.val_loss, cpu_history.val_loss, rtol=1e-4)
    np.testing.assert_array_equal(gpu_eval["confusion"], cpu_eval["confusion"])
    restored = small_model()
    load_checkpoint(tmp_path / device / "last.npz", restored)  # written from the GPU, read on the CPU
    for key, value in restored.state_dict().items():
        np.testing.assert_allclose(value, gpu_state[key], rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(value, cpu_state[key], rtol=1e-4, atol=1e-5, err_msg=key)
