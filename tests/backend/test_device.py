"""The device switch without a GPU: names, defaults, MINICNN_DEVICE, clear errors, mixed devices.

A fake "GPU array" (a NumPy subclass whose type lives in a module named
``cupy…``) stands in for CuPy where a test needs a second device: minicnn tells
devices apart by the array type, exactly as it does for real CuPy arrays.
"""
import os
import subprocess
import sys

import fake_cupy
import numpy as np
import pytest
from fake_cupy import FakeGpuArray, on_fake_gpu

import minicnn
from minicnn import cuda, device, nn, optim
from minicnn.tensor import Tensor


@pytest.fixture
def fake_gpu(monkeypatch):
    """A fake ``cupy`` (NumPy underneath) so tensors can live on a second device here."""
    fake_cupy.install(monkeypatch)
    cuda._reset_probe_for_tests()
    yield
    cuda._reset_probe_for_tests()


@pytest.fixture
def no_cupy(monkeypatch):
    """Make CuPy look absent, whatever this machine has."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    cuda._reset_probe_for_tests()
    yield
    cuda._reset_probe_for_tests()


@pytest.fixture
def default_device_restored():
    previous = device.get_default_device()
    yield
    device._default_device = previous


# --- minicnn.cuda -----------------------------------------------------------------
def test_without_cupy_cuda_is_unavailable_and_says_why(no_cupy):
    assert cuda.is_available() is False
    assert cuda.device_count() == 0
    assert "CuPy is not installed" in cuda.unavailable_reason()
    assert "pip install 'minicnn[gpu]'" in cuda.unavailable_reason()


def test_a_driver_error_is_reported_as_the_reason(monkeypatch):
    class BrokenRuntime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake_cupy = type(sys)("cupy")
    fake_cupy.cuda = type(sys)("cupy.cuda")
    fake_cupy.cuda.runtime = BrokenRuntime
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    cuda._reset_probe_for_tests()
    try:
        assert not cuda.is_available()
        assert "driver" in cuda.unavailable_reason() and "insufficient" in cuda.unavailable_reason()
    finally:
        cuda._reset_probe_for_tests()


def test_zero_gpus_is_reported_as_the_reason(monkeypatch):
    fake_cupy = type(sys)("cupy")
    fake_cupy.cuda = type(sys)("cupy.cuda")
    fake_cupy.cuda.runtime = type("Runtime", (), {"getDeviceCount": staticmethod(lambda: 0)})
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    cuda._reset_probe_for_tests()
    try:
        assert not cuda.is_available()
        assert "no CUDA GPU" in cuda.unavailable_reason()
    finally:
        cuda._reset_probe_for_tests()


def test_the_answer_is_probed_once_and_cached(monkeypatch):
    calls = []
    fake_cupy = type(sys)("cupy")
    fake_cupy.cuda = type(sys)("cupy.cuda")
    fake_cupy.cuda.runtime = type("Runtime", (), {"getDeviceCount": staticmethod(lambda: calls.append(1) or 2)})
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    cuda._reset_probe_for_tests()
    try:
        assert cuda.is_available() and cuda.device_count() == 2 and cuda.unavailable_reason() is None
        assert len(calls) == 1
    finally:
        cuda._reset_probe_for_tests()


# --- device names and the default ------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda"),
                                                ("CUDA", "cuda")])
def test_device_names(name, expected):
    assert device.normalize_device("op", name) == expected


@pytest.mark.parametrize(("name", "error", "message"), [
    ("tpu", ValueError, "op: device must be 'cpu' or 'cuda', got 'tpu'"),
    ("cuda:1", ValueError, "single GPU"),
    (0, TypeError, "device must be a str"),
])
def test_bad_device_names_are_refused(name, error, message):
    with pytest.raises(error, match=message):
        device.normalize_device("op", name)


def test_default_device_is_cpu_and_can_be_set_back(default_device_restored):
    assert minicnn.get_default_device() == "cpu"
    minicnn.set_default_device("cpu")
    assert minicnn.zeros(2).device == "cpu"


def test_set_default_device_cuda_without_a_gpu_says_why(no_cupy, default_device_restored):
    with pytest.raises(RuntimeError, match=r"set_default_device: CUDA is not available \(CuPy is not installed"):
        minicnn.set_default_device("cuda")
    assert minicnn.get_default_device() == "cpu"


def _import_with_environment(value):
    env = dict(os.environ, MINICNN_DEVICE=value)
    code = "import minicnn; print(minicnn.get_default_device())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_minicnn_device_environment_variable_sets_the_default():
    result = _import_with_environment("cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cpu"


def test_a_bad_minicnn_device_value_stops_the_import_with_the_reason():
    result = _import_with_environment("tpu")
    assert result.returncode != 0
    assert "MINICNN_DEVICE='tpu'" in result.stderr and "device must be 'cpu' or 'cuda'" in result.stderr


def test_minicnn_device_cuda_without_a_gpu_stops_the_import_with_the_reason():
    if cuda.is_available():
        pytest.skip("this machine has a GPU: MINICNN_DEVICE=cuda is valid here")
    result = _import_with_environment("cuda")
    assert result.returncode != 0
    assert "MINICNN_DEVICE='cuda'" in result.stderr and "CUDA is not available" in result.stderr


# --- tensors and modules on a machine without a GPU -----------------------------------
def test_tensor_to_cuda_without_a_gpu_names_the_reason(no_cupy):
    x = minicnn.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"Tensor.to: CUDA is not available \(CuPy is not installed: "
                                           r"pip install 'minicnn\[gpu\]'"):
        x.to("cuda")


def test_tensor_to_its_own_device_is_itself():
    x = minicnn.randn(2, 3, requires_grad=True)
    assert x.to("cpu") is x and x.cpu() is x


def test_factories_without_a_gpu_refuse_cuda_and_accept_cpu(no_cupy):
    for make in (lambda d: minicnn.zeros(2, device=d), lambda d: minicnn.ones(2, device=d),
                 lambda d: minicnn.randn(2, device=d), lambda d: minicnn.rand(2, device=d),
                 lambda d: minicnn.full((2,), 1.5, device=d), lambda d: minicnn.arange(3, device=d),
                 lambda d: minicnn.tensor([1.0], device=d)):
        assert make("cpu").device == "cpu"
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            make("cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        minicnn.zeros(2, device="tpu")


def test_module_to_cuda_without_a_gpu_says_why_and_changes_nothing(no_cupy):
    model = nn.Linear(3, 2)
    before = model.weight.data
    with pytest.raises(RuntimeError, match=r"Linear.to: CUDA is not available"):
        model.cuda()
    assert model.weight.data is before and model.weight.device == "cpu"


def test_tensor_to_records_a_differentiable_copy(fake_gpu):
    """Tensor.to is part of the graph: the gradient comes back to the source device."""
    x = minicnn.randn(2, 3, requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and y.requires_grad and not y.is_leaf
    assert type(y.data) is FakeGpuArray and np.array_equal(np.asarray(y.data), x.data)
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and type(x.grad.data) is np.ndarray
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data)
    with minicnn.no_grad():
        assert not x.to("cuda").requires_grad


def test_module_to_moves_parameters_in_place_and_back(fake_gpu):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    weight = model[0].weight
    model.to("cuda:0")
    assert model[0].weight is weight and weight.device == "cuda"
    assert all(t.device == "cuda" for t in list(model.parameters()) + list(model.buffers()))
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())  # always NumPy, whatever the device
    model.load_state_dict(state)
    assert weight.device == "cuda"  # loading keeps the module's device
    model.cpu()
    assert all(type(t.data) is np.ndarray for t in list(model.parameters()) + list(model.buffers()))


def test_factories_put_tensors_on_the_default_device(fake_gpu, default_device_restored):
    minicnn.set_default_device("cuda")
    assert minicnn.get_default_device() == "cuda"
    minicnn.manual_seed(0)
    on_gpu = minicnn.randn(2, 3)
    assert on_gpu.device == "cuda" and minicnn.zeros(2).device == "cuda" and minicnn.tensor([1.0]).device == "cuda"
    assert minicnn.zeros(2, device="cpu").device == "cpu"
    assert minicnn.zeros_like(on_gpu).device == "cuda"
    minicnn.manual_seed(0)
    np.testing.assert_array_equal(np.asarray(on_gpu.data), minicnn.randn(2, 3, device="cpu").data)


def test_constant_factories_build_on_the_gpu_without_a_host_copy(fake_gpu, monkeypatch):
    # The first GPU run: backward(minicnn.ones_like(y)) spent ~10 ms copying 50 MB of ones over PCIe.
    def no_host_copy(array, device, op="to"):
        raise AssertionError(f"{op} copied a host array to {device}")

    monkeypatch.setattr("minicnn.factories.move_array", no_host_copy)
    made = {"zeros": minicnn.zeros(2, 3, device="cuda"), "ones": minicnn.ones(4, device="cuda"),
            "full": minicnn.full((2,), 1.5, device="cuda"), "arange": minicnn.arange(0, 3, 0.5, device="cuda"),
            "ones_like": minicnn.ones_like(minicnn.zeros(3, device="cuda"))}
    expected = {"zeros": np.zeros((2, 3)), "ones": np.ones(4), "full": np.full(2, 1.5),
                "arange": np.arange(0, 3, 0.5), "ones_like": np.ones(3)}
    for name, tensor in made.items():
        assert tensor.device == "cuda", name
        assert tensor.dtype == np.float32, name
        np.testing.assert_array_equal(tensor.data.get(), expected[name], err_msg=name)
    assert minicnn.arange(5, device="cuda").dtype == np.int64


# --- mixed devices ------------------------------------------------------------------------
def test_an_op_on_two_devices_names_both(fake_gpu):
    a = minicnn.randn(2, 3)
    b = Tensor(on_fake_gpu(np.ones((2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"cpu and cuda"):
        a + b
    from minicnn.tensor import Function

    class Pair(Function):
        def forward(self, a, b):
            raise AssertionError("the device check must come first")

    with pytest.raises(ValueError, match=r"Pair: expected all tensors on one device.*cpu \(2, 3\), cuda \(2, 3\)"):
        Pair()(a, b)


def test_a_comparison_on_two_devices_names_both(fake_gpu):
    """Comparisons are no Function, so they check devices themselves (CuPy would raise a bare TypeError)."""
    gpu = Tensor(on_fake_gpu(np.ones((2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"lt: expected all tensors on one device"):
        _ = gpu < np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"cpu and cuda"):
        _ = np.zeros(3, dtype=np.float32) == gpu
    assert (gpu > 0.5).device == "cuda" and (gpu >= minicnn.tensor([1.0, 2.0, 0.0]).to("cuda")).device == "cuda"


def test_a_cpu_scalar_joins_a_gpu_tensor(fake_gpu):
    """0-d CPU values (a Python number lifted into the graph) may meet GPU tensors, as in PyTorch."""
    from minicnn.tensor import Function

    class Keep(Function):
        def forward(self, a, b):
            return a

    gpu = Tensor(on_fake_gpu(np.ones((2,), dtype=np.float32)))
    assert Keep()(gpu, Tensor(np.float32(2.0))).device == "cuda"


# --- optimizer state follows its parameters -------------------------------------------
def test_optimizer_state_follows_a_moved_parameter(fake_gpu):
    param = nn.Parameter(minicnn.randn(3).data)
    optimizer = optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = Tensor(np.ones(3, dtype=np.float32))
    optimizer.step()
    assert type(optimizer.state[param]["momentum_buffer"]) is np.ndarray
    # "Move" the parameter and its gradient to the (fake) GPU, as Module.to does.
    param.data = on_fake_gpu(param.data)
    param.grad = Tensor(on_fake_gpu(np.ones(3, dtype=np.float32)))
    optimizer.step()
    assert type(optimizer.state[param]["momentum_buffer"]) is FakeGpuArray
    assert type(optimizer.state_dict()["state"][0]["momentum_buffer"]) is np.ndarray


def test_state_dict_arrays_are_numpy():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert all(type(v) is np.ndarray for v in model.state_dict().values())


def test_tensor_of_gpu_data_stays_on_the_gpu(fake_gpu, default_device_restored):
    gpu_data = on_fake_gpu(np.arange(3.0))
    assert minicnn.tensor(gpu_data).device == "cuda"
    assert minicnn.tensor(gpu_data, device="cpu").device == "cpu"
    assert minicnn.tensor([1.0, 2.0]).device == "cpu"


# --- operands, upstream gradients and labels meet the tensor's device ------------------
def test_a_python_list_operand_follows_the_gpu_tensor(fake_gpu):
    gpu = Tensor(on_fake_gpu(np.ones(3, dtype=np.float32)), requires_grad=True)
    result = gpu + [1, 2, 3]
    assert result.device == "cuda" and result.dtype == np.float32
    with pytest.raises(ValueError, match=r"cpu and cuda"):
        gpu * np.arange(3)  # a NumPy array is a CPU operand, as in PyTorch


def test_backward_refuses_an_upstream_gradient_on_another_device(fake_gpu):
    gpu = Tensor(on_fake_gpu(np.ones(3, dtype=np.float32)), requires_grad=True)
    y = gpu * 2.0
    with pytest.raises(ValueError, match=r"backward: grad is on cpu but the tensor is on cuda"):
        y.backward(np.ones(3, dtype=np.float32))
    assert gpu.grad is None
    y.backward(on_fake_gpu(np.ones(3, dtype=np.float32)))
    assert gpu.grad.device == "cuda"


@pytest.mark.parametrize("where", ["target", "weight"])
def test_cross_entropy_names_a_label_or_weight_on_another_device(fake_gpu, where):
    import minicnn.nn.functional as F

    logits = Tensor(on_fake_gpu(np.zeros((2, 3), dtype=np.float32)))
    target = np.array([0, 2]) if where == "target" else on_fake_gpu(np.array([0, 2]))
    weight = np.ones(3, dtype=np.float32) if where == "weight" else None
    with pytest.raises(ValueError, match=rf"cross_entropy: input is on cuda but {where} is on cpu; "
                                         rf"move {where} with .to\('cuda'\)"):
        F.cross_entropy(logits, target, weight)


# --- gradcheck on a device -----------------------------------------------------------------
def test_gradcheck_runs_fn_on_the_device_it_is_given(fake_gpu):
    seen = []

    def square(x):
        seen.append(x.device)
        return x * x

    assert minicnn.gradcheck(square, [np.array([1.0, -2.0])], device="cuda")
    assert minicnn.gradcheck_directional(square, [np.array([1.0, -2.0])], device="cuda")
    assert set(seen) == {"cuda"}
    seen.clear()
    assert minicnn.gradcheck(square, [Tensor(on_fake_gpu(np.array([0.5])))])  # a GPU input picks the GPU
    assert set(seen) == {"cuda"}


def test_gradcheck_follows_the_default_device(fake_gpu, default_device_restored):
    seen = []
    minicnn.set_default_device("cuda")
    assert minicnn.gradcheck(lambda x: seen.append(x.device) or x.exp(), [np.array([0.1, 0.2])])
    assert set(seen) == {"cuda"}


def test_gradcheck_on_cuda_without_a_gpu_says_why(no_cupy):
    with pytest.raises(RuntimeError, match=r"gradcheck: CUDA is not available \(CuPy is not installed"):
        minicnn.gradcheck(lambda x: x * x, [np.array([1.0])], device="cuda")
