"""Small MLP heads on top of the encoder (projectors, predictors)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mimae.distributed import gather_with_grad, is_distributed


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the global batch under DDP (as SimCLR and BYOL use
    SyncBatchNorm at scale), on any backend: the features of every process are gathered with a correct backward,
    normalized together and this process's rows kept. With one process, or in eval mode, it is BatchNorm1d.

    x (B, D) -> (B, D).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        everything = gather_with_grad(x)
        rank_start = torch.distributed.get_rank() * x.shape[0]
        tracked = self.num_batches_tracked
        assert tracked is not None  # track_running_stats, the default
        tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(tracked)
        out = F.batch_norm(everything, self.running_mean, self.running_var, self.weight, self.bias, True,
                           momentum, self.eps)
        return out[rank_start:rank_start + x.shape[0]]


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, norm: str | None = "bn",
             last_norm: bool = False) -> nn.Sequential:
    """An MLP of ``layers`` Linear layers: (Linear -> norm -> GELU) x (layers - 1) -> Linear [-> norm, no affine].

    ``norm`` is ``bn`` (:class:`GlobalBatchNorm1d`: the global batch's statistics under DDP), ``ln`` (LayerNorm) or
    None; ``last_norm`` adds an affine-free BatchNorm after the output (as SimCLR / Barlow Twins projectors do).
    Input (B, in_dim) -> output (B, out_dim).
    """
    if layers < 1:
        raise ValueError(f"an MLP head needs at least one layer, got layers={layers}")
    norms: dict[str | None, type[nn.Module] | None] = {"bn": GlobalBatchNorm1d, "ln": nn.LayerNorm, None: None}
    if norm not in norms:
        raise ValueError(f"unknown norm {norm!r}; expected bn, ln or None")
    norm_cls = norms[norm]
    modules: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        modules.append(nn.Linear(dim, hidden_dim))
        if norm_cls is not None:
            modules.append(norm_cls(hidden_dim))
        modules.append(nn.GELU())
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim))
    if last_norm:
        modules.append(GlobalBatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*modules)
