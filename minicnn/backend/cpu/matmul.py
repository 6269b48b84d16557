"""Matrix product: the GEMM that convolution (after im2col) and linear layers reduce to.

On the CPU it is NumPy's ``matmul`` (BLAS, both cores); the CUDA kernel set has
the same function, cuBLAS by default or our tiled teaching kernel.  Batched
operands (G, M, K) @ (G, K, N) are grouped convolution's product.
"""
__all__ = ["matmul"]


def matmul(a, b):
    """a @ b for 2-D operands or equal-sized batches of them."""
    return a @ b
