"""Matrix product on the GPU: cuBLAS by default, our teaching GEMM (kernels/gemm.cu) when asked.

``use_teaching_gemm`` flips the switch; the switch lives here, in
``_teaching_gemm``, and nowhere else: ``matmul`` reads it on every call and
``teaching_gemm_enabled()`` reports it.  Batched operands (G, M, K) @ (G, K, N)
are grouped convolution's product.
"""
from minicnn.backend.cuda.launch import GEMM_BLOCKED_TILE, GEMM_TILE
from minicnn.backend.cuda.runtime import SUPPORTED_DTYPES as _SUFFIX
from minicnn.backend.cuda.runtime import KernelCall, import_cupy

__all__ = ["use_teaching_gemm", "teaching_gemm_enabled", "matmul", "gemm"]

_teaching_gemm = False

# --- GEMM: cuBLAS by default, our SGEMM when asked ----------------------------
# The two teaching kernels of gemm.cu and the rows and columns of C each block computes.
GEMM_KERNELS = {"tiled": ("gemm", GEMM_TILE), "blocked": ("gemm_blocked", GEMM_BLOCKED_TILE)}


def use_teaching_gemm(enabled=True):
    """Route ``matmul`` through kernels/gemm.cu's register-blocked kernel instead of cuBLAS.

    The teaching kernels are for reading and for comparing with cuBLAS; 2-D products and
    batches of equal-size ones (grouped convolution) take them, anything else cuBLAS.

    >>> minicnn.backend.cuda.use_teaching_gemm(True)
    """
    global _teaching_gemm
    _teaching_gemm = bool(enabled)


def teaching_gemm_enabled():
    return _teaching_gemm


def gemm(a, b, kernel="blocked"):
    """C = A @ B with one of gemm.cu's teaching kernels.

    ``kernel="tiled"``: 16×16 shared-memory tiles, one C entry per thread (lesson 1);
    ``"blocked"``: 128×128 tiles, an 8×8 patch of C per thread in registers (lesson 2).
    2-D (M, K) @ (K, N), or a batch of them, (G, M, K) @ (G, K, N) — the shape of
    grouped convolution's product — one grid layer (blockIdx.z) per batch entry.
    """
    call = KernelCall("gemm", a, b)
    if kernel not in GEMM_KERNELS:
        raise ValueError(f"gemm: kernel must be one of {sorted(GEMM_KERNELS)}, got {kernel!r}")
    op, rows_per_block = GEMM_KERNELS[kernel]
    batched = a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0]
    if not (batched or (a.ndim == 2 and b.ndim == 2)) or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: expected (M, K) @ (K, N) or (G, M, K) @ (G, K, N), got {call.shapes}")
    batch = a.shape[0] if batched else 1
    (m, k), n = a.shape[-2:], b.shape[-1]
    if -(-m // rows_per_block) > 65535 or batch > 65535:
        raise ValueError(f"gemm: the grid holds at most 65535 row tiles (M <= {65535 * rows_per_block:,} for the "
                         f"{kernel} kernel) and 65535 batch entries, got M={m}, batch={batch} for inputs "
                         f"{call.shapes}")
    c = call.empty((batch, m, n) if batched else (m, n))
    call.launch((m, n, batch), a, b, c, m, n, k, kernel=op)
    return c


def matmul(a, b):
    """a @ b: cuBLAS (``cupy.matmul``), or the teaching tiled GEMM when switched on (2-D or same-size batches)."""
    teachable = (a.ndim == b.ndim == 2) or (a.ndim == b.ndim == 3 and a.shape[0] == b.shape[0])
    if _teaching_gemm and teachable and a.dtype == b.dtype and a.dtype in _SUFFIX:
        return gemm(a, b)
    return import_cupy("matmul").matmul(a, b)
