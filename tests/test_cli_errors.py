"""The command line never prints a traceback for a user's mistake or the machine's limits.

Each expected failure is one line on stderr, naming the problem and what to do, with an exit status
of its own (the table in minicnn/cli_errors.py); --debug adds the traceback; Ctrl-C says "interrupted" and
exits 130.  Most checks run ``main(argv)`` in this process, with the disk, the network and memory
failing on cue through monkeypatch; a few run ``python -m minicnn`` as a user would.
"""
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error

import numpy as np
import pytest
from fake_datasets import random_images_loader

import minicnn.data
import minicnn.train
from minicnn import cli
from minicnn.cli import main
from minicnn.data import ChecksumError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--width", "0.0625", "--batch-size", "8"]  # with tiny_data: a training step takes milliseconds


def one_line_error(err, status, *phrases):
    """Assert ``err`` is one line, no traceback, naming each phrase; return it."""
    assert err.endswith("\n") and err.count("\n") == 1, f"status {status}, stderr not one line:\n{err}"
    assert "Traceback" not in err
    assert err.startswith("minicnn")
    for phrase in phrases:
        assert phrase in err, f"{phrase!r} not in {err!r}"
    return err


def run(capsys, *argv):
    """(status, stdout, stderr) of ``main(argv)`` in this process."""
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def popen_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "minicnn", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def run_cli(*args, timeout=300):
    """(status, stdout, stderr) of ``python -m minicnn`` in a fresh process."""
    process = popen_cli(*args)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture
def tiny_data(monkeypatch):
    """load_dataset gives 16 random 8x8 grey images of 4 classes, whatever the name (no files, no extras)."""
    monkeypatch.setattr(minicnn.data, "load_dataset", random_images_loader(1))


@pytest.fixture
def paths(tmp_path):
    """A text file, an empty folder, and an .npz that is not a minicnn checkpoint."""
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    (tmp_path / "folder").mkdir()
    np.savez(tmp_path / "weights.npz", w=np.zeros(3))
    return {"file": tmp_path / "notes.txt", "dir": tmp_path / "folder", "npz": tmp_path / "weights.npz",
            "out": tmp_path / "run"}


