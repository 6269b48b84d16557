"""The CUDA kernel set: the NumPy kernel list, computed by our own kernels in kernels/*.cu.

Every function here has the name and signature of its twin in
``minicnn.backend.cpu`` and takes and returns CuPy arrays.  Each family lives in
its own file (activation, bias, depthwise, im2col, loss, matmul, normalization,
pooling, random), as in ``minicnn.backend.cpu``; this module gathers them into
one flat list, the module ``kernels_for(cupy_array)`` returns.  A kernel
function says only what is its own, through one ``KernelCall`` (runtime.py):

1. check the input (dtype float32/float64, shapes the kernel supports):
   ``call = KernelCall("max_pool2d_forward", x)`` and the op's shape checks;
2. allocate the outputs: ``y = call.empty((n, c, oh, ow))``;
3. launch ``<op>_f32`` or ``<op>_f64`` from the ``.cu`` file that launch.py
   names for it, with the grid/block/shared memory launch.py gives for it (the
   CPU emulation tests launch with exactly the same configuration):
   ``call.launch(y.size, x, y, n, c, h, w, ...)``; arrays go as contiguous
   pointers, Python ints as ``long long``.

Each ``.cu`` file is compiled by ``cupy.RawModule`` (NVRTC) the first time one
of its kernels is needed and kept for the life of the process, so no kernel is
ever rebuilt.  CuPy itself is imported inside these functions only: importing
this module costs nothing on a machine without a GPU.

``max_pool2d_input_indices`` has no kernel of its own: it is index arithmetic,
and the NumPy reference (written with ``xp = get_array_module(x)``) runs on CuPy
arrays unchanged.  ``conv2d_algorithm`` answers "im2col" or "direct": the CPU's
Winograd kernels (``winograd_conv2d_forward``/``_backward``) have no GPU twin, and
the GPU's selection point never asks for them.  ``philox4x32``/``uniform_from_counter`` are the host-side
generator, kept for the known-answer tests.
"""
from minicnn.backend.cuda.activation import *  # noqa: F401,F403
from minicnn.backend.cuda.bias import *  # noqa: F401,F403
from minicnn.backend.cuda.conv_algorithm import *  # noqa: F401,F403
from minicnn.backend.cuda.depthwise import *  # noqa: F401,F403
from minicnn.backend.cuda.im2col import *  # noqa: F401,F403
from minicnn.backend.cuda.loss import *  # noqa: F401,F403
from minicnn.backend.cuda.matmul import *  # noqa: F401,F403
from minicnn.backend.cuda.normalization import *  # noqa: F401,F403
from minicnn.backend.cuda.pooling import *  # noqa: F401,F403
from minicnn.backend.cuda.random import *  # noqa: F401,F403
from minicnn.backend.cuda.runtime import CudaKernelError, kernel_source  # noqa: F401
