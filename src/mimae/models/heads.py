"""Small MLP heads on top of the encoder (projectors, predictors)."""

from __future__ import annotations

from torch import nn


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, norm: str | None = "bn",
             last_norm: bool = False) -> nn.Sequential:
    """An MLP of ``layers`` Linear layers: (Linear -> norm -> GELU) x (layers - 1) -> Linear [-> norm, no affine].

    ``norm`` is ``bn`` (BatchNorm1d), ``ln`` (LayerNorm) or None; ``last_norm`` adds an affine-free BatchNorm after the
    output (as SimCLR / Barlow Twins projectors do). Input (B, in_dim) -> output (B, out_dim).
    """
    if layers < 1:
        raise ValueError(f"an MLP head needs at least one layer, got layers={layers}")
    norms = {"bn": nn.BatchNorm1d, "ln": nn.LayerNorm, None: None}
    if norm not in norms:
        raise ValueError(f"unknown norm {norm!r}; expected bn, ln or None")
    modules: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        modules.append(nn.Linear(dim, hidden_dim))
        if norms[norm] is not None:
            modules.append(norms[norm](hidden_dim))
        modules.append(nn.GELU())
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim))
    if last_norm:
        modules.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*modules)
