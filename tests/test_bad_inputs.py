"""A sweep of bad inputs to tensors, ops, modules, models and tools: each a typed error with a useful message.

Every case names the call, the exception type, and a fragment the message
must hold: the op, what it expected and what came.  Nothing may end in a bare
NumPy or Python error.  A last group checks inputs PyTorch *accepts*: there
minicnn must accept them too and give PyTorch's answer.

The data loaders, training loop, checkpoints and CLI have sweeps of their own
(tests/data/test_file_errors.py, tests/test_train_faults.py, tests/test_cli_errors.py).
"""
import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import models, nn, optim
from tests.oracle import require_torch

T = minicnn.Tensor


def _x4():
    return minicnn.randn(2, 3, 8, 8)


def _w():
    return minicnn.randn(4, 3, 3, 3)


def _x2():
    return minicnn.randn(2, 3)


def _labels(*values):
    return T(np.array(values))


def _params():
    return nn.Linear(3, 2).parameters()


# (id, call, exception type, regex the message must match)
CASES = [
    # --- making tensors ---
    ("Tensor of a str", lambda: T("abc"), TypeError, r"Tensor: expected numbers.*got str 'abc'"),
    ("Tensor of None", lambda: T(None), TypeError, r"Tensor: expected numbers.*NoneType"),
    ("Tensor of a ragged list", lambda: T([[1, 2], [3]]), ValueError, r"Tensor: nested lists must be rectangular"),
    ("Tensor of a number and a str", lambda: T([1, "a"]), TypeError, r"Tensor: .*strings.*float\(text\)"),
    ("Tensor of an object array", lambda: T(np.array([object()])), TypeError, r"Tensor: .*Python objects"),
    ("Tensor of complex numbers", lambda: T(np.array([1j])), TypeError, r"Tensor: .*complex numbers"),
    ("Tensor of a dict", lambda: T({"a": 1}), TypeError, r"Tensor: .*Python objects"),
    ("int Tensor requiring grad", lambda: T([1, 2], requires_grad=True), TypeError,
     r"only floating-point tensors can require gradients, got dtype int64"),
    ("tensor() of a str", lambda: minicnn.tensor("1"), TypeError, r"Tensor: expected numbers.*'1'"),
    ("zeros(-1)", lambda: minicnn.zeros(-1), ValueError, r"zeros: sizes must be non-negative integers"),
    ("zeros('3')", lambda: minicnn.zeros("3"), ValueError, r"zeros: sizes must be non-negative integers.*'3'"),
    ("randn(2.5)", lambda: minicnn.randn(2.5), ValueError, r"randn: sizes must be non-negative integers.*2\.5"),
    ("ones(None)", lambda: minicnn.ones(None), ValueError, r"ones: sizes must be"),
    ("arange('a')", lambda: minicnn.arange("a"), TypeError, r"arange: end must be a number, got str"),
    ("arange step 0", lambda: minicnn.arange(0, 3, 0), ValueError, r"arange: step must not be zero"),
    ("full with a str", lambda: minicnn.full((2,), "x"), TypeError, r"full: fill_value must be a number"),
    ("manual_seed('a')", lambda: minicnn.manual_seed("a"), ValueError, r"manual_seed: expected a non-negative"),
    ("manual_seed(-1)", lambda: minicnn.manual_seed(-1), ValueError, r"manual_seed: expected a non-negative"),
    ("to('tpu')", lambda: _x2().to("tpu"), ValueError, r"Tensor.to: device must be 'cpu' or 'cuda'"),
    ("to('cuda:1')", lambda: _x2().to("cuda:1"), ValueError, r"single GPU"),
    ("to(3)", lambda: _x2().to(3), TypeError, r"Tensor.to: device must be a str"),
    # --- tensor operations ---
    ("reshape to a wrong size", lambda: _x2().reshape(4, 4), ValueError, r"reshape: cannot reshape.*\(2, 3\).*\(4, 4\)"),
    ("reshape with a str", lambda: _x2().reshape("a"), TypeError, r"reshape: sizes must be ints"),
    ("reshape with two -1", lambda: _x2().reshape(-1, -1), ValueError, r"reshape: invalid shape"),
    ("transpose a missing axis", lambda: _x4().transpose(0, 5), ValueError, r"transpose: axis 5 is out of range"),
    ("permute too few axes", lambda: _x4().permute(0, 1), ValueError, r"permute: \(0, 1\) is not a permutation"),
    ("sum over a missing axis", lambda: _x2().sum(axis=5), ValueError, r"sum: axis 5 is out of range"),
    ("mean over a str axis", lambda: _x2().mean(axis="a"), TypeError, r"mean: axis must be an integer"),
    ("max over a missing axis", lambda: _x2().max(axis=3), ValueError, r"max: axis 3 is out of range"),
    ("index out of bounds", lambda: _x2()[5], IndexError, r"getitem: index 5 is out of bounds.*\(2, 3\)"),
    ("index with a str", lambda: _x2()["a"], IndexError, r"getitem: only integers, slices"),
    ("add a str", lambda: _x2() + "a", TypeError, r"expected numbers.*'a'"),
    ("multiply by None", lambda: _x2() * None, TypeError, r"expected numbers.*NoneType"),
    ("add a ragged list", lambda: _x2() + [[1], [1, 2]], ValueError, r"nested lists must be rectangular"),
    ("matmul with wrong inner sizes", lambda: _x2() @ _x2(), ValueError, r"matmul: inner dimensions differ"),
    ("matmul with a scalar", lambda: _x2() @ T(2.0), ValueError, r"matmul: both operands need at least one dim"),
    ("pow with unbroadcastable shapes", lambda: _x2() ** minicnn.randn(4), ValueError,
     r"pow: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    ("add unbroadcastable shapes", lambda: _x2() + minicnn.randn(4), ValueError,
     r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    ("compare unbroadcastable shapes", lambda: _x2() < minicnn.randn(4), ValueError, r"lt: shapes"),
    ("backward without a graph", lambda: _x2().sum().backward(), RuntimeError, r"backward: this tensor does not"),
    ("backward of a vector without grad", lambda: (T([1.0, 2.0], requires_grad=True) * 2).backward(), ValueError,
     r"backward: grad may only be omitted for a one-element tensor"),
    ("backward with a wrong-shaped grad", lambda: (T([1.0, 2.0], requires_grad=True) * 2).backward(T([1.0])),
     ValueError, r"backward: grad has shape \(1,\) but the tensor has shape \(2,\)"),
    ("item of many elements", lambda: _x2().item(), ValueError, r"item: only a one-element tensor"),
    ("bool of many elements", lambda: bool(_x2()), ValueError, r"bool: the truth value.*ambiguous"),
    ("clip min > max", lambda: _x2().clip(2, 1), ValueError, r"clip: min \(2\) is greater than max \(1\)"),
    ("clip with a str", lambda: _x2().clip("a"), TypeError, r"clip: min must be a number or None"),
    ("clip with no bound", lambda: _x2().clip(), ValueError, r"clip: at least one of min and max"),
    ("requires_grad_ on ints", lambda: T([1, 2]).requires_grad_(), TypeError, r"requires_grad_: dtype int64"),
    ("in-place += on a parameter", lambda: nn.Parameter(minicnn.ones(2)).__iadd__(1), RuntimeError,
     r"in-place \+=: a leaf tensor that requires grad"),
    ("in-place float into int", lambda: T([1, 2]).__iadd__(0.5), TypeError, r"in-place \+=: .*float.*int64"),
    ("in-place growing a tensor", lambda: minicnn.zeros(3).__imul__(minicnn.ones(2, 3)), ValueError,
     r"in-place \*=: the result has shape \(2, 3\)"),
    ("setitem of a wrong shape", lambda: minicnn.zeros(2, 3).__setitem__(0, T([1.0, 2.0])), ValueError,
     r"setitem: a value of shape \(2,\) does not fit"),
    ("setitem of a str", lambda: minicnn.zeros(2).__setitem__(0, "a"), TypeError, r"expected numbers"),
    # --- convolution ---
    ("conv2d stride as a str", lambda: F.conv2d(_x4(), _w(), stride="2"), TypeError,
     r"conv2d: stride must be an int or a pair of ints, got str '2'"),
    ("conv2d negative padding", lambda: F.conv2d(_x4(), _w(), padding=-1), ValueError, r"conv2d: padding must be >= 0"),
    ("conv2d stride 0", lambda: F.conv2d(_x4(), _w(), stride=0), ValueError, r"conv2d: stride must be positive"),
    ("conv2d dilation 0", lambda: F.conv2d(_x4(), _w(), dilation=0), ValueError, r"conv2d: dilation must be positive"),
    ("conv2d float padding", lambda: F.conv2d(_x4(), _w(), padding=1.5), TypeError, r"conv2d: padding must be an int"),
    ("conv2d stride of three", lambda: F.conv2d(_x4(), _w(), stride=(1, 1, 1)), ValueError,
     r"conv2d: stride must be an int or a pair"),
    ("conv2d 3-D input", lambda: F.conv2d(minicnn.randn(3, 8, 8), _w()), ValueError,
     r"conv2d: expected input of shape \(N, C, H, W\), got \(3, 8, 8\)"),
    ("conv2d channel mismatch", lambda: F.conv2d(minicnn.randn(2, 4, 8, 8), _w()), ValueError,
     r"conv2d: input has 4 channels but weight expects 3"),
    ("conv2d kernel larger than input", lambda: F.conv2d(minicnn.randn(2, 3, 2, 2), _w()), ValueError,
     r"conv2d: kernel 3x3 .* is larger than the padded input 2x2"),
    ("conv2d groups not dividing", lambda: F.conv2d(_x4(), _w(), groups=2), ValueError,
     r"conv2d: groups=2 does not divide the 3 input channels"),
    ("conv2d on an ndarray", lambda: F.conv2d(_x4().numpy(), _w()), TypeError, r"conv2d: input must be a Tensor"),
    ("conv2d on a list", lambda: F.conv2d([[1.0]], _w()), TypeError, r"conv2d: input must be a Tensor, got list"),
    ("conv2d float64 input, float32 weight", lambda: F.conv2d(_x4().astype(np.float64), _w()), TypeError,
     r"conv2d: input dtype float64 differs from weight dtype float32"),
    ("conv2d on integer images", lambda: F.conv2d(T(np.ones((1, 3, 4, 4), np.uint8)), _w()), TypeError,
     r"conv2d: expected a floating-point input, got dtype uint8"),
    ("conv2d with a bool weight", lambda: F.conv2d(_x4(), T(np.ones((4, 3, 3, 3), bool))), TypeError,
     r"conv2d: expected a floating-point weight, got dtype bool"),
    ("Conv2d in_channels as a str", lambda: nn.Conv2d("3", 8, 3), TypeError, r"Conv2d: in_channels must be an int"),
    ("Conv2d kernel_size 0", lambda: nn.Conv2d(3, 8, 0), ValueError, r"Conv2d: kernel_size must be positive"),
    ("Conv2d in_channels float", lambda: nn.Conv2d(3.0, 8, 3), TypeError, r"Conv2d: in_channels must be an int"),
    ("Conv2d groups not dividing", lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError,
     r"Conv2d: in_channels \(3\) must be divisible by groups \(2\)"),
    ("Conv2d unknown padding word", lambda: nn.Conv2d(3, 8, 3, padding="x"), ValueError,
     r"Conv2d: padding must be an int, a pair, 'valid' or 'same'"),
    ("Conv2d negative in_channels", lambda: nn.Conv2d(-1, 8, 3), ValueError, r"Conv2d: in_channels must be positive"),
    ("Conv2d called with wrong channels", lambda: nn.Conv2d(4, 8, 3)(_x4()), ValueError,
     r"Conv2d: input has 3 channels but in_channels is 4"),
    ("Conv2d called on a 2-D input", lambda: nn.Conv2d(3, 8, 3)(_x2()), ValueError,
     r"Conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\)"),
    ("Conv2d called on an ndarray", lambda: nn.Conv2d(3, 8, 3)(_x4().numpy()), TypeError, r"input must be a Tensor"),
    # --- linear ---
    ("Linear in_features 0", lambda: nn.Linear(0, 2), ValueError, r"Linear: in_features must be positive"),
    ("Linear in_features as a str", lambda: nn.Linear("3", 2), TypeError, r"Linear: in_features must be an int"),
    ("Linear in_features float", lambda: nn.Linear(3.5, 2), TypeError, r"Linear: in_features must be an int"),
    ("Linear wrong features", lambda: nn.Linear(4, 2)(_x2()), ValueError, r"Linear: input's last dimension must be"),
    ("Linear on an ndarray", lambda: nn.Linear(3, 2)(_x2().numpy()), TypeError, r"Linear: input must be a Tensor"),
    ("Linear on int32", lambda: nn.Linear(3, 2)(T(np.ones((1, 3), np.int32))), TypeError,
     r"linear: expected a floating-point input, got dtype int32"),
    ("Linear on float64 with float32 weight", lambda: nn.Linear(3, 2)(_x2().astype(np.float64)), TypeError,
     r"linear: input dtype float64 differs from weight dtype float32"),
    ("Linear on a scalar", lambda: nn.Linear(3, 2)(T(1.0)), ValueError, r"Linear: input's last dimension"),
    # --- pooling ---
    ("MaxPool2d kernel 0", lambda: nn.MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be positive"),
    ("MaxPool2d kernel as a str", lambda: nn.MaxPool2d("2"), TypeError, r"MaxPool2d: kernel_size must be an int"),
    ("MaxPool2d padding over half", lambda: nn.MaxPool2d(2, padding=2)(_x4()), ValueError,
     r"MaxPool2d: padding must be at most half of kernel_size, got padding=2, kernel_size=2"),
    ("MaxPool2d negative stride", lambda: nn.MaxPool2d(2, stride=-1), ValueError, r"MaxPool2d: stride must be"),
    ("max_pool2d window larger than input", lambda: F.max_pool2d(minicnn.randn(1, 1, 2, 2), 3), ValueError,
     r"max_pool2d: output size is 0x0 for input 2x2"),
    ("max_pool2d on ints", lambda: F.max_pool2d(T(np.ones((1, 1, 4, 4), np.int32)), 2), TypeError,
     r"max_pool2d: expected a floating-point input, got dtype int32"),
    ("AvgPool2d kernel float", lambda: nn.AvgPool2d(2.5), TypeError, r"AvgPool2d: kernel_size must be an int"),
    ("AdaptiveAvgPool2d 0", lambda: nn.AdaptiveAvgPool2d(0), ValueError, r"AdaptiveAvgPool2d: output_size must be"),
    ("AdaptiveAvgPool2d as a str", lambda: nn.AdaptiveAvgPool2d("a"), TypeError,
     r"AdaptiveAvgPool2d: output_size must be an int"),
    # --- normalisation, dropout, activations ---
    ("BatchNorm2d 0 features", lambda: nn.BatchNorm2d(0), ValueError, r"BatchNorm2d: num_features must be positive"),
    ("BatchNorm2d features as a str", lambda: nn.BatchNorm2d("3"), TypeError, r"BatchNorm2d: num_features must be"),
    ("BatchNorm2d wrong channels", lambda: nn.BatchNorm2d(4)(_x4()), ValueError,
     r"BatchNorm2d: input has 3 channels but num_features is 4"),
    ("BatchNorm2d on a 2-D input", lambda: nn.BatchNorm2d(3)(_x2()), ValueError,
     r"BatchNorm2d: expected input of shape \(N, C, H, W\)"),
    ("BatchNorm2d momentum 2", lambda: nn.BatchNorm2d(3, momentum=2), ValueError, r"BatchNorm2d: momentum must be"),
    ("BatchNorm2d negative eps", lambda: nn.BatchNorm2d(3, eps=-1), ValueError, r"BatchNorm2d: eps must be a positive number, got -1"),
    ("BatchNorm1d wrong features", lambda: nn.BatchNorm1d(4)(_x2()), ValueError, r"BatchNorm1d: input has 3"),
    ("BatchNorm1d one sample in training", lambda: nn.BatchNorm1d(3)(minicnn.randn(1, 3)), ValueError,
     r"BatchNorm1d: expected more than 1 value per channel when training"),
    ("batch_norm on ints", lambda: nn.BatchNorm2d(3)(T(np.ones((2, 3, 2, 2), np.int64))), TypeError,
     r"batch_norm: expected a floating-point input, got dtype int64"),
    ("Dropout p 1.5", lambda: nn.Dropout(1.5), ValueError, r"Dropout: p must be in \[0, 1\)"),
    ("Dropout p as a str", lambda: nn.Dropout("a"), TypeError, r"Dropout: p must be a number"),
    ("Dropout negative p", lambda: nn.Dropout(-0.1), ValueError, r"Dropout: p must be in"),
    ("dropout on ints", lambda: F.dropout(T(np.ones(4, np.int32)), 0.5), TypeError,
     r"dropout: expected a floating-point input, got dtype int32"),
    ("relu on bools", lambda: F.relu(T(np.array([True, False]))), TypeError, r"relu: expected a floating-point"),
    ("sigmoid on ints", lambda: F.sigmoid(T([1, 2])), TypeError, r"sigmoid: expected a floating-point"),
    ("LeakyReLU slope as a str", lambda: nn.LeakyReLU("a"), TypeError, r"LeakyReLU: negative_slope must be a number"),
    ("LocalResponseNorm size 0", lambda: nn.LocalResponseNorm(0), ValueError, r"LocalResponseNorm: size must be"),
    ("LocalResponseNorm on 2-D", lambda: nn.LocalResponseNorm(2)(_x2()), ValueError,
     r"LocalResponseNorm: expected input of shape \(N, C, L\) or \(N, C, H, W\)"),
    ("Flatten start_dim out of range", lambda: nn.Flatten(start_dim=5)(_x2()), ValueError,
     r"flatten: dim 5 is out of range"),
    ("flatten start after end", lambda: F.flatten(_x4(), 3, 1), ValueError, r"flatten: start_dim 3 comes after"),
    ("cat of nothing", lambda: F.cat([]), ValueError, r"cat: expected a non-empty sequence"),
    ("cat of mismatched shapes", lambda: F.cat([_x2(), minicnn.randn(3, 2)], dim=1), ValueError,
     r"cat: tensor 1 has shape \(3, 2\) but tensor 0 has shape \(2, 3\)"),
    ("cat along a missing dim", lambda: F.cat([_x2(), _x2()], dim=4), ValueError, r"cat: dim 4 is out of range"),
    ("cat with an ndarray", lambda: F.cat([_x2(), _x2().numpy()]), TypeError, r"cat: .*element 1 is a ndarray"),
    # --- losses ---
    ("softmax along a missing dim", lambda: F.softmax(_x2(), dim=5), ValueError, r"softmax: dim 5 is out of range"),
    ("softmax without dim", lambda: F.softmax(_x2()), ValueError, r"softmax: dim must be given"),
    ("cross_entropy float labels", lambda: F.cross_entropy(_x2(), T([0.0, 1.0])), TypeError,
     r"cross_entropy: target must hold integer class indices, got dtype float32"),
    ("cross_entropy label out of range", lambda: F.cross_entropy(_x2(), _labels(0, 3)), ValueError,
     r"cross_entropy: target holds class 3 but input has 3 classes"),
    ("cross_entropy negative label", lambda: F.cross_entropy(_x2(), _labels(0, -2)), ValueError,
     r"cross_entropy: target holds class -2"),
    ("cross_entropy batch mismatch", lambda: F.cross_entropy(_x2(), _labels(0, 1, 2)), ValueError,
     r"cross_entropy: target has shape \(3,\) but input of shape \(2, 3\) needs"),
    ("cross_entropy unknown reduction", lambda: F.cross_entropy(_x2(), _labels(0, 1), reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    ("cross_entropy smoothing 2", lambda: F.cross_entropy(_x2(), _labels(0, 1), label_smoothing=2), ValueError,
     r"cross_entropy: label_smoothing must be between 0.0 and 1.0"),
    ("cross_entropy weight of the wrong size", lambda: F.cross_entropy(_x2(), _labels(0, 1), weight=minicnn.ones(2)),
     ValueError, r"cross_entropy: weight has shape \(2,\) but input has 3 classes"),
    ("cross_entropy int logits", lambda: F.cross_entropy(T([[1, 2]]), _labels(0)), TypeError,
     r"cross_entropy: expected floating-point logits"),
    ("CrossEntropyLoss unknown reduction", lambda: nn.CrossEntropyLoss(reduction="x"), ValueError,
     r"CrossEntropyLoss: reduction must be one of"),
    ("mse_loss shape mismatch", lambda: F.mse_loss(_x2(), minicnn.randn(3, 2)), ValueError,
     r"mse_loss: input has shape \(2, 3\) but target has shape \(3, 2\)"),
    ("mse_loss unknown reduction", lambda: F.mse_loss(_x2(), _x2(), reduction="bad"), ValueError,
     r"mse_loss: reduction must be"),
    # --- modules and state dicts ---
    ("load_state_dict missing a key", lambda: nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 3))}),
     nn.StateDictError, r"Missing key\(s\) in state_dict: \"bias\""),
    ("load_state_dict wrong shape",
     lambda: nn.Linear(3, 2).load_state_dict({"weight": np.zeros((3, 3)), "bias": np.zeros(2)}),
     nn.StateDictError, r"size mismatch for weight"),
    ("load_state_dict strings", lambda: nn.Linear(3, 2).load_state_dict({"weight": "abc", "bias": np.zeros(2)}),
     nn.StateDictError, r"weight has dtype <U3, expected numbers"),
    ("load_state_dict of a list", lambda: nn.Linear(3, 2).load_state_dict([1, 2]), TypeError,
     r"load_state_dict: expected a mapping of names to arrays, got list"),
    ("Module.to an unknown device", lambda: nn.Linear(3, 2).to("tpu"), ValueError, r"Linear.to: device must be"),
    ("Module.to an int dtype", lambda: nn.Linear(3, 2).to(dtype=np.int32), TypeError,
     r"Linear.to: dtype must be floating-point, got int32"),
    ("assign an array as a parameter", lambda: setattr(nn.Linear(3, 2), "weight", np.zeros((2, 3))), TypeError,
     r"Linear: cannot assign 'ndarray' as parameter 'weight' \(Parameter or None expected\)"),
    ("Sequential of an int", lambda: nn.Sequential(1), TypeError, r"Sequential: int is not a Module subclass"),
    ("ModuleList of an int", lambda: nn.ModuleList([1]), TypeError, r"ModuleList: int is not a Module subclass"),
    # --- optimizers ---
    ("SGD of an empty list", lambda: optim.SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    ("SGD lr as a str", lambda: optim.SGD(_params(), lr="0.1"), TypeError, r"SGD: learning rate must be a real number"),
    ("SGD lr nan", lambda: optim.SGD(_params(), lr=float("nan")), ValueError, r"SGD: invalid learning rate nan"),
    ("Adam beta 1.5", lambda: optim.Adam(_params(), betas=(1.5, 0.9)), ValueError,
     r"Adam: invalid beta parameter at index 0: 1.5"),
    ("SGD nesterov without momentum", lambda: optim.SGD(_params(), lr=0.1, nesterov=True), ValueError,
     r"SGD: nesterov momentum requires momentum > 0"),
    ("SGD over an ndarray", lambda: optim.SGD([np.zeros(3)], lr=0.1), TypeError,
     r"SGD: can only optimize Tensors, but one of the params is ndarray"),
    ("StepLR of a model", lambda: optim.lr_scheduler.StepLR(nn.Linear(3, 2), 1), TypeError,
     r"StepLR: expected an Optimizer, got Linear"),
    ("StepLR step_size 0", lambda: optim.lr_scheduler.StepLR(optim.SGD(_params(), lr=0.1), 0), ValueError,
     r"StepLR: invalid step_size 0"),
    # --- models and tools ---
    ("get_model of an unknown name", lambda: models.get_model("resnet9"), ValueError,
     r"get_model: unknown model 'resnet9'; choose one of"),
    ("resnet18 with 0 classes", lambda: models.resnet18(num_classes=0), ValueError,
     r"resnet18: num_classes must be positive"),
    ("resnet18 classes as a str", lambda: models.resnet18(num_classes="10"), TypeError,
     r"resnet18: num_classes must be an int"),
    ("vgg11 negative width", lambda: models.vgg11(width_mult=-1), ValueError,
     r"vgg11: width_mult must be a positive finite number, got -1"),
    ("resnet18 on one image without batch", lambda: models.resnet18(num_classes=2)(minicnn.randn(3, 32, 32)),
     ValueError, r"resnet18: expected input of shape \(N, 3, H, W\), got \(3, 32, 32\)"),
    ("resnet18 on grey images", lambda: models.resnet18(num_classes=2)(minicnn.randn(1, 1, 32, 32)), ValueError,
     r"resnet18: expected input of shape \(N, 3, H, W\), got \(1, 1, 32, 32\)"),
    ("alexnet on CIFAR-sized images", lambda: models.alexnet(num_classes=2)(minicnn.randn(1, 3, 32, 32)),
     ValueError, r"alexnet: input 32x32 is too small, the minimum is 63x63"),
    ("summary with a str size", lambda: minicnn.summary(nn.Linear(3, 2), (3, "a")), TypeError,
     r"summary \(Linear\): input_size must be a tuple of ints"),
    ("gradcheck of a non-function", lambda: minicnn.gradcheck(1, [np.zeros(3)]), TypeError,
     r"gradcheck: fn must be a function"),
    ("gradcheck of a str input", lambda: minicnn.gradcheck(lambda x: x, ["a"]), TypeError,
     r"gradcheck: input 0: expected numbers"),
    ("gradcheck of a bare array", lambda: minicnn.gradcheck(lambda x: x, np.zeros(3)), TypeError,
     r"gradcheck: inputs must be a list.*\[x\]"),
]


@pytest.mark.parametrize("call, error, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_raises_a_typed_error_naming_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_sweep_has_distinct_cases():
    names = [case[0] for case in CASES]
    assert len(set(names)) == len(names) >= 150


# --- inputs PyTorch accepts: minicnn accepts them too, with PyTorch's answer --------------------------
def test_unbatched_chw_input_to_pooling_gives_pytorchs_result():
    torch = require_torch()
    x = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)
    ours = nn.MaxPool2d(2)(T(x)).numpy()
    np.testing.assert_allclose(ours, torch.nn.MaxPool2d(2)(torch.tensor(x)).numpy())


def test_adaptive_pooling_to_a_size_larger_than_the_input_gives_pytorchs_result():
    torch = require_torch()
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    ours = nn.AdaptiveAvgPool2d(5)(T(x)).numpy()
    np.testing.assert_allclose(ours, torch.nn.AdaptiveAvgPool2d(5)(torch.tensor(x)).numpy(), rtol=1e-6)


def test_integer_inputs_to_exp_log_sqrt_become_float32_as_in_pytorch():
    torch = require_torch()
    for name in ("exp", "log", "sqrt"):
        ours = getattr(T(np.array([1, 2, 4], dtype=np.int32)), name)()
        theirs = getattr(torch.tensor([1, 2, 4], dtype=torch.int32), name)()
        assert ours.dtype == np.float32 and str(theirs.dtype) == "torch.float32"
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert T(np.array([True])).exp().dtype == np.float32


def test_cat_of_ints_and_floats_gives_floats_as_in_pytorch():
    torch = require_torch()
    ours = F.cat([T(np.array([1, 2], dtype=np.int32)), T([0.5])])
    theirs = torch.cat([torch.tensor([1, 2], dtype=torch.int32), torch.tensor([0.5])])
    assert ours.dtype == np.float32 and str(theirs.dtype) == "torch.float32"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_full_with_a_bool_fills_as_in_pytorch():
    assert minicnn.full((2,), True, dtype=np.bool_).tolist() == [True, True]
