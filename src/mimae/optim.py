"""What every training loop of the project shares about optimization: weight-decay groups, per-module learning-rate
scales, the per-iteration warmup + cosine schedule, and setting the learning rate of an optimizer.

Pretraining (``mimae.engine``), the linear probe and fine-tuning (``mimae.eval``) all read their schedule here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from timm.optim import param_groups_weight_decay

from mimae.config import param, register_section


@dataclass
class OptimConfig:
    batch_size: int = param(64, "images per process per micro-batch", low=1)
    accum_steps: int = param(1, "micro-batches accumulated per optimizer step", low=1)
    base_lr: float = param(3e-3, "learning rate per 256 (view, mask) samples; lr = base_lr * samples per step / 256, "
                                 "samples = images x crops x masks per image (3e-3: lr "
                                 "7.5e-4 at the default batch of 64, docs/default_recipe.md)", low=0.0)
    min_lr: float = param(0.0, "learning rate at the end of the cosine schedule", low=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay (none on biases, norms and tokens)", low=0.0)
    beta1: float = param(0.9, "AdamW beta1", low=0.0, high=1.0)
    beta2: float = param(0.95, "AdamW beta2", low=0.0, high=1.0)
    warmup_epochs: float = param(0.5, "linear warmup length, epochs (applied per iteration)", low=0.0)
    clip_grad: float | None = param(None, "clip the gradient norm to this value (None: no clipping)", low=0.0)


register_section("optim", OptimConfig, "optimizer")

NO_WEIGHT_DECAY = ("cls_token", "mask_token", "pos_embed", "relative_position_bias_table")  # (Swin: as timm)
FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW kernel exists (torch >= 2.4)


def split_by_lr_scale(groups: list[dict], model: torch.nn.Module, lr_scales: dict[str, float]) -> list[dict]:
    """Split parameter groups so that parameters whose name starts with a prefix of ``lr_scales`` form groups of
    their own with ``lr_scale`` set (:func:`set_learning_rate` multiplies the group's lr by it, as timm's layer
    decay does)."""
    if not lr_scales:
        return groups
    names = {id(p): n for n, p in model.named_parameters()}
    out = []
    for group in groups:
        by_scale: dict[float, list] = {}
        for p in group["params"]:
            scale = next((s for prefix, s in lr_scales.items() if names[id(p)].startswith(prefix)), 1.0)
            by_scale.setdefault(scale, []).append(p)
        out += [{**group, "params": params, "lr_scale": scale} for scale, params in by_scale.items()]
    return out


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig, lr_scales: dict[str, float] | None = None
                   ) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and tokens (as MAE), and per-module lr scales (parameter-name
    prefix -> multiplier). The fused implementation (one kernel for all parameters, on CPU too; see
    docs/benchmarks.md) where the parameters' device has it, else the multi-tensor (foreach) one. Fused, it
    also skips a step whose gradients are not finite on the device (``found_inf``, see ``mimae.train_step``)."""
    skip = [n for n, _ in model.named_parameters() if n.split(".")[-1] in NO_WEIGHT_DECAY]
    groups = param_groups_weight_decay(model, cfg.weight_decay, no_weight_decay_list=skip)
    groups = split_by_lr_scale(groups, model, lr_scales or {})
    fused = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in model.parameters())
    return torch.optim.AdamW(groups, lr=cfg.base_lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None,
                             foreach=None if fused else True)


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float, floor: float) -> float:
    """Per-iteration linear warmup to ``peak`` then half-cosine decay to ``floor``."""
    if step < warmup_steps:
        return peak * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's lr to ``lr`` times its ``lr_scale`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
