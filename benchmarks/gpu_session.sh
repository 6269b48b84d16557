#!/usr/bin/env bash
# Everything a session with a lent GPU runs, in one call (a few minutes on an H100):
#
#     bash benchmarks/gpu_session.sh [OUTDIR]        # OUTDIR: $OUT if set, else benchmarks/results
#
# 1. the machine: nvidia-smi, CuPy and its CUDA (gpu_machine.txt);
# 2. the GPU tests: tests/backend/test_cuda_ops.py (its real-GPU half runs here) and the whole op
#    suite rerun on device "cuda" (MINICNN_TEST_DEVICE=cuda pytest tests/functions): JUnit XML + log;
#    tests/distributed/test_communicator.py: the NCCL communicator at world size 1;
# 3. benchmarks/bench_gpu.py: every kernel against NumPy, GEMM, ops and a training step (gpu_ops.json).
# minicnn runs from the checkout (PYTHONPATH), so nothing is installed: the machine needs NumPy, CuPy,
# pytest, hypothesis, tqdm and matplotlib, and PyTorch for the oracle tests. Copy what lands in OUTDIR
# to benchmarks/results/ and commit it.
set -u -o pipefail
out=${1:-${OUT:-benchmarks/results}}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CI=true
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    "$python" -c "import cupy; print('cupy', cupy.__version__); cupy.show_config()"
    "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} > "$out/gpu_machine.txt" 2>&1
status=0
"$python" -m pytest -p no:cacheprovider -rs tests/backend/test_cuda_ops.py \
    --junitxml="$out/gpu_cuda_ops.xml" 2>&1 | tee "$out/gpu_tests.log" || status=1
MINICNN_TEST_DEVICE=cuda "$python" -m pytest -p no:cacheprovider -rs tests/functions \
    --junitxml="$out/gpu_functions.xml" 2>&1 | tee -a "$out/gpu_tests.log" || status=1
# NCCL at world size 1 (one GPU; NCCL refuses two ranks on one device); the 2-rank tests need mpi4py.
"$python" -m pytest -p no:cacheprovider -rs tests/distributed/test_communicator.py \
    --junitxml="$out/gpu_distributed.xml" 2>&1 | tee -a "$out/gpu_tests.log" || status=1
"$python" benchmarks/bench_gpu.py --json "$out/gpu_ops.json" 2>&1 | tee "$out/gpu_bench.log" || status=1
echo "gpu_session: $( ((status)) && echo 'something FAILED (see the logs)' || echo 'all passed'); files in $out"
exit $status
