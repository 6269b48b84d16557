"""The distributed tests under ``mpiexec -n 2``, and what a user launching jobs sees: failures end the job.

These launch ``mpiexec`` as a subprocess, so they run only in the plain (one-rank) pytest run.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minicnn import distributed

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def mpiexec():
    """The mpiexec beside this Python (the `distributed` extra's MPICH wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: pip install 'minicnn[distributed]' (brings the mpich wheel)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install 'minicnn[distributed]'")
    if distributed.world().size > 1:
        pytest.skip("already running under mpiexec: the launches happen from the one-rank run")
    return found


def launch(arguments, timeout=600, cwd=ROOT):
    """Run an mpiexec command line; returns (exit status, stdout + stderr, seconds)."""
    environment = dict(os.environ, CI="true", PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    result = subprocess.run(arguments, check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            env=environment)
    return result.returncode, result.stdout + result.stderr, time.perf_counter() - started


def test_the_distributed_tests_pass_on_two_ranks(tmp_path):
    runner = mpiexec()
    ranks = []
    for rank in range(2):  # MPMD: each rank its own pytest temporary folder
        ranks += [":"] if ranks else []
        ranks += ["-n", "1", sys.executable, "-m", "mpi4py", "-m", "pytest", str(HERE), "-q", "-rs",
                  "-p", "no:cacheprovider", f"--basetemp={tmp_path / f'rank{rank}'}"]
    status, output, _ = launch([runner, *ranks])
    assert status == 0, output[-6000:]
    assert "runs under mpiexec" not in output  # the two-rank-only tests ran rather than skipped
    assert output.count(" passed") == 2, output[-3000:]  # one summary line per rank


SCRIPT_THAT_FAILS_ON_RANK_1 = """
import numpy as np
from minicnn import distributed
world = distributed.init()
if world.rank == 1:
    raise ValueError("rank 1 gave up on purpose")
world.allreduce(np.ones(3))  # rank 0 would wait here forever if the job were not ended
print("rank 0 should never get here")
"""


@pytest.mark.parametrize("runner", [[], ["-m", "mpi4py"]],
                         ids=["python script.py", "python -m mpi4py script.py"])
def test_a_rank_that_raises_ends_the_job_with_its_message_once(tmp_path, runner):
    script = tmp_path / "fails.py"
    script.write_text(SCRIPT_THAT_FAILS_ON_RANK_1)
    command = [mpiexec(), "-n", "2", sys.executable, *runner, str(script)]
    status, output, seconds = launch(command, timeout=120)
    assert status != 0
    assert output.count("ValueError: rank 1 gave up on purpose") == 1, output
    assert "should never get here" not in output
    assert seconds < 60


def test_train_refuses_a_batch_the_ranks_cannot_split(tmp_path):
    status, output, _ = launch([mpiexec(), "-n", "3", sys.executable, "-m", "minicnn", "train",
                                "--batch-size", "64", "--output", str(tmp_path / "run")], timeout=120)
    assert status == 2, output
    message = "--batch-size 64 (the global batch) does not split evenly over 3 ranks"
    assert output.count(message) == 1, output
    assert "such as 63 or 66" in output


def test_a_usage_error_is_printed_once_not_once_per_rank():
    status, output, _ = launch([mpiexec(), "-n", "2", sys.executable, "-m", "minicnn", "train",
                                "--epochs", "0"], timeout=120)
    assert status == 2
    assert output.count("argument --epochs: expected a positive int") == 1, output


def train_on_two_ranks(output, epochs, resume=None, options=()):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "minicnn", "train", "--dataset", "digits",
               "--epochs", str(epochs), "--batch-size", "32", "--width", "0.125", "--output", str(output),
               *options]
    status, text, _ = launch(command + (["--resume", str(resume)] if resume else []), timeout=300)
    assert status == 0, text[-4000:]
    return text


def test_train_on_two_ranks_writes_one_run_and_resumes_it(tmp_path):
    """The run's files come from rank 0 alone; a resumed run goes on from the checkpoint's epoch (that
    a resumed run equals an uninterrupted one is test_training.py's, which can stop a run mid-schedule),
    here with SyncBatchNorm layers, which load a checkpoint of BatchNorm2d ones."""
    text = train_on_two_ranks(tmp_path / "run", epochs=1)
    assert text.count("test accuracy") == 1 and "2 ranks of 16 images" in text
    first = json.loads((tmp_path / "run" / "history.json").read_text())
    assert first["ranks"] == 2 and len(first["history"]["train_loss"]) == 1
    assert {"last.npz", "curves.png", "confusion.png"} <= set(os.listdir(tmp_path / "run"))
    text = train_on_two_ranks(tmp_path / "run", epochs=2, resume=tmp_path / "run" / "last.npz",
                              options=["--sync-bn"])
    assert text.count("resuming") == 1 and text.count("test accuracy") == 1
    resumed = json.loads((tmp_path / "run" / "history.json").read_text())
    assert resumed["history"]["train_loss"][0] == first["history"]["train_loss"][0]
    assert len(resumed["history"]["train_loss"]) == 2
    status, text, _ = launch([mpiexec(), "-n", "2", sys.executable, "-m", "minicnn", "evaluate",
                              str(tmp_path / "run" / "last.npz")], timeout=120)
    assert status == 0 and text.count("test (360 images): accuracy") == 1, text


SCRIPT_THAT_REDUCES_FOREVER = """
import time
import numpy as np
from minicnn import distributed
world = distributed.init()
for step in range(10**9):
    world.allreduce(np.ones(1000))
    if step == 10 and world.rank == 0:
        print("reducing", flush=True)
    if world.rank == 1:
        time.sleep(0.001)  # rank 1 in Python, rank 0 mostly waiting inside the allreduce
"""


@pytest.mark.parametrize("what", ["script", "minicnn train"])
def test_ctrl_c_ends_every_rank_even_one_waiting_in_an_allreduce(tmp_path, what):
    if what == "script":
        script = tmp_path / "reduces.py"
        script.write_text(SCRIPT_THAT_REDUCES_FOREVER)
        command, started_when = [sys.executable, str(script)], "reducing"
    else:
        command = [sys.executable, "-m", "minicnn", "train", "--output", str(tmp_path / "run")]
        started_when = "minicnn train: vgg11_bn"
    job = subprocess.Popen([mpiexec(), "-n", "2", *command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=ROOT, env=dict(os.environ, CI="true", PYTHONUNBUFFERED="1"))
    try:
        lines = []
        for line in job.stdout:  # until the ranks are at work
            lines.append(line)
            if started_when in line:
                break
        time.sleep(2)
        job.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends to mpiexec
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    output = "".join(lines) + output
    assert job.returncode == 130, output
    assert output.count("KeyboardInterrupt" if what == "script" else "minicnn train: interrupted") == 1, output


def test_without_mpi4py_a_job_of_two_ranks_says_what_to_install_once(tmp_path):
    hidden = tmp_path / "hidden" / "mpi4py"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('mpi4py is hidden by this test')\n")
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "minicnn", "train", "--output", str(tmp_path / "run")]
    environment = dict(os.environ, CI="true", PYTHONPATH=str(hidden.parent))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=environment,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 10, output  # cli_errors: a missing package
    assert output.count("pip install 'minicnn[distributed]'") == 1, output
