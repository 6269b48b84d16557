"""Dtype checks shared by the ops whose weights meet their input: conv2d and linear.

A product of an input and a weight needs both floating-point and of one dtype:
an integer image would otherwise become float64 on the way (NumPy's promotion),
silently doubling the cost of everything after it.  PyTorch refuses such
mixes too ("expected scalar type Float but found Int").
"""


def check_input_and_weight(op, input, weight):
    """TypeError naming ``op`` unless ``input`` and ``weight`` are floating-point tensors of one dtype."""
    for name, t in (("input", input), ("weight", weight)):
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: expected a floating-point {name}, got dtype {t.dtype}; convert it with "
                            f".astype('float32') (images: transforms.ToTensor)")
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} differs from weight dtype {weight.dtype}")
