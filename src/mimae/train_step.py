"""The optimizer step that pretraining, the linear probe and fine-tuning share, and the metric window of a loop.

:class:`TrainStep` runs one optimizer step over ``accum_steps`` micro-batches: autocast, the loss scaled by the
gradient scaler (fp16 only), DDP's gradient all-reduce on the last micro-batch only, optional clipping, and a step
whose loss is not finite is not applied (one boolean crosses to the host per step for that, the only per-step
sync). The loss terms stay on the device; :class:`MetricWindow` sums them there and crosses to the host (and, under
DDP, reduces over processes in one collective on the training device) once per log window.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mimae import distributed
from mimae.precision import autocast, grad_scaler

Terms = dict[str, torch.Tensor]


@dataclass
class StepResult:
    """``terms``: the loss terms averaged over the micro-batches (detached, float32, on the device); ``outputs``:
    the last micro-batch's outputs as the forward returned them; ``applied``: False if the loss was not finite and
    the weights were left as they were."""

    terms: Terms
    outputs: Terms
    applied: bool


class TrainStep:
    """One optimizer step of ``model`` over micro-batches.

    ``ddp`` is the DistributedDataParallel wrapper when there is one (its gradient all-reduce is skipped on all but
    the last micro-batch); ``clip_grad`` clips the global gradient norm (logged as ``grad_norm``).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 dtype: torch.dtype | None, clip_grad: float | None = None, ddp: nn.Module | None = None):
        self.model, self.optimizer, self.device, self.dtype = model, optimizer, device, dtype
        self.clip_grad, self.ddp = clip_grad, ddp
        self.scaler = grad_scaler(device, dtype)

    def __call__(self, micro_batches: Sequence[Any], forward: Callable[[Any], Terms]) -> StepResult:
        """``forward(batch)`` returns named scalar tensors, ``loss`` among them, for one micro-batch."""
        count = len(micro_batches)
        totals: Terms = {}
        for i, batch in enumerate(micro_batches):
            skip_sync = self.ddp is not None and i < count - 1
            with self.ddp.no_sync() if skip_sync else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    out = forward(batch)
                self.scaler.scale(out["loss"] / count).backward()
            for key, value in out.items():
                value = value.detach().float() / count
                totals[key] = totals[key] + value if key in totals else value
        loss = totals["loss"].reshape(1)
        if distributed.is_distributed():  # non-finite in one process is non-finite in all: they skip together
            loss = distributed.all_reduce_mean(loss)
        if not bool(torch.isfinite(loss).all()):
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(totals, out, False)
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            totals["grad_norm"] = nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad).detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(totals, out, True)


class MetricWindow:
    """Running sums of a loop's named scalar terms, on the device, between two log lines."""

    def __init__(self):
        self.sums: Terms = {}
        self.steps = 0

    def add(self, terms: Terms) -> None:
        for key, value in terms.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def mean(self) -> dict[str, float]:
        """The window's mean of each term, averaged over processes (one collective, on the device of the terms),
        copied to the host once; the window is emptied."""
        keys = sorted(self.sums)
        if not keys:
            return {}
        stacked = torch.stack([self.sums[k] for k in keys]) / self.steps
        values = distributed.all_reduce_mean(stacked).tolist()
        self.sums, self.steps = {}, 0
        return dict(zip(keys, values))