# --- the sweep: bad invocations, no patching of minicnn itself ------------------------------------------
BAD_INVOCATIONS = [
    # argparse: status 2, "see ... --help"
    ([], 2, "the following arguments are required: COMMAND"),
    (["fit"], 2, "invalid choice: 'fit'"),
    (["train", "--lr", "inf"], 2, "argument --lr: expected a positive finite number, got 'inf'"),
    (["train", "--lr", "nan"], 2, "argument --lr: expected a positive finite number, got 'nan'"),
    (["train", "--lr", "-0.1"], 2, "argument --lr: expected a positive finite number, got '-0.1'"),
    (["train", "--lr", "0"], 2, "argument --lr"),
    (["train", "--lr", "fast"], 2, "argument --lr"),
    (["train", "--epochs", "0"], 2, "argument --epochs: expected a positive int, got '0'"),
    (["train", "--epochs", "1.5"], 2, "argument --epochs: expected a positive int, got '1.5'"),
    (["train", "--epochs", "ten"], 2, "argument --epochs"),
    (["train", "--batch-size", "-4"], 2, "argument --batch-size"),
    (["train", "--batch-size", "1e3"], 2, "argument --batch-size"),
    (["train", "--seed", "-1"], 2, "argument --seed: expected an int >= 0"),
    (["train", "--momentum", "-0.9"], 2, "argument --momentum"),
    (["train", "--weight-decay", "inf"], 2, "argument --weight-decay"),
    (["train", "--width", "0"], 2, "argument --width"),
    (["train", "--optimizer", "lbfgs"], 2, "argument --optimizer: invalid choice"),
    (["train", "--dataset", "imagenet"], 2, "argument --dataset: invalid choice: 'imagenet'"),
    (["train", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["summary", "vgg16", "--input", "3x224"], 2, "argument --input: expected CxHxW"),
    (["summary", "vgg16", "--input", "0x224x224"], 2, "argument --input"),
    (["summary", "vgg16", "--num-classes", "-5"], 2, "argument --num-classes"),
    (["evaluate"], 2, "the following arguments are required: checkpoint"),
    (["evaluate", "x.npz", "--batch-size", "0"], 2, "argument --batch-size"),
    # minicnn's own checks of the request: status 2 too
    (["gradcheck", "--ops", "relu,softplus"], 2, "unknown op 'softplus'"),
    (["summary", "resnet19"], 2, "unknown model 'resnet19'"),
    (["summary"], 2, "give a model name, or --list"),
    (["summary", "alexnet", "--input", "3x32x32"], 2, "alexnet"),
    (["train", "--device", "tpu"], 2, "--device: device must be 'cpu' or 'cuda'"),
    (["evaluate", "missing.npz"], 2, "no checkpoint at 'missing.npz'"),
    # a path of the wrong kind: 3
    (["train", *TINY, "--output", "{file}"], 3, "is a file, not a folder"),
    (["train", *TINY, "--output", "{file}/run"], 3, "Not a directory"),
    (["train", *TINY, "--resume", "{dir}", "--output", "{out}"], 3, "is a folder, not a checkpoint file"),
    (["train", *TINY, "--data-root", "{file}"], 3, "--data-root"),
    (["evaluate", "{dir}"], 3, "is a folder, not a checkpoint file"),
    # not a minicnn checkpoint: 8
    (["evaluate", "{file}"], 8, "incompatible checkpoint: read_checkpoint_extra:"),
    (["evaluate", "{npz}"], 8, "incompatible checkpoint"),
    (["train", *TINY, "--resume", "{file}", "--output", "{out}"], 8, "incompatible checkpoint"),
    # too large to trace: 6, with the estimate and what is available
    (["summary", "resnet18", "--input", "3x40000x40000"], 6, "out of memory: summary (ResNet)"),
]


@pytest.mark.parametrize("argv, status, phrase", BAD_INVOCATIONS,
                         ids=[" ".join(argv) or "(nothing)" for argv, _, _ in BAD_INVOCATIONS])
def test_each_bad_invocation_is_one_line_and_its_own_status(argv, status, phrase, capsys, tiny_data, paths):
    argv = [arg.format(**paths) for arg in argv]
    code, _, err = run(capsys, *argv)
    assert code == status, err
    one_line_error(err, status, phrase)
    if status == 2:
        assert err.rstrip().endswith("--help")


def test_the_sweep_covers_at_least_25_distinct_invocations():
    assert len({tuple(argv) for argv, _, _ in BAD_INVOCATIONS}) >= 25


# --- failures from deep inside a run, made to happen on cue ------------------------------------------------
def _raise(error):
    def fail(*args, **kwargs):
        raise error
    return fail


def _run_out_of_address_space(*args, **kwargs):
    return np.empty(2**48, dtype=np.float32)  # 1 PiB: more than any machine can map; NumPy's own MemoryError


FIT_FAILURES = [
    (minicnn.train.NonFiniteLossError("fit: the loss became nan at epoch 1, step 3", 1, 3, float("nan"),
                                      "features.0.weight", False), 9, ["training diverged", "--lr"]),
    (FloatingPointError("fit: the loss diverged"), 9, ["training diverged: fit: the loss diverged"]),
    (MemoryError(), 6, ["out of memory", "--batch-size"]),
    (OSError(errno.ENOSPC, "No space left on device", "runs/x/last.npz"), 5,
     ["No space left on device: 'runs/x/last.npz'", "free some space"]),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), 5, ["Disk quota exceeded"]),
    (PermissionError(errno.EACCES, "Permission denied", "runs/x"), 4, ["Permission denied: 'runs/x'"]),
    (OSError(errno.EROFS, "Read-only file system", "runs/x"), 4, ["Read-only file system"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "runs/x/last.npz"), 3, ["Is a directory"]),
    (ConnectionError("download_file: the connection dropped"), 7, ["download failed", "network"]),
    (TimeoutError("timed out"), 7, ["download failed: timed out"]),
    (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")), 7,
     ["download failed: [Errno -2] Name or service not known"]),
    (ChecksumError("download_file: x has SHA-256 ab, expected cd"), 7, ["download failed", "SHA-256"]),
    (ImportError("load_dataset: 'digits' needs scikit-learn"), 10, ["missing package", "scikit-learn"]),
    (OSError(errno.EIO, "Input/output error", "runs/x/last.npz"), 11, ["Input/output error"]),
    (TypeError("unsupported operand type(s) for +: 'Tensor' and 'str'"), 70,
     ["internal error (a bug in minicnn): TypeError: unsupported operand", "--debug"]),
    (KeyError("lr"), 70, ["a bug", "KeyError"]),
]


