"""Fixed 2D sine-cosine position embeddings (as in MAE and MoCo v3)."""

import torch


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """positions (M,) -> (M, dim): sin of the first dim/2 frequencies, then cos."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim: int, grid_h: int, grid_w: int, cls_token: bool = True) -> torch.Tensor:
    """(1 + h*w, dim) embedding for a row-major grid; the [CLS] row (first) is all zeros.

    Half the channels encode the row, half the column; ``dim`` must be divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs a width divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    emb = torch.cat([sincos_1d(dim // 2, cols.flatten()), sincos_1d(dim // 2, rows.flatten())], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()
