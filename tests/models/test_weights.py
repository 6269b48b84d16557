"""Weights through .npz: minicnn → file → fresh model, torch → file → minicnn, and torchvision's layouts."""
import importlib.util
import os
import sys

import numpy as np
import pytest
from reference_facts import load_reference, state_dict_spec

import minicnn
from minicnn import nn
from minicnn.models.weights import load_npz_state_dict, read_npz, save_npz_state_dict
from minicnn.nn import StateDictError

EXPORT_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "export_torchvision_weights.py")


def load_export_script():
    spec = importlib.util.spec_from_file_location("export_torchvision_weights", EXPORT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_cnn(seed):
    minicnn.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, groups=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    )


def trained_small_cnn():
    """A model whose running statistics and batch counters are no longer the defaults."""
    model = small_cnn(seed=1)
    optimizer = minicnn.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        loss = nn.CrossEntropyLoss()(model(minicnn.randn(4, 3, 8, 8)), minicnn.Tensor(np.array([0, 1, 2, 3])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_round_trip_state_dict_npz_fresh_model_gives_the_same_outputs(tmp_path):
    model = trained_small_cnn()
    path = save_npz_state_dict(model, tmp_path / "small")
    assert path.endswith("small.npz") and os.path.exists(path)

    with np.load(path, allow_pickle=False) as archive:  # plain arrays only
        assert archive.files == list(model.state_dict())  # torch's order kept
        counter = archive["1.num_batches_tracked"]
        assert counter.dtype == np.int64 and counter.shape == () and int(counter) == 2
        assert archive["0.weight"].dtype == np.float32

    fresh = small_cnn(seed=2).eval()
    x = minicnn.randn(2, 3, 8, 8)
    with minicnn.no_grad():
        assert not np.allclose(fresh(x).numpy(), model(x).numpy())
        result = load_npz_state_dict(fresh, path)
        np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(fresh[5].num_batches_tracked.item()) == 2
    assert fresh[5].num_batches_tracked.dtype == np.int64


def test_a_mismatched_file_is_refused_whole_and_changes_nothing(tmp_path):
    model = trained_small_cnn()
    path = save_npz_state_dict(model, tmp_path / "small.npz")
    other = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(8))  # wrong width, missing layers
    before = other.state_dict()
    with pytest.raises(StateDictError, match=r"size mismatch for 0.weight.*(\n.*)*") as error:
        load_npz_state_dict(other, path)
    assert "Unexpected key(s)" in str(error.value) and '"9.weight"' in str(error.value)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])

    partial = small_cnn(seed=3)
    del partial[9]  # no classifier: strict=False reports its keys as unexpected
    result = load_npz_state_dict(partial, path, strict=False)
    assert result.unexpected_keys == ["9.weight", "9.bias"]
    np.testing.assert_array_equal(partial[0].weight.numpy(), model[0].weight.numpy())


class TinyGoogLeNet(nn.Module):
    """Just enough of GoogLeNet's layout to check the aux-head and transform_input rules."""

    def __init__(self, aux_logits):
        super().__init__()
        self.transform_input = False
        self.conv1 = nn.Conv2d(3, 2, 1)
        if aux_logits:
            self.aux1 = nn.Linear(2, 2)
            self.aux2 = nn.Linear(2, 2)
        else:
            self.aux1 = None
            self.aux2 = None
        self.fc = nn.Linear(2, 2)


def test_a_model_without_aux_heads_ignores_their_keys(tmp_path):
    path = save_npz_state_dict(TinyGoogLeNet(aux_logits=True), tmp_path / "with_aux.npz")
    assert any(key.startswith("aux1.") for key in read_npz(path))
    no_aux = TinyGoogLeNet(aux_logits=False)
    result = load_npz_state_dict(no_aux, path)  # strict, yet aux1.*/aux2.* do not count as unexpected
    assert result.unexpected_keys == []
    assert no_aux.transform_input is False  # untouched unless asked

    with_aux = TinyGoogLeNet(aux_logits=True)
    no_aux_path = save_npz_state_dict(no_aux, tmp_path / "no_aux.npz")
    with pytest.raises(StateDictError, match='Missing key.*"aux1.weight"'):
        load_npz_state_dict(with_aux, no_aux_path)  # a head that exists must get its weights

    load_npz_state_dict(no_aux, path, transform_input=True)  # what torchvision's builder does for its weights
    assert no_aux.transform_input is True
    with pytest.raises(ValueError, match="transform_input"):
        load_npz_state_dict(small_cnn(0), save_npz_state_dict(small_cnn(0), tmp_path / "s"), transform_input=True)


def test_files_that_are_not_a_plain_npz_give_clear_errors(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, weight=np.array([{"not": "an array"}], dtype=object))
    with pytest.raises(ValueError, match="pickled objects"):
        read_npz(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        read_npz(single)
    text = tmp_path / "notes.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not an .npz"):
        read_npz(text)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_npz(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="minicnn.nn.Module"):
        load_npz_state_dict({"weight": 1}, pickled)