@pytest.mark.parametrize("error, status, phrases", FIT_FAILURES,
                         ids=[type(error).__name__ for error, _, _ in FIT_FAILURES])
def test_a_failure_during_training_is_one_line_with_its_status(error, status, phrases, capsys, monkeypatch,
                                                             tiny_data, paths):
    monkeypatch.setattr(minicnn.train, "fit", _raise(error))
    code, _, err = run(capsys, "train", *TINY, "--output", paths["out"])
    assert code == status
    one_line_error(err, status, *phrases)


def test_numpy_running_out_of_memory_is_status_6(capsys, monkeypatch, tiny_data, paths):
    monkeypatch.setattr(minicnn.train, "fit", _run_out_of_address_space)
    code, _, err = run(capsys, "train", *TINY, "--output", paths["out"])
    assert code == 6
    one_line_error(err, 6, "out of memory: Unable to allocate")


def test_a_missing_network_while_loading_data_is_status_7(capsys, monkeypatch, paths):
    offline = urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(minicnn.data, "load_dataset", _raise(offline))
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--download", "--output", paths["out"])
    assert code == 7
    one_line_error(err, 7, "Temporary failure in name resolution", "--data-root")


def test_a_full_disk_while_writing_the_checkpoint_is_status_5(capsys, monkeypatch, tiny_data, paths):
    def savez(file, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez)  # what save_checkpoint writes with, after a real epoch
    code, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--output", paths["out"])
    assert code == 5
    one_line_error(err, 5, "No space left on device", "--output")


def test_a_very_long_message_is_cut_but_stays_one_line(capsys, monkeypatch, tiny_data, paths):
    monkeypatch.setattr(minicnn.train, "fit", _raise(ValueError("fit: " + "mismatch; " * 500)))
    code, _, err = run(capsys, "train", *TINY, "--output", paths["out"])
    assert code == 2
    assert len(one_line_error(err, 2, "(--debug shows it all)")) < 1000


