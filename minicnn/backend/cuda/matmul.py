"""Matrix product on the GPU: cuBLAS by default, our shared-memory tiled GEMM (kernels/gemm.cu) when asked.

``use_teaching_gemm`` flips the switch; the switch lives here, in
``_teaching_gemm``, and nowhere else: ``matmul`` reads it on every call and
``teaching_gemm_enabled()`` reports it.  Batched operands (G, M, K) @ (G, K, N)
are grouped convolution's product.
"""
from minicnn.backend.cuda.runtime import SUPPORTED_DTYPES as _SUFFIX
from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

__all__ = ["use_teaching_gemm", "teaching_gemm_enabled", "matmul", "gemm"]

_teaching_gemm = False

# --- GEMM: cuBLAS by default, our tiled SGEMM when asked ----------------------
def use_teaching_gemm(enabled=True):
    """Route 2-D ``matmul`` through kernels/gemm.cu's shared-memory tiled kernel instead of cuBLAS.

    The teaching kernel is for reading and for comparing with cuBLAS, not for
    speed; batched (3-D and up) products always use ``cupy.matmul``.

    >>> minicnn.backend.cuda.use_teaching_gemm(True)
    """
    global _teaching_gemm
    _teaching_gemm = bool(enabled)


def teaching_gemm_enabled():
    return _teaching_gemm


def gemm(a, b):
    """C = A @ B with the teaching shared-memory tiled kernel (gemm.cu).

    2-D (M, K) @ (K, N), or a batch of them, (G, M, K) @ (G, K, N) — the shape of
    grouped convolution's product — one grid layer (blockIdx.z) per batch entry.
    """
    cupy = import_cupy("gemm")
    shapes = shape_text(a, b)
    batched = a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0]
    if not (batched or (a.ndim == 2 and b.ndim == 2)) or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: expected (M, K) @ (K, N) or (G, M, K) @ (G, K, N), got {shapes}")
    suffix = dtype_suffix("gemm", a, b)
    batch = a.shape[0] if batched else 1
    (m, k), n = a.shape[-2:], b.shape[-1]
    check_size("gemm", shapes, batch * m * k, batch * k * n, batch * m * n)
    if -(-m // 16) > 65535 or batch > 65535:
        raise ValueError(f"gemm: the grid holds at most 65535 row tiles (M <= 1,048,560) and 65535 batch "
                         f"entries, got M={m}, batch={batch} for inputs {shapes}")
    c = cupy.empty((batch, m, n) if batched else (m, n), dtype=a.dtype)
    launch("gemm", suffix, (m, n, batch),
           (contiguous(a), contiguous(b), c, long_long(m), long_long(n), long_long(k)), shapes)
    return c


def matmul(a, b):
    """a @ b: cuBLAS (``cupy.matmul``), or the teaching tiled GEMM when switched on (2-D or same-size batches)."""
    teachable = (a.ndim == b.ndim == 2) or (a.ndim == b.ndim == 3 and a.shape[0] == b.shape[0])
    if _teaching_gemm and teachable and a.dtype == b.dtype and a.dtype in _SUFFIX:
        return gemm(a, b)
    return import_cupy("matmul").matmul(a, b)
