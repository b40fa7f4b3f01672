"""The history pool (Shrivastava et al. 2017; CycleGAN's image buffer)."""

from __future__ import annotations

import io
import math

import pytest
import torch

from translate.core.pool import HistoryPool


def labelled(ids) -> torch.Tensor:
    """A batch of 1x2x2 'images', image i filled with its id, so that outputs can be traced."""
    ids = torch.as_tensor(ids, dtype=torch.float32)
    return ids.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def ids_of(images: torch.Tensor) -> list[int]:
    return [int(x) for x in images[:, 0, 0, 0]]


def test_returns_the_new_images_until_full():
    pool = HistoryPool(size=5, generator=torch.Generator().manual_seed(0))
    assert ids_of(pool.query(labelled([0, 1, 2]))) == [0, 1, 2]
    assert ids_of(pool.query(labelled([3, 4]))) == [3, 4]
    assert len(pool) == 5


def test_a_batch_that_fills_the_pool_returns_new_images_for_the_free_slots():
    pool = HistoryPool(size=3, p_old=1.0, generator=torch.Generator().manual_seed(0))
    out = ids_of(pool.query(labelled([10, 11, 12, 13, 14])))
    assert out[:3] == [10, 11, 12]
    assert all(i in (10, 11, 12, 13) for i in out[3:]) and out[3] != 13  # p_old = 1: always an old one


@pytest.mark.parametrize("p_old", [0.5, 0.2])
def test_once_full_the_fraction_of_old_images_is_p_old(p_old):
    size, draws = 50, 4000
    pool = HistoryPool(size=size, p_old=p_old, generator=torch.Generator().manual_seed(1))
    pool.query(labelled(range(size)))
    in_pool = set(range(size))
    old_returned = 0
    for new_id in range(size, size + draws, 8):  # batches of 8, as a training loop would send
        batch = list(range(new_id, new_id + 8))
        out = ids_of(pool.query(labelled(batch)))
        for sent, got in zip(batch, out):
            if got != sent:
                # an old image: one that was in the pool, and the new one took its place
                assert got in in_pool
                in_pool.remove(got)
                in_pool.add(sent)
                old_returned += 1
        assert sorted(ids_of(torch.stack(pool.images))) == sorted(in_pool)
    # binomial(draws, p_old): 4 standard deviations
    assert abs(old_returned - p_old * draws) < 4 * math.sqrt(draws * p_old * (1 - p_old))


def test_state_round_trip_gives_identical_outputs():
    pool = HistoryPool(size=6, generator=torch.Generator().manual_seed(2))
    for start in range(0, 40, 4):
        pool.query(labelled(range(start, start + 4)))
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    buffer.seek(0)
    resumed = HistoryPool(size=6, generator=torch.Generator().manual_seed(999))
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for start in range(100, 160, 4):
        batch = labelled(range(start, start + 4))
        assert torch.equal(pool.query(batch), resumed.query(batch))


def test_size_zero_disables_the_pool():
    pool = HistoryPool(size=0)
    x = torch.randn(3, 3, 4, 4)
    for _ in range(3):
        assert torch.equal(pool.query(x), x)
    assert len(pool) == 0


def test_outputs_are_detached_from_the_generator():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert not HistoryPool(size=1, p_old=1.0).query(x * 2).requires_grad


def test_pools_without_a_generator_follow_the_global_seed_and_differ_from_each_other():
    def outputs():
        torch.manual_seed(0)
        a, b = HistoryPool(size=4), HistoryPool(size=4)
        for pool in (a, b):
            pool.query(labelled(range(4)))
        batch = labelled(range(10, 30))
        return ids_of(a.query(batch)), ids_of(b.query(batch))

    first, second = outputs(), outputs()
    assert first == second
    assert first[0] != first[1]
