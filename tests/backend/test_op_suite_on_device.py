"""The whole op suite (tests/functions) reruns unchanged on device "cuda".

Parametrised over two GPUs, as tests/backend/test_cuda_ops.py is:

* ``emulated``: ``MINICNN_TEST_DEVICE=emulated`` (tests/conftest.py) installs a
  stand-in CuPy whose RawModule runs the unmodified kernels/*.cu on the CPU
  emulator and makes "cuda" the default device, so every ``compare_with_torch``
  and ``gradcheck`` in tests/functions computes through the CUDA backend.
* ``cuda``: ``MINICNN_TEST_DEVICE=cuda``, a real GPU through CuPy; skipped, with
  the reason, where there is none.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn import cuda

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("test_device", ["emulated", "cuda"])
def test_the_op_suite_passes_on_the_device(test_device):
    if test_device == "cuda" and not cuda.is_available():
        pytest.skip(f"CUDA not available: {cuda.unavailable_reason()}")
    compiler = os.environ.get("CXX", "g++")
    if test_device == "emulated" and shutil.which(compiler) is None:
        pytest.skip(f"CUDA emulation needs {compiler} (a C++20 compiler); none found")
    environment = dict(os.environ, MINICNN_TEST_DEVICE=test_device)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "tests/functions"],
                         cwd=REPO, env=environment, capture_output=True, text=True, timeout=1800, check=False)
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    assert f"minicnn test device: {test_device}" in run.stdout, tail
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, tail
    assert counts["passed"] >= 150, tail
    # Only the tests marked cpu_only (NumPy operands) and, without torch, the oracle tests may skip.
    unexpected = [line for line in run.stdout.splitlines()
                  if line.startswith("SKIPPED") and "cpu only:" not in line and "PyTorch" not in line]
    assert not unexpected, "\n".join(unexpected)
