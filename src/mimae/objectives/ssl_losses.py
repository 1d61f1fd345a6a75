"""Joint-embedding losses as pure functions: SimCLR's NT-Xent, BYOL's, Barlow Twins', U-MAE's uniformity.

The losses that compare samples across the batch (NT-Xent, Barlow Twins, uniformity) gather the features of every
process with :func:`mimae.distributed.gather_with_grad`, so each process computes the loss of the global batch and
gets the gradient of that loss with respect to its own features; with one process the gather is the identity.
All losses compute in float32 with autocast off (:func:`mimae.precision.float32_loss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mimae.distributed import gather_with_grad
from mimae.precision import float32_loss


@float32_loss
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalized-temperature cross-entropy over the global batch.

    z1, z2 (B, d): projections of two views of the same B images. With M images in the global batch, each of the 2M
    views is classified among the other 2M - 1 views (cosine similarity / temperature), its positive being the
    other view of its image; the loss is the mean cross-entropy over the 2M views. Returns a scalar.
    """
    z = F.normalize(torch.cat([gather_with_grad(z1), gather_with_grad(z2)]), dim=1)
    m = z.shape[0] // 2
    logits = z @ z.T / temperature
    self_pairs = torch.eye(2 * m, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    positives = torch.cat([torch.arange(m, 2 * m), torch.arange(m)]).to(z.device)
    return F.cross_entropy(logits, positives)


@float32_loss
def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss 2 - 2 cos(prediction, target), averaged over the batch; the target gets no gradient.

    prediction, target (B, d). Per-sample, so no gather is needed. Returns a scalar.
    """
    cos = F.cosine_similarity(prediction, target.detach(), dim=1)
    return (2 - 2 * cos).mean()


def standardize_batch(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each feature of z (M, d) to zero mean and unit (biased) variance over the batch, as an affine-free BatchNorm."""
    return (z - z.mean(dim=0)) / (z.var(dim=0, unbiased=False) + eps).sqrt()


@float32_loss
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, offdiag_weight: float) -> torch.Tensor:
    """Barlow Twins: the cross-correlation C = z1n^T z2n / M of the batch-standardized projections of the global
    batch (M images), loss = sum_i (1 - C_ii)^2 + offdiag_weight * sum_{i != j} C_ij^2.

    z1, z2 (B, d). Returns a scalar.
    """
    a = standardize_batch(gather_with_grad(z1))
    b = standardize_batch(gather_with_grad(z2))
    c = a.T @ b / a.shape[0]
    diagonal = torch.diagonal(c)
    on = (1 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on + offdiag_weight * off


@float32_loss
def uniformity_loss(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """U-MAE's uniformity regularizer: mean over all pairs (i, j) of the global batch of (f_i . f_j / temperature)^2,
    with f the L2-normalized features (the authors' release; temperature 1 is the plain mean((f f^T)^2)).

    features (B, d). Returns a scalar.
    """
    f = F.normalize(gather_with_grad(features), dim=1)
    return (f @ f.T / temperature).pow(2).mean()
