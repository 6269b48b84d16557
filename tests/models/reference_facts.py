"""torchvision's facts about its models (../shared/reference/reference.json), for the model tests."""
import functools
import json
import os

import pytest

# A copy of shared/reference/reference.json travels with the tests, so a bare clone can run them.
_CANDIDATES = [os.path.join(os.path.dirname(__file__), "reference.json")]


@functools.lru_cache(maxsize=1)
def load_reference():
    for path in _CANDIDATES:
        if os.path.exists(path):
            with open(path) as file:
                return json.load(file)
    pytest.skip("torchvision reference facts (shared/reference/reference.json) are not beside this checkout")


def state_dict_spec(name):
    """[(key, shape tuple), ...] in torchvision's order."""
    return [(key, tuple(shape)) for key, shape in load_reference()[name]["state_dict"]]


def param_count(model):
    return sum(p.numel() for p in model.parameters())
