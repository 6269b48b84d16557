"""The NumPy kernel set: the reference every other backend is tested against.

Each family lives in its own file; this package gathers them into one flat
list of functions, the list the CUDA backend implements with the same names.
The one exception is Winograd (winograd.py), a CPU-only convolution algorithm
that the selection point (conv_algorithm.py) picks per layer shape; the GPU's
selection point never asks for it.  ``set_conv_algorithm`` and ``set_num_threads``
(the pool for element-wise work, threads.py) are the CPU's two speed settings.
"""
from minicnn.backend.cpu.activation import *  # noqa: F401,F403
from minicnn.backend.cpu.bias import *  # noqa: F401,F403
from minicnn.backend.cpu.conv_algorithm import *  # noqa: F401,F403
from minicnn.backend.cpu.depthwise import *  # noqa: F401,F403
from minicnn.backend.cpu.im2col import *  # noqa: F401,F403
from minicnn.backend.cpu.loss import *  # noqa: F401,F403
from minicnn.backend.cpu.matmul import *  # noqa: F401,F403
from minicnn.backend.cpu.normalization import *  # noqa: F401,F403
from minicnn.backend.cpu.pooling import *  # noqa: F401,F403
from minicnn.backend.cpu.random import *  # noqa: F401,F403
from minicnn.backend.cpu.threads import num_threads, set_num_threads  # noqa: F401
from minicnn.backend.cpu.winograd import *  # noqa: F401,F403

# What has no GPU twin: the Winograd kernels, and the CPU's speed settings (they are not kernels).
CPU_ONLY = ("winograd_conv2d_forward", "winograd_conv2d_backward", "winograd_transform_input",
            "set_conv_algorithm", "get_conv_algorithm", "using_conv_algorithm", "winograd_applies",
            "num_threads", "set_num_threads")