def test_a_reader_that_goes_away_ends_the_command_quietly(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "summary", _raise(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert run(capsys, "summary", "--list") == (cli.READER_GONE, "", "")


def test_every_status_is_listed_in_the_help_epilog(capsys):
    assert main(["--help"]) == 0
    epilog = capsys.readouterr().out.split("Exit status:")[1]
    listed = {int(line.split()[0]) for line in epilog.strip().splitlines()}
    assert {failure.status for failure in cli.FAILURES} | {0, 1, cli.INTERRUPTED, cli.READER_GONE} == listed
    assert len({failure.status for failure in cli.FAILURES}) == len(cli.FAILURES)


# --- --debug ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_command_adds_the_traceback(where, capsys, monkeypatch, tiny_data, paths):
    monkeypatch.setattr(minicnn.train, "fit", _raise(FloatingPointError("fit: the loss became inf")))
    argv = ["train", *TINY, "--output", paths["out"]]
    code, _, err = run(capsys, *(["--debug", *argv] if where == "before" else [*argv, "--debug"]))
    assert code == 9
    assert err.startswith("Traceback (most recent call last):")
    assert "FloatingPointError: fit: the loss became inf" in err
    assert err.splitlines()[-1].startswith("minicnn train: error: training diverged")


def test_debug_in_a_fresh_process_shows_where_it_failed(paths):
    code, _, err = run_cli("evaluate", paths["file"], "--debug")
    assert code == 8
    assert "Traceback (most recent call last):" in err and "checkpoint.py" in err


# --- a resume with nothing left to do ----------------------------------------------------------------------
def test_resuming_a_finished_run_says_so_and_writes_nothing(capsys, tiny_data, paths):
    common = ["train", *TINY, "--output", paths["out"]]
    assert run(capsys, *common, "--epochs", "2")[0] == 0
    message = "already trained 2 epochs; pass --epochs N with N > 2 to continue"
    last = paths["out"] / "last.npz"
    written = {path.name: path.stat().st_mtime_ns for path in paths["out"].iterdir()}
    for epochs in ("2", "1"):
        code, out, err = run(capsys, *common, "--epochs", epochs, "--resume", last)
        assert code == 0 and err == ""
        assert out == f"minicnn train: {last} {message}\n"
    assert {path.name: path.stat().st_mtime_ns for path in paths["out"].iterdir()} == written


def test_resuming_with_another_width_is_an_incompatible_checkpoint(capsys, tiny_data, paths):
    assert run(capsys, "train", *TINY, "--epochs", "1", "--output", paths["out"])[0] == 0
    code, _, err = run(capsys, "train", "--width", "0.125", "--batch-size", "8", "--epochs", "2",
                       "--resume", paths["out"] / "last.npz", "--output", paths["out"])
    assert code == 8
    one_line_error(err, 8, "incompatible checkpoint", "size mismatch", "same --model, --width")


# --- Ctrl-C ----------------------------------------------------------------------------------------------
def test_ctrl_c_during_training_is_interrupted_and_130(capsys, monkeypatch, tiny_data, paths):
    monkeypatch.setattr(minicnn.train, "fit", _raise(KeyboardInterrupt()))
    code, _, err = run(capsys, "train", *TINY, "--output", paths["out"])
    assert (code, err) == (130, "minicnn train: interrupted\n")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back to the caller


def test_ctrl_c_while_the_error_is_being_printed_still_ends_quietly(capsys, monkeypatch, tiny_data, paths):
    said = []

    def say(line):
        if not said:
            said.append(None)
            raise KeyboardInterrupt  # the user presses Ctrl-C just as the error line goes out
        said.append(line)

    monkeypatch.setattr(cli, "say", say)
    monkeypatch.setattr(minicnn.train, "fit", _raise(MemoryError()))
    assert main(["train", *TINY, "--output", str(paths["out"])]) == 130
    assert said == [None, "minicnn train: interrupted"]


def test_ctrl_c_pressed_twice_in_a_fresh_process_gives_one_word_and_130(tmp_path):
    pytest.importorskip("sklearn", reason="trains on the digits dataset (the data extra)")
    process = popen_cli("train", "--dataset", "digits", "--width", "0.0625", "--epochs", "50",
                        "--output", tmp_path / "run")
    first = process.stdout.readline()
    assert first.startswith("minicnn train:"), first + process.communicate(timeout=60)[1]  # training now
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # the impatient second press, during the cleanup
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (130, "minicnn train: interrupted\n"), err


# --- the whole program, as a user runs it -----------------------------------------------------------------
def test_summary_refuses_vgg16_on_a_huge_input_with_the_estimate_in_a_fresh_process():
    code, out, err = run_cli("summary", "vgg16", "--input", "3x20000x20000", timeout=120)
    assert code == 6 and out == ""
    one_line_error(err, 6, "out of memory: summary (VGG): an input of (1, 3, 20000, 20000) needs about",
                   "GiB of memory is available", "--input")


def test_nan_learning_rate_in_a_fresh_process():
    code, out, err = run_cli("train", "--lr", "nan")
    assert (code, out) == (2, "")
    one_line_error(err, 2, "minicnn train: error: argument --lr: expected a positive finite number, "
                           "got 'nan'; see minicnn train --help")


def test_a_diverging_run_in_a_fresh_process_is_one_line_without_numpy_warnings(tmp_path):
    pytest.importorskip("sklearn", reason="trains on the digits dataset (the data extra)")
    code, _, err = run_cli("train", "--dataset", "digits", "--width", "0.0625", "--batch-size", "128",
                           "--lr", "1e6", "--epochs", "1", "--output", tmp_path / "run")
    assert code == 9
    one_line_error(err, 9, "training diverged: fit: the loss", "; try a smaller --lr")
