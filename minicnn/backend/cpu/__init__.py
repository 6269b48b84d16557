"""The NumPy kernel set: the reference every other backend is tested against.

Each family lives in its own file; this package gathers them into one flat
list of functions, the list the CUDA backend implements with the same names.
"""
from minicnn.backend.cpu.activation import *  # noqa: F401,F403
from minicnn.backend.cpu.bias import *  # noqa: F401,F403
from minicnn.backend.cpu.depthwise import *  # noqa: F401,F403
from minicnn.backend.cpu.im2col import *  # noqa: F401,F403
from minicnn.backend.cpu.loss import *  # noqa: F401,F403
from minicnn.backend.cpu.matmul import *  # noqa: F401,F403
from minicnn.backend.cpu.normalization import *  # noqa: F401,F403
from minicnn.backend.cpu.pooling import *  # noqa: F401,F403
from minicnn.backend.cpu.random import *  # noqa: F401,F403