# --- the export script -----------------------------------------------------------------
def test_export_script_imports_and_explains_itself_without_torchvision(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if it were not installed
    script = load_export_script()
    args = script.parse_args(["resnet18", "--weights", "DEFAULT", "out.npz"])  # the documented order
    assert (args.model, args.weights, args.out) == ("resnet18", "DEFAULT", "out.npz")
    with pytest.raises(SystemExit, match="needs torchvision"):
        script.main(["resnet18", "out.npz"])


def test_torch_weights_through_the_export_format_give_torchs_outputs(tmp_path):
    """What the script writes for a torch model loads into the same minicnn model with the same outputs."""
    torch = pytest.importorskip("torch")
    script = load_export_script()
    torch.manual_seed(0)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1, groups=2), torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 5),
    )
    reference.train()
    with torch.no_grad():
        for _ in range(3):  # move the running statistics away from 0 and 1
            reference(torch.randn(4, 3, 8, 8) * 2 + 1)
    reference.eval()
    path = tmp_path / "torch_small.npz"
    assert script.write_npz(reference.state_dict(), path) == len(reference.state_dict())

    model = small_cnn(seed=5).eval()
    load_npz_state_dict(model, path)
    assert int(model[1].num_batches_tracked.item()) == 3
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with minicnn.no_grad():
        np.testing.assert_allclose(model(minicnn.Tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


# --- torchvision's layouts load into the zoo's models (only for builders that exist) ---------------
def torchvision_like_npz(name, path):
    """An .npz shaped exactly like the export of torchvision's ``name``: its keys, order, shapes, dtypes."""
    rng = np.random.default_rng(0)
    arrays = {}
    for key, shape in state_dict_spec(name):
        if key.endswith("num_batches_tracked"):
            arrays[key] = np.array(7, dtype=np.int64)  # torch's 0-d int64 counter
        else:
            arrays[key] = rng.standard_normal(shape).astype(np.float32)
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("name, file_name", [
    ("resnet18", "resnet18"),
    ("mobilenet_v3_small", "mobilenet_v3_small"),
    ("googlenet", "googlenet"),            # the 364-key checkpoint with aux heads, into a model with them
    ("googlenet", "googlenet_noaux"),      # torchvision's pretrained export: no aux keys
])
def test_a_torchvision_export_loads_strictly_into_the_zoo(tmp_path, name, file_name):
    models = pytest.importorskip("minicnn.models")
    builder = getattr(models, name, None)
    if builder is None:
        pytest.skip(f"minicnn.models.{name} is not written yet")
    if file_name not in load_reference():
        pytest.skip(f"reference.json has no {file_name}")
    model = builder(aux_logits=file_name == "googlenet") if name == "googlenet" else builder()
    arrays = torchvision_like_npz(file_name, tmp_path / f"{file_name}.npz")
    load_npz_state_dict(model, tmp_path / f"{file_name}.npz")
    state = model.state_dict()
    assert list(state) == list(arrays)
    for key, array in arrays.items():
        np.testing.assert_array_equal(state[key], array)


def test_googlenet_without_aux_heads_takes_the_checkpoint_with_them(tmp_path):
    models = pytest.importorskip("minicnn.models")
    if not hasattr(models, "googlenet"):
        pytest.skip("minicnn.models.googlenet is not written yet")
    model = models.googlenet(aux_logits=False)
    arrays = torchvision_like_npz("googlenet", tmp_path / "googlenet.npz")  # 364 keys, aux included
    result = load_npz_state_dict(model, tmp_path / "googlenet.npz")
    assert result.unexpected_keys == []
    assert list(model.state_dict()) == [key for key in arrays if not key.startswith(("aux1.", "aux2."))]
    np.testing.assert_array_equal(model.state_dict()["fc.weight"], arrays["fc.weight"])


def test_export_script_main_asks_torchvision_for_the_named_weights_and_writes_them(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    import enum
    import types

    class ResNet18_Weights(enum.Enum):  # torchvision's name and layout: DEFAULT is another member
        IMAGENET1K_V1 = "v1"
        DEFAULT = "default"

    requests = []

    def get_model(name, weights=None):
        requests.append((name, weights))
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(get_model=get_model, get_model_weights=lambda name: ResNet18_Weights)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    script = load_export_script()

    out = tmp_path / "resnet18.npz"
    script.main(["resnet18", "--weights", "IMAGENET1K_V1", str(out)])
    script.main(["resnet18", "--weights", "none", str(tmp_path / "random.npz")])
    script.main(["resnet18", str(tmp_path / "default.npz")])
    assert requests == [("resnet18", "ResNet18_Weights.IMAGENET1K_V1"), ("resnet18", None), ("resnet18", "DEFAULT")]
    assert "7 arrays" in capsys.readouterr().out  # conv weight and bias, then 5 BN entries
    arrays = read_npz(out)
    assert list(arrays) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                            "1.num_batches_tracked"]
    assert arrays["1.num_batches_tracked"].dtype == np.int64 and arrays["1.num_batches_tracked"].shape == ()
