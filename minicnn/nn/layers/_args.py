"""Constructor-argument checks shared by the layers, so each error names its layer."""
import numbers


def check_int(layer, name, value, minimum=1):
    """``value`` as an int, or a ValueError/TypeError saying which layer got what."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{layer}: {name} must be {bound}, got {value}")
    return int(value)


def check_pair(layer, name, value, minimum=1):
    """An int or a pair of ints as an (height, width) tuple, each at least ``minimum``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(check_int(layer, name, v, minimum) for v in values)


def check_probability(layer, name, value, allow_one=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not (0 <= value < 1 or (allow_one and value == 1)):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{layer}: {name} must be in {interval}, got {value}")
    return float(value)


def check_input_dims(layer, x, dims, layout):
    """Raise unless ``x`` has one of ``dims`` dimensions (``layout`` describes them)."""
    if x.ndim not in dims:
        raise ValueError(f"{layer}: expected a {layout} input, got shape {tuple(x.shape)}")
