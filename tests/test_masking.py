import pytest
import torch

from mimae.masking import (
    complete_masking_views,
    draw_masks,
    orthogonal_masks,
    orthogonal_windows,
    random_masks,
    unit_to_patches,
)

GRID = (8, 8)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75, 0.9])
def test_random_ratio_and_consistency(ratio):
    m = random_masks(32, GRID, ratio, generator=gen())
    k = int(64 * (1 - ratio))
    assert m.keep.shape == (32, 1, k) and m.mask.shape == (32, 1, 64)
    assert torch.all(m.mask.sum(-1) == 64 - k)
    # visible ids are exactly the zeros of the mask, with no repeats
    for b in range(32):
        assert set(m.keep[b, 0].tolist()) == set(torch.nonzero(m.mask[b, 0] == 0).flatten().tolist())


def test_masks_differ_between_images_and_seeds_reproduce():
    a = random_masks(16, GRID, 0.75, generator=gen(1))
    b = random_masks(16, GRID, 0.75, generator=gen(1))
    c = random_masks(16, GRID, 0.75, generator=gen(2))
    assert torch.equal(a.keep, b.keep)
    assert not torch.equal(a.mask, c.mask)
    assert len({tuple(sorted(r.tolist())) for r in a.keep[:, 0]}) == 16


def test_orthogonal_four_views_partition_every_image():
    m = orthogonal_masks(64, GRID, 0.75, views=4, generator=gen())
    visible = 1 - m.mask  # (B, 4, L)
    assert torch.all(visible.sum(dim=1) == 1)  # each patch visible in exactly one view
    assert torch.all(visible.sum(dim=2) == 16)


@pytest.mark.parametrize("ratio, views", [(0.5, 2), (0.8, 5), (0.875, 8)])
def test_complete_masking_partitions(ratio, views):
    assert complete_masking_views(ratio) == views
    m = orthogonal_masks(8, GRID, ratio, views=views, generator=gen())
    visible = (1 - m.mask).sum(dim=1)
    assert torch.all(visible <= 1) and torch.all(visible.sum(-1) == views * int(64 * (1 - ratio)))


def test_orthogonal_low_ratio_overlaps_minimally_and_warns():
    with pytest.warns(UserWarning, match="overlap"):
        m = orthogonal_masks(4, GRID, 0.25, views=4, generator=gen())
    assert orthogonal_windows(64, 48, 4) == [0, 5, 11, 16]
    visible = (1 - m.mask).sum(dim=1)
    assert torch.all(visible >= 1)  # the windows still cover the image
    assert complete_masking_views(0.25) == 2


def test_independent_views_are_independent():
    m = draw_masks("independent", 64, GRID, 0.75, views=4, generator=gen())
    overlap = ((1 - m.mask).sum(dim=1) > 1).any(dim=-1)
    assert overlap.float().mean() > 0.9  # independent keep-sets of 16/64 almost always intersect


@pytest.mark.parametrize("kind", ["random", "orthogonal"])
def test_units_are_whole(kind):
    unit = 2
    m = draw_masks(kind, 16, GRID, 0.75, views=1 if kind == "random" else 4, unit=unit, generator=gen())
    table = unit_to_patches(GRID, unit)  # (16 units, 4 patches)
    per_unit = m.mask[..., table]  # (B, N, 16, 4)
    assert torch.all((per_unit == per_unit[..., :1]).all(-1))
    assert torch.all(m.mask.sum(-1) == 64 - 4 * int(16 * 0.25))


def test_unit_table_is_row_major_blocks():
    table = unit_to_patches((4, 4), 2)
    assert table.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="keeps no unit"):
        random_masks(2, GRID, 0.99)
    with pytest.raises(ValueError, match="tile"):
        random_masks(2, GRID, 0.5, unit=3)
    with pytest.raises(ValueError, match="unknown masking"):
        draw_masks("stripes", 2, GRID, 0.5)
