"""Sequential, ModuleList, ModuleDict: naming, indexing, editing."""
from collections import OrderedDict

import numpy as np
import pytest

import minicnn
from minicnn import nn


def test_sequential_names_children_by_position_and_chains_forward():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = minicnn.randn(5, 4)
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(model(x).data, expected.data)


def test_sequential_indexing_len_iteration_and_negative_index():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Tanh()]
    model = nn.Sequential(*layers)
    assert len(model) == 3
    assert list(model) == layers
    assert model[-1] is layers[2] and model[0] is layers[0]


def test_sequential_slice_keeps_names_and_shares_modules():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    tail = model[1:]
    assert isinstance(tail, nn.Sequential)
    assert [name for name, _ in tail.named_children()] == ["1", "2"]
    assert tail[1] is model[2]


def test_sequential_from_ordered_dict_uses_its_names():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]
    assert model.conv is model[0]


def test_sequential_append_insert_delete_renumber():
    model = nn.Sequential(nn.ReLU())
    assert model.append(nn.Tanh()) is model
    model.insert(0, nn.Sigmoid())
    assert [type(m).__name__ for m in model] == ["Sigmoid", "ReLU", "Tanh"]
    del model[1]
    assert [name for name, _ in model.named_children()] == ["0", "1"]
    assert [type(m).__name__ for m in model] == ["Sigmoid", "Tanh"]
    model[1] = nn.ReLU6()
    assert type(model[1]).__name__ == "ReLU6"


def test_sequential_index_errors_are_clear():
    model = nn.Sequential(nn.ReLU())
    with pytest.raises(IndexError, match="Sequential: index 3 is out of range for 1 modules"):
        model[3]
    with pytest.raises(TypeError, match="Sequential: indices must be integers or slices, not str"):
        model["0"]
    with pytest.raises(TypeError, match="Sequential: int is not a Module subclass"):
        nn.Sequential(nn.ReLU(), 5)


def test_module_list_registers_parameters_for_the_parent():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    stack = Stack()
    assert list(stack.state_dict()) == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"]
    stack.blocks.append(nn.Linear(3, 1))
    assert stack(minicnn.randn(2, 3)).shape == (2, 1)
    assert isinstance(stack.blocks[:2], nn.ModuleList) and len(stack.blocks[:2]) == 2
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        stack.blocks(minicnn.randn(2, 3))


def test_module_dict_keeps_insertion_order():
    heads = nn.ModuleDict({"b": nn.Linear(2, 1), "a": nn.Linear(2, 3)})
    assert list(heads) == ["b", "a"] and "a" in heads and len(heads) == 2
    assert list(heads.state_dict()) == ["b.weight", "b.bias", "a.weight", "a.bias"]
    heads["c"] = nn.ReLU()
    del heads["b"]
    assert list(heads.keys()) == ["a", "c"]


def test_identity_returns_its_input():
    x = minicnn.randn(2, 3)
    assert nn.Identity(54, unused=True)(x) is x
