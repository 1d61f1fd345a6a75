"""Each joint-embedding and reconstruction loss against a direct computation of its formula on a hand-made batch."""

import math

import pytest
import torch

from mimae.objectives.mrcl import reconstruction_split
from mimae.objectives.simmim import masked_patch_l1
from mimae.objectives.ssl_losses import barlow_twins_loss, byol_loss, nt_xent, uniformity_loss


def batch(rows: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def test_nt_xent_matches_per_view_loop():
    z1, z2, tau = batch(4, 3, 0), batch(4, 3, 1), 0.5
    views = list(z1) + list(z2)
    m = len(z1)
    total = 0.0
    for i, zi in enumerate(views):
        positive = (i + m) % (2 * m)
        others = [math.exp(cosine(zi, zk) / tau) for k, zk in enumerate(views) if k != i]
        total += -math.log(math.exp(cosine(zi, views[positive]) / tau) / sum(others))
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * m), rel=1e-5)


def test_nt_xent_of_identical_orthogonal_views_is_the_closed_form():
    # 2 images, views identical and orthogonal across images: each view has its positive at cos 1 and two
    # negatives at cos 0 -> loss = -log(e^(1/t) / (e^(1/t) + 2)).
    z = torch.eye(2, 4)
    tau = 0.25
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert float(nt_xent(z, z.clone(), tau)) == pytest.approx(expected, rel=1e-6)


def test_byol_loss_hand_values():
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
    target = torch.tensor([[0.0, 5.0], [2.0, 2.0], [-1.0, 0.0]])  # cos 0, 1, -1 -> 2, 0, 4
    assert float(byol_loss(prediction, target)) == pytest.approx(2.0)


def test_byol_loss_gives_the_target_no_gradient():
    prediction, target = batch(3, 4, 0).requires_grad_(), batch(3, 4, 1).requires_grad_()
    byol_loss(prediction, target).backward()
    assert target.grad is None and prediction.grad.abs().sum() > 0


def test_barlow_twins_matches_elementwise_loop():
    z1, z2, w = batch(6, 3, 2), batch(6, 3, 3), 0.3
    n, d = z1.shape

    def standardized(z, j):
        col = [float(z[b, j]) for b in range(n)]
        mean = sum(col) / n
        std = math.sqrt(sum((c - mean) ** 2 for c in col) / n + 1e-5)
        return [(c - mean) / std for c in col]

    a = [standardized(z1, j) for j in range(d)]
    b = [standardized(z2, j) for j in range(d)]
    expected = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][k] * b[j][k] for k in range(n)) / n
            expected += (1 - c) ** 2 if i == j else w * c ** 2
    assert float(barlow_twins_loss(z1, z2, w)) == pytest.approx(expected, rel=1e-5)


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    # columns of z are orthogonal with zero mean and unit variance: C = identity.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(barlow_twins_loss(z, z.clone(), 1.0)) == pytest.approx(0.0, abs=1e-4)


def test_uniformity_matches_pairwise_loop():
    f, tau = batch(5, 3, 4), 0.7
    expected = sum((cosine(f[i], f[j]) / tau) ** 2 for i in range(5) for j in range(5)) / 25
    assert float(uniformity_loss(f, tau)) == pytest.approx(expected, rel=1e-5)


def test_uniformity_closed_forms():
    # B orthogonal features: only the B diagonal ones are 1 -> B / B^2; B identical features: 1.
    assert float(uniformity_loss(3 * torch.eye(4))) == pytest.approx(0.25)
    assert float(uniformity_loss(torch.ones(6, 2))) == pytest.approx(1.0)


def test_reconstruction_split_weights_masked_and_visible_patches():
    pred = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [2.0, 0.0]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0]])  # patches 0 and 2 masked: MSE 1 and 2 -> 1.5; visible patch 1: 0
    terms = reconstruction_split(pred, target, mask, masked_weight=8.0, unmasked_weight=5.0)
    assert float(terms["rec_masked"]) == pytest.approx(1.5)
    assert float(terms["rec_visible"]) == pytest.approx(0.0)
    assert float(terms["rec"]) == pytest.approx(8.0 * 1.5)
    pred[0, 1] = torch.tensor([3.0, 1.0])  # visible patch MSE 5
    terms = reconstruction_split(pred, target, mask, masked_weight=8.0, unmasked_weight=5.0)
    assert float(terms["rec"]) == pytest.approx(8.0 * 1.5 + 5.0 * 5.0)


def test_reconstruction_split_without_masked_patches_keeps_only_the_visible_term():
    pred, target = torch.ones(2, 4, 3), torch.zeros(2, 4, 3)
    terms = reconstruction_split(pred, target, torch.zeros(2, 4), masked_weight=7.0, unmasked_weight=2.0)
    assert set(terms) == {"rec_visible", "rec"} and float(terms["rec"]) == pytest.approx(2.0)


def test_simmim_l1_is_the_mean_absolute_error_over_masked_pixels():
    pred = torch.tensor([[[1.0, -3.0], [10.0, 10.0], [0.5, 0.5]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    # masked pixels: |1|, |-3|, |0.5|, |0.5| -> 5 / 4
    assert float(masked_patch_l1(pred, target, mask)) == pytest.approx(1.25)
