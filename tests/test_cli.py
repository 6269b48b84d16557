"""The command line, end to end: every subcommand, --help, and one-line errors."""
import json
import os
import subprocess
import sys

import pytest
from fake_datasets import random_images_loader

import minicnn.data
from minicnn import models
from minicnn.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=300):
    """Run ``python -m minicnn`` in a fresh process, as a user would."""
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "minicnn", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["summary"], ["gradcheck"]])
def test_every_subcommand_has_help(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: minicnn")


def test_gradcheck_prints_a_table_of_every_op(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for op in ("conv2d", "max_pool2d", "batch_norm", "local_response_norm", "cross_entropy", "dropout"):
        assert f"\n{op} " in out
    assert out.rstrip().endswith("22 passed, 0 failed")


def test_gradcheck_subset_and_unknown_op(capsys):
    assert main(["gradcheck", "--ops", "relu,linear"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("2 passed, 0 failed")
    assert main(["gradcheck", "--ops", "relu,softplus"]) == 2
    assert "minicnn gradcheck: error: unknown op 'softplus'" in capsys.readouterr().err


def test_summary_prints_the_table_and_totals(capsys):
    assert main(["summary", "resnet18", "--input", "3x64x64", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "layer4.1.conv2" in out and "MACs per image" in out
    assert main(["summary", "--list"]) == 0
    assert "mobilenet_v3_small" in capsys.readouterr().out.split()


@pytest.mark.parametrize("args, message", [
    (["summary", "resnet19"], "minicnn summary: error: get_model: unknown model 'resnet19'"),
    (["summary"], "minicnn summary: error: give a model name, or --list to see them"),
    (["summary", "resnet18", "--input", "3x2"], "argument --input: expected CxHxW such as 3x224x224, got '3x2'"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive int, got '0'"),
    (["train", "--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
    (["train", "--device", "tpu", "--epochs", "1"], "minicnn train: error: --device: device must be 'cpu' or 'cuda'"),
    (["evaluate", "missing.npz"], "minicnn evaluate: error:"),
])
def test_bad_arguments_give_one_line_errors_not_tracebacks(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_train_on_cuda_without_a_gpu_says_why_in_one_line():
    import minicnn.cuda

    if minicnn.cuda.is_available():
        pytest.skip("a GPU is available here: --device cuda trains instead of refusing")
    result = run_cli("train", "--device", "cuda", "--epochs", "1")
    assert result.returncode == 2
    assert "minicnn train: error: --device cuda: CUDA is not available (" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_evaluate_and_resume_end_to_end_on_tiny_settings(tmp_path):
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (the data extra)")
    out = tmp_path / "run"
    common = ["--dataset", "digits", "--width", "0.0625", "--batch-size", "128", "--lr", "0.05",
              "--output", str(out)]
    result = run_cli("train", "--epochs", "1", *common)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    for name in ("last.npz", "best.npz", "curves.png", "confusion.png", "history.json"):
        assert (out / name).exists(), name
    report = json.loads((out / "history.json").read_text())
    assert report["config"]["model"] == "vgg11_bn" and len(report["history"]["train_loss"]) == 1

    evaluated = run_cli("evaluate", str(out / "last.npz"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"accuracy {report['test_accuracy']:.2%}" in evaluated.stdout

    resumed = run_cli("train", "--epochs", "2", "--resume", str(out / "last.npz"), *common)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert len(json.loads((out / "history.json").read_text())["history"]["train_loss"]) == 2


def test_evaluate_on_cuda_without_a_gpu_says_why_in_one_line(tmp_path):
    import minicnn.cuda

    if minicnn.cuda.is_available():
        pytest.skip("a GPU is available here: --device cuda evaluates instead of refusing")
    result = run_cli("evaluate", str(tmp_path / "any.npz"), "--device", "cuda")
    assert result.returncode == 2
    assert "minicnn evaluate: error: --device cuda: CUDA is not available (" in result.stderr


def test_gradcheck_on_cuda_without_a_gpu_says_why(capsys, monkeypatch):
    import sys

    from minicnn import cuda

    monkeypatch.setitem(sys.modules, "cupy", None)
    cuda._reset_probe_for_tests()
    try:
        assert main(["gradcheck", "--ops", "relu", "--device", "cuda"]) == 2
    finally:
        cuda._reset_probe_for_tests()
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


# --- --width: passed as width_mult to the models that have one --------------------------------------------
@pytest.fixture
def colour_data(monkeypatch):
    """load_dataset gives 16 random 8x8 colour images of 4 classes, whatever the name (no files, no extras)."""
    monkeypatch.setattr(minicnn.data, "load_dataset", random_images_loader(3))


def train_tiny(capsys, output, *options):
    """(status, stdout) of one epoch of ``minicnn train`` on colour_data, in this process."""
    status = main(["train", "--dataset", "shapes", "--epochs", "1", "--batch-size", "16", "--output", str(output),
                   *options])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("name", ["vgg11_bn", "mobilenet_v2", "cifar_resnet20"])
def test_train_builds_vgg_mobilenet_and_cifar_nets_at_the_given_width(capsys, colour_data, tmp_path, name):
    status, out = train_tiny(capsys, tmp_path, "--model", name, "--width", "0.25")
    assert status == 0
    parameters = sum(p.numel() for p in models.get_model(name, num_classes=4, width_mult=0.25).parameters())
    assert f"minicnn train: {name} (width 0.25, {parameters:,} parameters) on shapes" in out
    assert "does not apply" not in out
    assert json.loads((tmp_path / "history.json").read_text())["config"]["width"] == 0.25


def test_train_says_when_width_does_not_apply(capsys, colour_data, tmp_path):
    status, out = train_tiny(capsys, tmp_path, "--model", "resnet18", "--width", "0.5")
    assert status == 0
    assert ("minicnn train: --width does not apply to resnet18 (it has no width multiplier); "
            "training it at full width") in out
    parameters = sum(p.numel() for p in models.resnet18(num_classes=4).parameters())
    assert f"minicnn train: resnet18 ({parameters:,} parameters)" in out
