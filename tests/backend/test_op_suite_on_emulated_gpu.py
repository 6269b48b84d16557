"""The whole op suite (tests/functions) reruns unchanged on device "cuda", with the GPU emulated.

``MINICNN_TEST_DEVICE=emulated`` (tests/conftest.py) installs a stand-in CuPy
whose RawModule runs the unmodified kernels/*.cu on the CPU emulator and makes
"cuda" the default device, so every ``compare_with_torch`` and ``gradcheck`` in
tests/functions computes through the CUDA backend.  On a machine with a GPU the
same command with ``MINICNN_TEST_DEVICE=cuda`` is the real thing.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_op_suite_passes_on_the_emulated_gpu():
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        pytest.skip(f"CUDA emulation needs {compiler} (a C++20 compiler); none found")
    environment = dict(os.environ, MINICNN_TEST_DEVICE="emulated")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "tests/functions"],
                         cwd=REPO, env=environment, capture_output=True, text=True, timeout=1800)
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    assert "minicnn test device: emulated" in run.stdout, tail
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, tail
    assert counts["passed"] >= 150, tail
    # Only the tests marked cpu_only (NumPy operands) and, without torch, the oracle tests may skip.
    unexpected = [line for line in run.stdout.splitlines()
                  if line.startswith("SKIPPED") and "cpu only:" not in line and "PyTorch" not in line]
    assert not unexpected, "\n".join(unexpected)
