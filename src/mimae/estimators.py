"""Mutual-information estimators as pure functions on tensors (no modules, no state).

* :func:`info_nce` - the InfoNCE loss (Oord et al., 2018) on a matrix of critic scores with any set of positives,
  and :func:`info_nce_bound` - the lower bound on MI it implies, in nats.
* :func:`gaussian_log_prob` / :func:`gaussian_log_prob_matrix` - log-densities of diagonal Gaussians.
* :func:`club` - the CLUB upper bound (Cheng et al., 2020) from a matrix of conditional log-densities.
* :func:`view_positives` - the positive / excluded pattern of MI-MAE's Eq. 7-8 for B images with N views each.

All logs are natural logs, so every estimate is in nats. Each runs in float32 with autocast off
(:func:`mimae.precision.float32_loss`), so a bf16 run computes it as an fp32 run would from the same inputs.
"""

from __future__ import annotations

import math

import torch

from mimae.precision import float32_loss

LOG_2PI = math.log(2 * math.pi)


@float32_loss
def info_nce(scores: torch.Tensor, positives: torch.Tensor, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over positive pairs (i, k) of ``-log exp(s_ik) / sum_{c not excluded from row i} exp(s_ic)``.

    scores (M, C) critic values (e.g. cosine / tau); positives (M, C) bool, the pairs the loss averages over;
    excluded (M, C) bool, entries left out of the denominators (e.g. each view's similarity with itself).
    Returns a scalar. With ``positives = eye`` and nothing excluded this is the standard InfoNCE loss.
    """
    if excluded is not None:
        scores = scores.masked_fill(excluded, float("-inf"))
    log_prob = scores - torch.logsumexp(scores, dim=1, keepdim=True)
    return -log_prob[positives].mean()


def info_nce_bound(loss: torch.Tensor, candidates: int, positives_per_row: int = 1) -> torch.Tensor:
    """The InfoNCE lower bound on MI in nats: ``log(candidates / positives_per_row) - loss``.

    ``candidates`` is the number of terms in each denominator, ``positives_per_row`` how many of them are positives
    (the loss cannot fall below ``log(positives_per_row)``). The bound never exceeds ``log(candidates / positives)``.
    """
    return math.log(candidates / positives_per_row) - loss


def view_positives(images: int, views: int, device=None, group: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 7-8 over B*N views ordered image-major (image b's views adjacent).

    Returns (positives, excluded), both (B*N, B*N) bool: positives are the other N-1 views of the same image,
    excluded is the diagonal (a view is never its own candidate). With ``group`` g > 1 each image's N views are
    N / g consecutive groups (crops) of g: positives are the views of the image's other groups, and a view's own
    group (itself included) is excluded from its candidates.
    """
    image_of = torch.arange(images, device=device).repeat_interleave(views)
    group_of = torch.arange(images * views, device=device) // group
    same_image = image_of[:, None] == image_of[None, :]
    excluded = group_of[:, None] == group_of[None, :]
    return same_image & ~excluded, excluded


@float32_loss
def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dim. Shapes broadcast; (..., D) -> (...)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(dim=-1)


@float32_loss
def gaussian_log_prob_matrix(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """All pairs: out[..., j, k] = log N(z_k; mu_j, diag(exp(logvar_j))).

    z (..., M, D); mu, logvar (..., J, D) -> (..., J, M). Computed with matrix products (no (J, M, D) tensor).
    """
    precision = torch.exp(-logvar)
    quadratic = (precision @ z.pow(2).transpose(-1, -2)
                 - 2 * (mu * precision) @ z.transpose(-1, -2)
                 + (mu.pow(2) * precision).sum(-1, keepdim=True))
    return -0.5 * (quadratic + logvar.sum(-1, keepdim=True) + z.shape[-1] * LOG_2PI)


@float32_loss
def club(log_q: torch.Tensor) -> torch.Tensor:
    """CLUB estimate of I(X; Z) in nats from log_q (..., M, M), log_q[..., j, k] = log q(z_k | x_j).

    ``mean_j [log q(z_j | x_j) - mean_k log q(z_k | x_j)]`` over j and any leading dims (Eq. 10 of paper 000 with
    the sum over k running over the last dim). With q the true conditional it upper-bounds I(X; Z).
    """
    positive = torch.diagonal(log_q, dim1=-2, dim2=-1)
    return (positive - log_q.mean(dim=-1)).mean()
