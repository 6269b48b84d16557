"""DataLoader: batches of Tensors, every sample once per epoch, and randomness that is a function of
(seed, epoch, batch) so that a run resumed from a state_dict continues with the very same batches."""
import json

import numpy as np
import pytest

import minicnn
from minicnn.data.loader import DataLoader
from minicnn.data.transforms import Compose, RandomCrop, RandomHorizontalFlip, ToTensor, to_tensor


class TinyDataset:
    """The dataset contract in miniature: uint8 (N, H, W, C) images, int64 labels, get_batch(indices, rng).

    Label i belongs to image i, and image i is filled with a pattern derived from i, so a batch tells
    which samples it holds.
    """

    def __init__(self, num_samples=10, size=4, channels=1, transform=None):
        pixels = np.arange(size * size * channels).reshape(size, size, channels)
        self.images = ((np.arange(num_samples)[:, None, None, None] * 7 + pixels) % 256).astype(np.uint8)
        self.labels = np.arange(num_samples, dtype=np.int64)
        self.classes = [str(i) for i in range(num_samples)]
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def get_batch(self, indices, rng):
        batch = self.images[indices]
        x = self.transform(batch, rng) if self.transform is not None else to_tensor(batch)
        return x, self.labels[indices]


class RecordingTransform:
    """Converts like ToTensor and records one number drawn from each rng it is handed."""

    def __init__(self):
        self.draws = []

    def __call__(self, batch, rng):
        self.draws.append(int(rng.integers(2**62)))
        return to_tensor(batch)


def augmenting_dataset(num_samples=20):
    augment = Compose([ToTensor(), RandomCrop(6, padding=2), RandomHorizontalFlip()])
    return TinyDataset(num_samples, size=6, channels=3, transform=augment)


def run_epoch(loader):
    return [(x.data.copy(), y.data.copy()) for x, y in loader]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x_first, y_first), (x_second, y_second) in zip(first, second):
        np.testing.assert_array_equal(y_first, y_second)
        np.testing.assert_array_equal(x_first, x_second)


@pytest.fixture(autouse=True)
def restore_global_rng():
    state = minicnn.get_rng_state()
    yield
    minicnn.set_rng_state(state)


# --- batches ------------------------------------------------------------------------------------------
def test_batches_are_tensors_of_float32_images_and_int64_labels():
    dataset = TinyDataset(num_samples=10, size=4, channels=2)
    batches = list(DataLoader(dataset, batch_size=4))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 2, 4, 4), (4, 2, 4, 4), (2, 2, 4, 4)]
    for x, y in batches:
        assert isinstance(x, minicnn.Tensor) and isinstance(y, minicnn.Tensor)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert not x.requires_grad
    x, y = batches[0]
    np.testing.assert_allclose(x.data, dataset.images[:4].transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y.data, [0, 1, 2, 3])


@pytest.mark.parametrize("num_samples, batch_size, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),
    (8, 4, False, [4, 4]),
    (8, 4, True, [4, 4]),
    (3, 5, False, [3]),
    (7, 1, True, [1] * 7),
])
def test_batch_count_and_sizes_with_and_without_drop_last(num_samples, batch_size, drop_last, sizes):
    loader = DataLoader(TinyDataset(num_samples), batch_size=batch_size, shuffle=True, drop_last=drop_last, seed=0)
    assert len(loader) == len(sizes)
    assert [len(y.data) for _, y in loader] == sizes


def test_every_sample_exactly_once_per_epoch_when_shuffled():
    loader = DataLoader(TinyDataset(23), batch_size=5, shuffle=True, seed=1)
    for _ in range(3):
        served = np.concatenate([y.data for _, y in loader])
        np.testing.assert_array_equal(np.sort(served), np.arange(23))


def test_drop_last_serves_each_sample_at_most_once_and_drops_a_different_tail_each_epoch():
    loader = DataLoader(TinyDataset(11), batch_size=4, shuffle=True, drop_last=True, seed=2)
    dropped = []
    for _ in range(4):
        served = np.concatenate([y.data for _, y in loader])
        assert len(served) == 8 and len(np.unique(served)) == 8
        dropped.append(tuple(sorted(set(range(11)) - set(served.tolist()))))
    assert len(set(dropped)) > 1


def test_images_stay_paired_with_their_labels_after_shuffling():
    dataset = TinyDataset(12, size=3, channels=3)
    for x, y in DataLoader(dataset, batch_size=5, shuffle=True, seed=3):
        np.testing.assert_allclose(x.data, dataset.images[y.data].transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)


