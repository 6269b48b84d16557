"""benchmarks/torch_models.py and benchmarks/bench_models.py: the transcribed torchvision models have
torchvision's state_dict, and ``bench_models.py --quick`` writes every model's numbers, table and plot."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="the model benchmark measures minicnn against PyTorch, which is not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")
MODELS = ["vgg11_bn", "vgg16", "resnet18", "resnet50", "mobilenet_v2"]


def load_torch_models():
    spec = importlib.util.spec_from_file_location("torch_models", os.path.join(BENCHMARKS, "torch_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch_models = load_torch_models()


@pytest.mark.parametrize("name", MODELS)
def test_transcribed_model_has_torchvisions_state_dict(name):
    torch_models.check_against_torchvision(name, torch_models.MODELS[name]())


def test_check_against_torchvision_names_the_first_difference():
    with pytest.raises(ValueError, match=r"entry 6 is layer1\.0\.conv1\.weight \(64, 64, 3, 3\); torchvision has "
                                         r"layer1\.0\.conv1\.weight \(64, 64, 1, 1\)"):
        torch_models.check_against_torchvision("resnet50", torch_models.resnet18())


def test_check_against_torchvision_resizes_only_the_classifier():
    model = torch_models.vgg16(num_classes=10)
    torch_models.check_against_torchvision("vgg16", model, num_classes=10)
    with pytest.raises(ValueError, match=r"classifier\.6\.weight \(10, 4096\); torchvision has .* \(1000, 4096\)"):
        torch_models.check_against_torchvision("vgg16", model)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run (about two minutes on 2 cores): its JSON, markdown and PNG paths."""
    folder = tmp_path_factory.mktemp("bench_models")
    paths = {kind: str(folder / f"models.{kind}") for kind in ("json", "md", "png")}
    command = [sys.executable, os.path.join(BENCHMARKS, "bench_models.py"), "--quick", "--json", paths["json"],
               "--markdown", paths["md"], "--plot", paths["png"]]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"bench_models.py --quick failed:\n{done.stdout}\n{done.stderr}"
    with open(paths["json"]) as file:
        report = json.load(file)
    with open(paths["md"]) as file:
        markdown = file.read()
    return dict(paths, report=report, markdown=markdown, stdout=done.stdout)


@pytest.mark.slow
def test_quick_run_times_every_model_and_step_in_both_libraries(quick_run):
    rows = [row for row in quick_run["report"]["results"] if row["device"] == "cpu"]
    assert sorted((row["model"], row["step"]) for row in rows) == sorted(
        (name, step) for name in MODELS for step in ("infer", "train"))
    for row in rows:
        for library in ("minicnn", "torch"):
            assert row[f"{library}_img_s"] > 0, row
            assert row[f"{library}_peak_mib"] > 0, row
        assert row["logit_error"] <= 1e-3, row


@pytest.mark.slow
def test_quick_run_measures_the_memory_case_and_records_the_machine(quick_run):
    report = quick_run["report"]
    [case] = report["memory_case"]
    assert case["minicnn_peak_mib"] > 0 and case["torch_peak_mib"] > 0, case
    assert (case["model"], case["size"], case["batch"]) == ("vgg16", 64, 2)
    meta = report["meta"]
    assert meta["threads"] >= 1 and meta["cores"] >= 1, meta
    assert all(meta[key] for key in ("platform", "cpu", "python", "numpy", "torch", "date")), meta


@pytest.mark.slow
def test_quick_run_writes_a_markdown_row_per_model_and_a_plot(quick_run):
    lines = quick_run["markdown"].splitlines()
    for name in MODELS:
        for step in ("infer", "train"):
            assert sum(line.replace(" ", "").startswith(f"|{name}|{step}|cpu|") for line in lines) == 1, name
    with open(quick_run["png"], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(quick_run["png"]) > 1000
