"""An op reads in one place: every Function states its rule as math and names the kernels it calls.

The rule is written in the docstring of minicnn/functions/__init__.py.  A kernel call is
``kernels.<name>(...)`` or ``kernels_for(...).<name>(...)`` in the class's source.
"""
import ast
import importlib
import inspect
import pathlib
import re
import textwrap

import pytest

import minicnn.backend.cpu as numpy_kernels
import minicnn.backend.cuda.kernels as cuda_kernels  # imports no CuPy until a kernel launches
import minicnn.functions
from minicnn.tensor import Function

FUNCTIONS_DIR = pathlib.Path(minicnn.functions.__file__).parent


def _function_classes():
    """Every Function subclass defined in minicnn/functions/*.py, in file order."""
    found = []
    for path in sorted(FUNCTIONS_DIR.glob("*.py")):
        name = "minicnn.functions" if path.stem == "__init__" else f"minicnn.functions.{path.stem}"
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, Function) and cls is not Function:
                found.append(cls)
    return found


def kernels_called(cls):
    """The kernel names cls's source calls: ``kernels.<name>(`` or ``kernels_for(...).<name>(``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        through_kernels = isinstance(owner, ast.Name) and owner.id == "kernels"
        through_kernels_for = (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
                               and owner.func.id == "kernels_for")
        if through_kernels or through_kernels_for:
            names.add(node.func.attr)
    return names


def own_docstring(cls):
    """cls's own docstring; ``inspect.getdoc`` would fall back to Function's."""
    return cls.__dict__.get("__doc__") or ""


FUNCTION_CLASSES = _function_classes()
CLASS_IDS = [f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for cls in FUNCTION_CLASSES]


def test_the_scan_finds_the_ops_and_their_kernel_calls():
    names = {cls.__name__ for cls in FUNCTION_CLASSES}
    assert {"ReLU", "Add", "Conv2d", "BatchNorm", "MaxPool2d", "CrossEntropy", "GetItem", "Cat"} <= names
    conv2d = next(cls for cls in FUNCTION_CLASSES if cls.__name__ == "Conv2d")
    assert {"conv2d_algorithm", "im2col", "matmul", "col2im", "bias_add", "channel_sum",
            "depthwise_conv2d_forward", "depthwise_conv2d_backward",
            "winograd_conv2d_forward", "winograd_conv2d_backward", "winograd_transform_input"} == kernels_called(conv2d)


@pytest.mark.parametrize("cls", FUNCTION_CLASSES, ids=CLASS_IDS)
def test_docstring_states_the_forward_and_backward_rule(cls):
    doc = own_docstring(cls)
    assert doc.strip(), f"{cls.__name__} has no docstring"
    assert "forward" in doc.lower() or "=" in doc, f"{cls.__name__}'s docstring shows no forward formula"
    assert "backward" in doc.lower() or "∂" in doc, f"{cls.__name__}'s docstring shows no backward rule"


@pytest.mark.parametrize("cls", FUNCTION_CLASSES, ids=CLASS_IDS)
def test_docstring_names_every_kernel_the_class_calls(cls):
    doc = own_docstring(cls)
    unnamed = sorted(name for name in kernels_called(cls) if not re.search(rf"\b{name}\b", doc))
    assert not unnamed, f"{cls.__name__} calls {unnamed} but its docstring does not name them"


# The CPU's Winograd convolution has no GPU twin: only the CPU's conv2d_algorithm can answer "winograd".
CPU_ONLY = set(numpy_kernels.CPU_ONLY)


@pytest.mark.parametrize("cls", FUNCTION_CLASSES, ids=CLASS_IDS)
def test_every_kernel_called_exists_in_both_backends(cls):
    for name in sorted(kernels_called(cls)):
        assert callable(getattr(numpy_kernels, name, None)), f"minicnn.backend.cpu has no kernel {name}"
        if name not in CPU_ONLY:
            assert callable(getattr(cuda_kernels, name, None)), f"minicnn.backend.cuda.kernels has no kernel {name}"


@pytest.mark.parametrize("setting", ["auto", "im2col", "winograd", "direct"])
def test_the_gpu_never_picks_a_cpu_only_algorithm(setting):
    from minicnn.backend.cpu import using_conv_algorithm

    shapes = [((8, 64, 112, 112), (64, 64, 3, 3), 1), ((8, 32, 56, 56), (32, 1, 3, 3), 32),
              ((2, 16, 8, 8), (32, 16, 3, 3), 1), ((2, 16, 8, 8), (32, 4, 3, 3), 4)]
    with using_conv_algorithm(setting):
        for x_shape, weight_shape, groups in shapes:
            assert cuda_kernels.conv2d_algorithm(x_shape, weight_shape, (1, 1), (1, 1), groups) in ("im2col", "direct")
    assert not any(hasattr(cuda_kernels, name) for name in CPU_ONLY)
