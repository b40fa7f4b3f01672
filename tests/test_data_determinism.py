"""Samples depend on (seed, epoch, index) only: not on worker count, rank layout, or what came before."""

import pytest
import torch
from torch.utils.data import DataLoader

import translate  # noqa: F401
from translate.data import EpochSampler, TransformConfig, open_dataset, sample_seed
from tests._data_helpers import make_unaligned


@pytest.fixture(scope="module")
def unpaired_folder(tmp_path_factory):
    return make_unaligned(tmp_path_factory.mktemp("unpaired"), {"trainA": 6, "trainB": 9}, size=(24, 28))


def _batches(dataset, sampler, workers, epochs, persistent=False):
    loader = DataLoader(dataset, batch_size=3, sampler=sampler, num_workers=workers,
                        persistent_workers=persistent and workers > 0)
    result = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        result.extend(loader)
    return result


def _assert_same(first, second):
    assert len(first) == len(second)
    for x, y in zip(first, second):
        assert x["A_path"] == y["A_path"] and x["B_path"] == y["B_path"]
        assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])


def test_batches_are_identical_with_zero_or_two_workers(unpaired_folder):
    def run(workers, persistent=False):
        dataset = open_dataset(unpaired_folder, "train", transform=TransformConfig(size=16), seed=7)
        return _batches(dataset, EpochSampler(len(dataset), seed=7), workers, [0, 1], persistent)

    serial = run(0)
    _assert_same(serial, run(2))
    # Persistent workers keep their own dataset copy; the epoch reaches them inside the keys.
    _assert_same(serial, run(2, persistent=True))
    epoch0, epoch1 = serial[:3], serial[3:]
    assert any(not torch.equal(x["A"], y["A"]) for x, y in zip(epoch0, epoch1))  # epochs differ


def test_set_epoch_on_the_dataset_changes_crops_for_plain_indices(unpaired_folder):
    dataset = open_dataset(unpaired_folder, "train", transform=TransformConfig(size=16), seed=0)
    first = dataset[2]["A"]
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[2]["A"])
    dataset.set_epoch(0)
    assert torch.equal(first, dataset[2]["A"])


def test_ranks_share_one_permutation_and_cover_every_index():
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(2)
    shards = [[i for _, i in sampler] for sampler in ranks]
    assert all(len(s) == 4 for s in shards)  # ceil(10 / 3), padded like DistributedSampler
    assert set().union(*map(set, shards)) == set(range(10))
    single = EpochSampler(10, seed=3)
    single.set_epoch(2)
    order = [i for _, i in single]
    assert shards[0][:3] == order[0:9:3]  # the same permutation, dealt round-robin
    assert all(epoch == 2 for sampler in ranks for epoch, _ in sampler)


def test_sampler_order_is_a_function_of_seed_and_epoch():
    def order(seed, epoch):
        sampler = EpochSampler(20, seed=seed)
        sampler.set_epoch(epoch)
        return [i for _, i in sampler]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(order(5, 3)) == list(range(20))
    assert [i for _, i in EpochSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]


def test_resuming_mid_epoch_continues_where_the_run_stopped():
    full = EpochSampler(12, seed=1)
    full.set_epoch(4)
    resumed = EpochSampler(12, seed=1)
    resumed.set_epoch(4, start=5)
    assert list(resumed) == list(full)[5:] and len(resumed) == 7


def test_drop_last_trims_instead_of_padding():
    shards = [EpochSampler(10, rank=r, world_size=3, drop_last=True) for r in range(3)]
    assert [len(list(s)) for s in shards] == [3, 3, 3]


def test_sample_seeds_differ_across_every_argument():
    base = sample_seed(0, 0, 0, 0)
    assert len({base, sample_seed(1, 0, 0, 0), sample_seed(0, 1, 0, 0), sample_seed(0, 0, 1, 0),
                sample_seed(0, 0, 0, 1)}) == 5
    assert 0 <= base < 2**63 and base == sample_seed(0, 0, 0, 0)
