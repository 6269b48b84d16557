"""The CUDA kernel set: kernels/*.cu compiled with CuPy, same names and signatures as the NumPy set.

``kernels`` holds the functions (``kernels_for(cupy_array)`` returns it);
``launch`` holds every kernel's grid/block/shared-memory configuration.
Importing this package imports no CuPy: that happens at the first launch.

>>> from minicnn.backend import cuda
>>> cuda.use_teaching_gemm(True)   # float32 matmul through kernels/gemm.cu instead of cuBLAS
"""
from minicnn.backend.cuda.kernels import (
    CudaKernelError,
    kernel_source,
    teaching_gemm_enabled,
    use_teaching_gemm,
)

__all__ = ["CudaKernelError", "kernel_source", "use_teaching_gemm", "teaching_gemm_enabled"]
