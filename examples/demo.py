"""The quick-start job: train a small CNN on generated images, then check a gradient.

Four classes of 12×12 grey images (a short horizontal stroke, a vertical one, a
diagonal, a cross) drawn at random positions on strong noise.  A conv → pool → conv → pool → linear
network learns them in a few seconds on a laptop CPU; at the end the conv layer's
backward pass is checked against finite differences.

    python examples/demo.py
"""
import time

import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim

CLASSES = ["horizontal", "vertical", "diagonal", "cross"]


def make_bars(count, seed):
    """(count, 1, 12, 12) float32 images and int64 labels: a 5-pixel stroke of each class on noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.5, size=(count, 1, 12, 12)).astype(np.float32)
    labels = rng.integers(0, len(CLASSES), size=count)
    stroke = np.arange(5)
    for image, label, (row, col) in zip(images, labels, rng.integers(1, 7, size=(count, 2))):
        if label in (0, 3):
            image[0, row + 2, col + stroke] += 1.0
        if label in (1, 3):
            image[0, row + stroke, col + 2] += 1.0
        if label == 2:
            image[0, row + stroke, col + stroke] += 1.0
    return images, labels.astype(np.int64)


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),   # 8×6×6
        nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),  # 16×3×3
        nn.Flatten(), nn.Linear(16 * 3 * 3, len(CLASSES)),
    )


def accuracy(model, images, labels):
    model.eval()
    with minicnn.no_grad():
        predictions = model(minicnn.Tensor(images)).data.argmax(axis=1)
    model.train()
    return float((predictions == labels).mean())


def main():
    minicnn.manual_seed(0)
    train_x, train_y = make_bars(2000, seed=1)
    test_x, test_y = make_bars(500, seed=2)
    model = build_model()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    print(f"minicnn {minicnn.__version__}: {sum(p.numel() for p in model.parameters()):,} parameters")
    start = time.perf_counter()
    for epoch in range(1, 6):
        order = np.random.default_rng(epoch).permutation(len(train_x))
        for first in range(0, len(order), 50):
            batch = order[first : first + 50]
            loss = loss_fn(model(minicnn.Tensor(train_x[batch])), minicnn.Tensor(train_y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: last loss {loss.item():.3f}, test accuracy {accuracy(model, test_x, test_y):.1%}")
    print(f"trained in {time.perf_counter() - start:.1f} s")

    # The backward pass of a strided, padded conv against central differences (float64).
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]
    minicnn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), inputs)
    print("gradcheck conv2d (stride 2, padding 1): analytic gradients match finite differences")


if __name__ == "__main__":
    main()
