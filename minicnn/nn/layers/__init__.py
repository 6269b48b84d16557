"""The layers: thin modules that hold weights and call ``minicnn.nn.functional``."""
from minicnn.nn.layers.activation import (
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from minicnn.nn.layers.conv import Conv2d
from minicnn.nn.layers.dropout import Dropout
from minicnn.nn.layers.flatten import Flatten
from minicnn.nn.layers.linear import Identity, Linear
from minicnn.nn.layers.loss import CrossEntropyLoss, MSELoss
from minicnn.nn.layers.normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from minicnn.nn.layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Conv2d", "Linear", "Identity", "Flatten",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid",
    "Softmax", "LogSoftmax",
    "Dropout", "CrossEntropyLoss", "MSELoss",
]