def test_without_shuffle_every_epoch_is_in_dataset_order():
    loader = DataLoader(TinyDataset(9), batch_size=4)
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([y.data for _, y in loader]), np.arange(9))


def test_shuffle_order_changes_from_epoch_to_epoch():
    loader = DataLoader(TinyDataset(30), batch_size=8, shuffle=True, seed=4)
    orders = [tuple(np.concatenate([y.data for _, y in loader])) for _ in range(3)]
    assert len(set(orders)) == 3
    assert orders[0] != tuple(range(30))


def test_float64_from_a_transform_becomes_float32():
    dataset = TinyDataset(4, transform=lambda batch, rng: batch.transpose(0, 3, 1, 2) / 255.0)
    x, _ = next(iter(DataLoader(dataset, batch_size=4)))
    assert x.dtype == np.float32


# --- reproducibility ------------------------------------------------------------------------------------
def test_same_seed_gives_same_order_and_same_augmentation():
    first = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True, seed=7)
    second = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True, seed=7)
    for _ in range(2):
        assert_same_batches(run_epoch(first), run_epoch(second))


def test_different_seeds_give_different_orders_and_augmentation():
    first = run_epoch(DataLoader(augmenting_dataset(), batch_size=20, shuffle=False, seed=7))
    second = run_epoch(DataLoader(augmenting_dataset(), batch_size=20, shuffle=False, seed=8))
    np.testing.assert_array_equal(first[0][1], second[0][1])     # same samples, no shuffle ...
    assert not np.array_equal(first[0][0], second[0][0])          # ... augmented differently
    orders = [tuple(DataLoader(TinyDataset(20), shuffle=True, seed=seed).order(0)) for seed in (7, 8)]
    assert orders[0] != orders[1]


def test_order_of_an_epoch_is_a_pure_function_of_seed_and_epoch():
    loader = DataLoader(TinyDataset(17), batch_size=4, shuffle=True, seed=9)
    served = [np.concatenate([y.data for _, y in loader]) for _ in range(3)]
    fresh = DataLoader(TinyDataset(17), batch_size=4, shuffle=True, seed=9)
    fresh.set_epoch(2)      # no need to replay epochs 0 and 1
    np.testing.assert_array_equal(np.concatenate([y.data for _, y in fresh]), served[2])
    for epoch in range(3):
        np.testing.assert_array_equal(loader.order(epoch), served[epoch])


def test_each_batch_gets_its_own_transform_rng_derived_from_seed_epoch_and_batch():
    recorders = [RecordingTransform(), RecordingTransform()]
    loaders = [DataLoader(TinyDataset(12, transform=recorder), batch_size=4, seed=5) for recorder in recorders]
    for loader in loaders:
        for _ in range(2):
            run_epoch(loader)
    first, second = recorders[0].draws, recorders[1].draws
    assert first == second                     # reproducible
    assert len(set(first)) == 6                # 3 batches × 2 epochs, all different streams


def test_seed_none_draws_from_the_global_generator_so_manual_seed_makes_it_deterministic():
    minicnn.manual_seed(123)
    first = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True)
    minicnn.manual_seed(123)
    second = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True)
    assert first.seed == second.seed
    assert_same_batches(run_epoch(first), run_epoch(second))
    minicnn.manual_seed(124)
    assert DataLoader(augmenting_dataset(), shuffle=True).seed != first.seed


# --- epochs and resuming ------------------------------------------------------------------------------
def test_loader_counts_its_epochs():
    loader = DataLoader(TinyDataset(6), batch_size=4, shuffle=True, seed=0)
    assert loader.epoch == 0
    for _ in loader:
        assert loader.epoch == 0
    assert loader.epoch == 1
    assert loader.state_dict() == {"epoch": 1, "seed": 0, "batch": 0}
    next(iter(loader))      # a peek starts (and so uses up) an epoch, as iter() does in PyTorch
    assert loader.epoch == 2
    loader.set_epoch(5)
    assert loader.epoch == 5


def test_resume_between_epochs_continues_with_the_same_batches():
    original = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True, seed=11)
    run_epoch(original)
    state = json.loads(json.dumps(original.state_dict()))       # as a checkpoint stores it
    expected = [run_epoch(original) for _ in range(2)]
    resumed = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True, seed=99)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1 and resumed.seed == 11
    for batches in expected:
        assert_same_batches(run_epoch(resumed), batches)


