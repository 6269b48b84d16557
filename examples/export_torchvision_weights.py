"""Export a torchvision model's weights to an ``.npz`` that minicnn loads.

Needs torch and torchvision (minicnn itself needs neither):

    python examples/export_torchvision_weights.py resnet18 --weights DEFAULT resnet18.npz
    python examples/export_torchvision_weights.py vgg16_bn --weights IMAGENET1K_V1 vgg16_bn.npz
    python examples/export_torchvision_weights.py mobilenet_v2 --weights none random.npz   # random init

then, in minicnn:

    >>> from minicnn.models.weights import load_npz_state_dict
    >>> model = minicnn.models.resnet18()
    >>> load_npz_state_dict(model, "resnet18.npz")

The file is ``np.savez`` of ``{key: tensor.numpy()}`` in the state_dict's order:
plain arrays (float32 weights, int64 0-d ``num_batches_tracked``), no pickle.
For GoogLeNet, torchvision's pretrained weights expect ``transform_input=True``:
load them with ``load_npz_state_dict(model, path, transform_input=True)``.
"""
import argparse
import sys

import numpy as np


def state_dict_arrays(state_dict):
    """{key: NumPy array} from a torch state_dict, in its order; each array a copy on the host."""
    arrays = {}
    for key, value in state_dict.items():
        array = value.detach().cpu().numpy().copy()
        if array.dtype == object:
            raise TypeError(f"export: {key} is not a numeric tensor")
        arrays[key] = array
    return arrays


def write_npz(state_dict, path):
    """Write a torch state_dict to ``path`` as an ``.npz`` (``np.savez``); returns the number of arrays."""
    arrays = state_dict_arrays(state_dict)
    np.savez(path, **arrays)
    return len(arrays)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="torchvision model name, e.g. resnet18, vgg16_bn, googlenet, mobilenet_v3_large")
    parser.add_argument("out", help="the .npz file to write")
    parser.add_argument("--weights", default="DEFAULT",
                        help="torchvision weights: DEFAULT, an enum member such as IMAGENET1K_V1, or 'none' "
                             "for random initialisation (default: DEFAULT)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        import torchvision  # here, not at the top: the file must import (and be tested) without it
    except ImportError:
        sys.exit("export_torchvision_weights: this script needs torchvision (pip install torch torchvision); "
                 "minicnn itself does not")
    weights = None if args.weights.lower() == "none" else args.weights
    if weights is not None and weights != "DEFAULT" and "." not in weights:
        # get_model takes "DEFAULT" or "ResNet18_Weights.IMAGENET1K_V1"; also accept the bare member name.
        weights = f"{type(torchvision.models.get_model_weights(args.model).DEFAULT).__name__}.{weights}"
    model = torchvision.models.get_model(args.model, weights=weights)
    count = write_npz(model.state_dict(), args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} ({weights or 'random init'}): {count} arrays, {params:,} parameters -> {args.out}")


if __name__ == "__main__":
    main()
