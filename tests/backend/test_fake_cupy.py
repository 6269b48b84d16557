"""The fake CuPy is as strict as the real one about mixing devices, so the emulated GPU runs catch
host arrays that reach GPU code (real CuPy raises TypeError for them)."""

import fake_cupy
import numpy as np
import pytest
from fake_cupy import FakeGpuArray, on_fake_gpu

HOST = np.arange(3.0)


def gpu():
    return on_fake_gpu(np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("mix", [
    lambda g: g + HOST,
    lambda g: HOST * g,  # NumPy on the left hands the ufunc to the GPU array, which refuses it
    lambda g: g @ HOST,
    lambda g: np.maximum(g, HOST),
    lambda g: np.exp(HOST, out=g[0]),
    lambda g: np.where(g > 1, HOST, 0.0),
    lambda g: np.concatenate([g, HOST[None]]),
    lambda g: np.copyto(g[0], HOST),
    lambda g: fake_cupy.module().exp(HOST),  # a cupy function given a host array
    lambda g: fake_cupy.module().stack([g[0], HOST]),
], ids=["add", "reflected-mul", "matmul", "maximum", "out", "where", "concatenate", "copyto", "cupy.exp",
        "cupy.stack"])
def test_a_host_array_beside_a_gpu_array_raises_type_error(mix):
    with pytest.raises(TypeError, match="numpy.ndarray mixed with a GPU array"):
        mix(gpu())


@pytest.mark.parametrize("scalar", [2.0, 2, np.float32(2.0), np.float64(2.0), np.array(2.0)],
                         ids=["float", "int", "np.float32", "np.float64", "0-d array"])
def test_scalars_mix_with_gpu_arrays(scalar):
    g = gpu()
    for result in (g * scalar, scalar * g):
        assert type(result) is FakeGpuArray
        np.testing.assert_array_equal(result.get(), np.arange(6.0).reshape(2, 3) * 2)
    assert type(np.maximum(g, scalar)) is FakeGpuArray


def test_results_on_the_gpu_stay_on_the_gpu():
    g = gpu()
    results = [g + g, np.exp(g), g.sum(axis=0), g.sum(), g.mean(), g[0, 1], np.where(g > 1, g, 0.0),
               np.concatenate([g, g]), np.broadcast_to(g, (2, 2, 3)), g.astype(np.float32), g.reshape(3, 2)]
    assert all(type(r) is FakeGpuArray for r in results)
    assert g.sum().ndim == 0 and float(g.sum()) == 15.0  # a reduction is a 0-d GPU array, as in CuPy
    assert all(type(part) is FakeGpuArray for part in np.split(g, 3, axis=1) + list(np.divmod(g, 4)))


def test_out_arguments_are_written_and_returned():
    g = gpu()
    out = on_fake_gpu(np.zeros((2, 3)))
    assert np.add(g, 1.0, out=out) is out and np.concatenate([g[:1], g[1:]], out=out) is out
    np.testing.assert_array_equal(out.get(), g.get())
    np.add.at(g, (np.array([0, 0]), np.array([1, 1])), 10.0)  # ufunc.at: the index may be a host array
    assert g.get()[0, 1] == 21.0


def test_get_and_the_fake_cupy_module_move_data_between_devices():
    cupy = fake_cupy.module()
    host = np.arange(4.0)
    on_gpu = cupy.asarray(host)
    assert type(on_gpu) is FakeGpuArray and type(on_gpu.get()) is np.ndarray
    host[0] = 99.0
    assert on_gpu.get()[0] == 0.0  # asarray copied host data to the "device"
    assert cupy.asarray(on_gpu) is on_gpu and type(cupy.array(host, dtype=np.float32)) is FakeGpuArray
    assert type(cupy.zeros(3)) is FakeGpuArray and type(cupy.exp(on_gpu)) is FakeGpuArray
    assert type(cupy.matmul(on_gpu, on_gpu)) is FakeGpuArray and cupy.float32 is np.float32