def test_resume_in_the_middle_of_an_epoch_continues_with_the_following_batches():
    original = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True, seed=12)    # 4 batches/epoch
    run_epoch(original)
    iterator = iter(original)
    next(iterator), next(iterator)
    state = json.loads(json.dumps(original.state_dict()))
    assert state == {"epoch": 1, "seed": 12, "batch": 2}
    rest_of_epoch = [(x.data.copy(), y.data.copy()) for x, y in iterator]
    next_epoch = run_epoch(original)

    resumed = DataLoader(augmenting_dataset(), batch_size=6, shuffle=True)
    resumed.load_state_dict(state)
    assert_same_batches(run_epoch(resumed), rest_of_epoch)
    assert_same_batches(run_epoch(resumed), next_epoch)


def test_state_after_the_last_batch_points_to_the_next_epoch():
    loader = DataLoader(TinyDataset(8), batch_size=4, seed=0)
    for index, _ in enumerate(loader):
        if index == 1:
            assert loader.state_dict() == {"epoch": 1, "seed": 0, "batch": 0}


# --- bad arguments --------------------------------------------------------------------------------------
BAD_LOADERS = [
    (lambda: DataLoader(TinyDataset(), batch_size=0), ValueError,
     "DataLoader: batch_size must be a positive integer, got 0"),
    (lambda: DataLoader(TinyDataset(), batch_size=-3), ValueError,
     "DataLoader: batch_size must be a positive integer, got -3"),
    (lambda: DataLoader(TinyDataset(), batch_size=2.5), ValueError,
     "DataLoader: batch_size must be a positive integer, got 2.5"),
    (lambda: DataLoader(TinyDataset(), batch_size=True), ValueError,
     "DataLoader: batch_size must be a positive integer, got True"),
    (lambda: DataLoader(TinyDataset(0)), ValueError, "DataLoader: the dataset is empty"),
    (lambda: DataLoader([1, 2, 3]), TypeError, (r"DataLoader: dataset must have __len__ and get_batch\(indices, "
                                               r"rng\), got list")),
    (lambda: DataLoader(TinyDataset(), seed=-1), ValueError, "DataLoader: seed must be >= 0, got -1"),
    (lambda: DataLoader(TinyDataset(), seed="1"), TypeError, "DataLoader: seed must be an int, got str '1'"),
    (lambda: DataLoader(TinyDataset(), shuffle="yes"), TypeError,
     "DataLoader: shuffle must be True or False, got str 'yes'"),
    (lambda: DataLoader(TinyDataset(5), batch_size=8, drop_last=True), ValueError,
     r"DataLoader: drop_last=True with batch_size 8 larger than the dataset \(5 samples\) leaves no batch"),
    (lambda: DataLoader(TinyDataset(5)).set_epoch(-1), ValueError, "DataLoader: epoch must be >= 0, got -1"),
]


@pytest.mark.parametrize("make, error, message", BAD_LOADERS, ids=[m for _, _, m in BAD_LOADERS])
def test_bad_arguments_name_the_loader_and_what_came(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("state, error, message", [
    ({"seed": 0}, ValueError, "DataLoader.load_state_dict: expected a dict with 'epoch' and 'seed', got"),
    ([1, 0], ValueError, "DataLoader.load_state_dict: expected a dict with 'epoch' and 'seed', got"),
    ({"epoch": -2, "seed": 0}, ValueError, "DataLoader: epoch must be >= 0, got -2"),
    ({"epoch": 1.5, "seed": 0}, TypeError, "DataLoader: epoch must be an int, got float 1.5"),
    ({"epoch": 1, "seed": 0, "batch": 4}, ValueError,
     r"DataLoader.load_state_dict: batch 4 is past the end of an epoch \(3 batches\)"),
])
def test_load_state_dict_rejects_bad_states(state, error, message):
    loader = DataLoader(TinyDataset(10), batch_size=4)
    with pytest.raises(error, match=message):
        loader.load_state_dict(state)


def test_a_dataset_that_returns_uint8_images_is_told_to_add_to_tensor():
    dataset = TinyDataset(4, transform=lambda batch, rng: batch)
    with pytest.raises(TypeError, match=r"DataLoader: TinyDataset.get_batch returned uint8 images of shape "
                                        r"\(4, 4, 4, 1\); its transform must convert them \(add ToTensor\)"):
        next(iter(DataLoader(dataset, batch_size=4)))
