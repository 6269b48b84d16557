"""DistributedSampler: the ranks' k-th batches are together the single-process run's k-th batch."""
import numpy as np
import pytest

from minicnn.data import DataLoader
from minicnn.distributed import DistributedSampler


class Sized:
    """A dataset whose labels are the sample indices, so a batch says which samples it holds."""

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length

    def get_batch(self, indices, rng):
        return np.zeros((len(indices), 1, 2, 2), dtype=np.float32), np.asarray(indices)


def every_rank(length, ranks, **options):
    return [DistributedSampler(Sized(length), num_replicas=ranks, rank=rank, **options)
            for rank in range(ranks)]


def kth_batches(samplers, epoch, per_rank_batch):
    """For each k, the union over ranks of their k-th batches (in rank order)."""
    shares = [sampler.indices(epoch) for sampler in samplers]
    batches = max(-(-len(share) // per_rank_batch) for share in shares)
    return [np.concatenate([share[k * per_rank_batch:(k + 1) * per_rank_batch] for share in shares])
            for k in range(batches)]


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("epoch", [0, 5])
def test_the_ranks_kth_batches_are_the_single_process_kth_batch(ranks, epoch):
    per_rank, length, seed = 4, 96, 11
    single = DataLoader(Sized(length), batch_size=per_rank * ranks, shuffle=True, seed=seed).order(epoch)
    for k, batch in enumerate(kth_batches(every_rank(length, ranks, seed=seed), epoch, per_rank)):
        assert sorted(batch) == sorted(single[k * per_rank * ranks:(k + 1) * per_rank * ranks])


def test_every_epoch_has_its_own_order_the_same_on_every_rank():
    samplers = every_rank(50, 2, seed=3)
    first, second = kth_batches(samplers, 0, 5), kth_batches(samplers, 1, 5)
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    again = kth_batches(every_rank(50, 2, seed=3), 1, 5)
    assert np.array_equal(np.concatenate(again), np.concatenate(second))


def test_set_epoch_chooses_what_iterating_the_sampler_gives():
    sampler = DistributedSampler(Sized(20), num_replicas=2, rank=1, seed=0)
    sampler.set_epoch(4)
    assert list(sampler) == sampler.indices(4).tolist()


def test_the_padded_tail_repeats_the_epochs_first_images():
    samplers = every_rank(10, 4, seed=0)  # 10 images over 4 ranks: 2 repeated to make 12
    shares = [s.indices(0) for s in samplers]
    assert [len(s) for s in samplers] == [3, 3, 3, 3] == [len(share) for share in shares]
    order = np.concatenate([shares[r][i:i + 1] for i in range(3) for r in range(4)])
    single = DataLoader(Sized(10), batch_size=4, shuffle=True, seed=0).order(0)
    assert np.array_equal(order[:10], single) and np.array_equal(order[10:], single[:2])


def test_drop_last_trims_to_a_multiple_of_the_ranks():
    samplers = every_rank(10, 4, seed=0, drop_last=True)
    shares = np.concatenate([s.indices(0) for s in samplers])
    assert [len(s) for s in samplers] == [2, 2, 2, 2] and len(set(shares.tolist())) == 8


def test_unpadded_shares_serve_every_image_exactly_once():
    samplers = every_rank(10, 4, shuffle=False, pad=False)
    assert [len(s) for s in samplers] == [3, 3, 2, 2]
    assert sorted(np.concatenate([s.indices(0) for s in samplers]).tolist()) == list(range(10))


def test_drop_last_in_the_loader_too_equals_a_single_process_drop_last():
    length, ranks, per_rank = 45, 2, 4  # 45 = 5 global batches of 8 and 5 left over
    loaders = [DataLoader(Sized(length), batch_size=per_rank, drop_last=True, sampler=s)
               for s in every_rank(length, ranks, seed=2)]
    single = DataLoader(Sized(length), batch_size=per_rank * ranks, shuffle=True, seed=2, drop_last=True)
    assert {len(loader) for loader in loaders} == {len(single)} == {5}


def test_the_loader_takes_its_seed_from_the_sampler_and_passes_on_its_epoch():
    sampler = DistributedSampler(Sized(12), num_replicas=2, rank=0, seed=9)
    loader = DataLoader(Sized(12), batch_size=2, sampler=sampler)
    assert loader.seed == 9 and len(loader) == 3
    assert np.array_equal(loader.order(3), sampler.indices(3)) and sampler.epoch == 3
    loader.set_epoch(2)
    served = np.concatenate([labels.numpy() for _, labels in loader])
    assert np.array_equal(served, sampler.indices(2))
    loader.load_state_dict({"epoch": 1, "seed": 4, "batch": 0})
    assert sampler.seed == 4


def test_seed_none_takes_rank_0s_draw(world):
    seeds = world.allgather(np.array([DistributedSampler(Sized(8)).seed], dtype=np.int64)).ravel()
    assert (seeds == seeds[0]).all()


def test_bad_arguments_are_refused_with_the_samplers_name():
    with pytest.raises(ValueError, match=r"DistributedSampler: rank must be in \[0, 2\)"):
        DistributedSampler(Sized(8), num_replicas=2, rank=2, seed=0)
    with pytest.raises(TypeError, match="DistributedSampler: num_replicas must be an int"):
        DistributedSampler(Sized(8), num_replicas=2.0, rank=0, seed=0)
    with pytest.raises(TypeError, match="DistributedSampler: dataset must have a length"):
        DistributedSampler(object(), num_replicas=1, rank=0, seed=0)
    with pytest.raises(ValueError, match="3 samples cannot give each of 4 ranks one"):
        DistributedSampler(Sized(3), num_replicas=4, rank=0, seed=0, pad=False)
    with pytest.raises(ValueError, match="DataLoader: sampler and shuffle=True both decide the order"):
        sampler = DistributedSampler(Sized(8), num_replicas=1, rank=0, seed=0)
        DataLoader(Sized(8), sampler=sampler, shuffle=True)


def test_samplers_made_for_each_rank_in_one_process_agree_by_default():
    """PyTorch's default seed (0): samplers built rank by rank in one process still partition the epoch."""
    shares = [DistributedSampler(Sized(12), num_replicas=3, rank=rank).indices(2) for rank in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(12))
