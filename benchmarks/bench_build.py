"""How long the full-size models take to build, and the shapes dataset to generate, on this CPU.

    python benchmarks/bench_build.py [--repeats 3] [--json benchmarks/results/cpu_build.json]

Building a model is mostly drawing its initial weights (VGG-16: 138M float32 numbers), so a build that
turns slow usually means a float64 draw or a Python loop over elements.  These figures used to be
asserts in the tests (VGG-16 under 20 s, each ResNet under 10 s, 10,000 shapes under 10 s); a clock in a
test fails on a busy machine and proves nothing about correctness, so the budgets live here and are
printed beside each median.  One warm-up run, then the median of ``--repeats`` runs.
"""
import argparse
import json
import platform

import minicnn
from minicnn import models
from minicnn.data import generate_shapes

from bench_ops import median_seconds  # this folder's scripts share one timer: warm-up, then the median

# (what is timed, the budget the tests used to assert in seconds, the work).
CASES = [
    ("vgg16 build", 20.0, lambda: models.vgg16()),
    ("resnet18 build", 10.0, lambda: models.resnet18()),
    ("resnet34 build", 10.0, lambda: models.resnet34()),
    ("resnet50 build", 10.0, lambda: models.resnet50()),
    ("resnet101 build", 10.0, lambda: models.resnet101()),
    ("resnet152 build", 10.0, lambda: models.resnet152()),
    ("resnext50_32x4d build", 10.0, lambda: models.resnext50_32x4d()),
    ("generate_shapes(10_000)", 10.0, lambda: generate_shapes(10_000, seed=0)),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    minicnn.manual_seed(0)
    print(f"{'case':26s} {'median s':>9s} {'budget s':>9s} {'of budget':>9s}")
    results = []
    for name, budget, run in CASES:
        seconds = median_seconds(run, args.repeats)
        results.append(dict(case=name, seconds=seconds, budget_seconds=budget))
        print(f"{name:26s} {seconds:9.2f} {budget:9.1f} {seconds / budget:9.0%}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(dict(machine=platform.processor() or platform.machine(), repeats=args.repeats,
                           results=results), file, indent=1)


if __name__ == "__main__":
    main()
