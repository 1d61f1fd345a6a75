import itertools

import pytest
import torch

from mimae.analysis.mask_geometry import geometry_at_ratio, masked_views, pair_distances
from mimae.masking import draw_masks

# four 1x4x4 images, patch 2 (a 2x2 patch grid), two classes
IMAGES = torch.tensor([
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
    [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]],
    [[0, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]],
], dtype=torch.float64).unsqueeze(1)
LABELS = torch.tensor([0, 0, 1, 1])


def direct(images, labels, masks):
    """The same quantities with explicit loops over pixels and pairs."""
    views = []
    for image, mask in zip(images, masks):
        view = image.clone()
        for patch, hidden in enumerate(mask.tolist()):
            if hidden:
                row, col = divmod(patch, 2)
                view[:, 2 * row:2 * row + 2, 2 * col:2 * col + 2] = 0
        views.append(view)
    intra, inter = [], []
    for i, j in itertools.combinations(range(len(images)), 2):
        d = float(((views[i] - views[j]) ** 2).sum().sqrt())
        (intra if labels[i] == labels[j] else inter).append(d)
    return {"intra": sum(intra) / len(intra), "inter": sum(inter) / len(inter),
            "all": sum(intra + inter) / len(intra + inter)}


def test_hand_made_masks_match_a_direct_computation():
    masks = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]], dtype=torch.float64)
    got = pair_distances(masked_views(IMAGES, masks, 2), LABELS)
    expected = direct(IMAGES, LABELS, masks)
    assert got == pytest.approx(expected, rel=1e-12)
    # by hand: view 0 is blank and view 1 keeps 4 lit pixels (distance 2); views 2 and 3 differ in 7 pixels
    assert got["intra"] == pytest.approx((2 + 7 ** 0.5) / 2, rel=1e-12)


@pytest.mark.parametrize("pairing", ["own", "shared"])
def test_geometry_at_ratio_matches_a_direct_computation_with_the_same_masks(pairing):
    result = geometry_at_ratio(IMAGES, LABELS, 0.5, 2, 1, 3, torch.Generator().manual_seed(7), pairing)
    generator = torch.Generator().manual_seed(7)
    draws = []
    for _ in range(3):
        mask = draw_masks("random", 4 if pairing == "own" else 1, (2, 2), 0.5, 1, 1, generator).mask[:, 0]
        draws.append(direct(IMAGES, LABELS, mask.expand(4, -1)))
    for key in ("intra", "inter", "all"):
        assert result[key] == pytest.approx(sum(d[key] for d in draws) / 3, rel=1e-12)
    assert result["relative"] == pytest.approx(result["intra"] / result["inter"])


def test_ratio_zero_is_the_plain_image_distance():
    result = geometry_at_ratio(IMAGES, LABELS, 0.0, 2, 1, 1, torch.Generator().manual_seed(0))
    assert result["all"] == pytest.approx(direct(IMAGES, LABELS, torch.zeros(4, 4))["all"], rel=1e-12)
    assert result["relative_std"] == 0.0
