"""Patchify / unpatchify in MAE's order: patch index row-major, pixels inside a patch as (p, q, channel)."""

import torch


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, patch*patch*C) with L = (H/patch) * (W/patch)."""
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    x = images.reshape(b, c, gh, patch, gw, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, gh * gw, patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int, grid: tuple[int, int]) -> torch.Tensor:
    """(B, L, patch*patch*C) -> (B, C, H, W); the inverse of :func:`patchify`."""
    b = patches.shape[0]
    gh, gw = grid
    x = patches.reshape(b, gh, gw, patch, patch, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, channels, gh * patch, gw * patch)


def normalized_pixel_target(images: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """MAE's norm-pix target: each patch's pixels standardized by that patch's mean and variance. (B, L, p*p*C)."""
    target = patchify(images, patch)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5
