"""Neural-network building blocks: ``Module``, ``Parameter``, containers, layers and ``init``.

>>> import minicnn.nn as nn
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
"""
from minicnn.nn import functional, init
from minicnn.nn.containers import ModuleDict, ModuleList, Sequential
from minicnn.nn.layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Hardsigmoid,
    Hardswish,
    Identity,
    LeakyReLU,
    Linear,
    LocalResponseNorm,
    LogSoftmax,
    MaxPool2d,
    MSELoss,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from minicnn.nn.module import Module
from minicnn.nn.parameter import Parameter
from minicnn.nn.state_dict import IncompatibleKeys, StateDictError

__all__ = [
    "functional", "init",
    "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "Sequential", "ModuleList", "ModuleDict",
    "Conv2d", "Linear", "Identity", "Flatten",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid",
    "Softmax", "LogSoftmax",
    "Dropout", "CrossEntropyLoss", "MSELoss",
]
