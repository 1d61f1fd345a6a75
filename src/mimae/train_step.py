"""The optimizer step that pretraining, the linear probe and fine-tuning share, and the metric window of a loop.

:class:`TrainStep` runs one optimizer step over ``accum_steps`` micro-batches: autocast, the loss scaled by the
gradient scaler (fp16 only), DDP's gradient all-reduce on the last micro-batch only, optional clipping, and a step
whose loss is not finite is not applied. With a fused optimizer (``mimae.optim.make_optimizer``'s AdamW) the skip
happens on the device, as the gradient scaler's does: the optimizer reads a ``found_inf`` flag, so nothing crosses to
the host per step; any other optimizer costs one boolean per step. The loss terms and the flag stay on the device;
:class:`MetricWindow` sums them there and crosses to the host (and, under DDP, reduces over processes in one
collective on the training device) once per log window.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mimae import distributed
from mimae.precision import autocast, grad_scaler

Terms = dict[str, torch.Tensor]


@dataclass
class StepResult:
    """``terms``: the loss terms averaged over the micro-batches (detached, float32, on the device); ``outputs``:
    the last micro-batch's outputs as the forward returned them; ``applied``: a 0-d bool tensor on the device, False
    if the loss was not finite and the weights were left as they were."""

    terms: Terms
    outputs: Terms
    applied: torch.Tensor


class TrainStep:
    """One optimizer step of ``model`` over micro-batches.

    ``ddp`` is the DistributedDataParallel wrapper when there is one (its gradient all-reduce is skipped on all but
    the last micro-batch); ``clip_grad`` clips the global gradient norm (logged as ``grad_norm``).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 dtype: torch.dtype | None, clip_grad: float | None = None,
                 ddp: DistributedDataParallel | None = None):
        self.model, self.optimizer, self.device, self.dtype = model, optimizer, device, dtype
        self.clip_grad, self.ddp = clip_grad, ddp
        self.scaler = grad_scaler(device, dtype)

    def __call__(self, micro_batches: Sequence[Any], forward: Callable[[Any], Terms]) -> StepResult:
        """``forward(batch)`` returns named scalar tensors, ``loss`` among them, for one micro-batch."""
        count = len(micro_batches)
        totals: Terms = {}
        for i, batch in enumerate(micro_batches):
            skip_sync = self.ddp is not None and i < count - 1
            with self.ddp.no_sync() if self.ddp is not None and skip_sync else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    out = forward(batch)
                self.scaler.scale(out["loss"] / count).backward()
            for key, value in out.items():
                value = value.detach().float() / count
                totals[key] = totals[key] + value if key in totals else value
        loss = totals["loss"].reshape(1)
        if distributed.is_distributed():  # non-finite in one process is non-finite in all: they skip together
            loss = distributed.all_reduce_mean(loss)
        applied = torch.isfinite(loss).all()
        on_device = getattr(self.optimizer, "_step_supports_amp_scaling", False)
        if not on_device and not bool(applied):
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(totals, out, applied)
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            totals["grad_norm"] = nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad).detach()
        if on_device and not self.scaler.is_enabled():  # the scaler, when there is one, sets found_inf itself
            fused: Any = self.optimizer  # torch's fused AdamW reads these two attributes when they are set
            fused.grad_scale, fused.found_inf = None, (~applied).float()
            fused.step()
            del fused.grad_scale, fused.found_inf
        else:
            self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(totals, out, applied)


class MetricWindow:
    """Running sums of a loop's named scalar terms, on the device, between two log lines. A step that was not
    applied (its loss not finite) counts in ``steps`` but not in the means."""

    def __init__(self) -> None:
        self.sums: Terms = {}
        self.steps = 0

    def add(self, terms: Terms, applied: torch.Tensor | None = None) -> None:
        """One step's terms (``loss`` among them); ``applied`` a 0-d bool tensor (None: applied)."""
        loss = terms["loss"]
        applied = torch.ones((), dtype=torch.bool, device=loss.device) if applied is None else applied
        for key, value in {**terms, APPLIED: applied}.items():
            value = torch.where(applied, value.detach().float(), 0.0)
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def mean(self, counters: Terms | None = None) -> dict[str, float]:
        """The window's mean of each term over its applied steps (no term when none was applied), averaged over
        processes, and the ``counters`` (0-d tensors, the same in every process) as they are: one collective on the
        training device and one copy to the host. The window is emptied."""
        counters = counters or {}
        if not self.steps and not counters:
            return {}
        keys, extra = sorted(k for k in self.sums if k != APPLIED), sorted(counters)
        device = (self.sums[APPLIED] if self.steps else counters[extra[0]]).device
        count = self.sums.get(APPLIED, torch.zeros((), device=device))
        parts = [self.sums[k] / count.clamp(min=1) for k in keys] + [count]
        values = distributed.all_reduce_mean(torch.stack(parts + [counters[k].float() for k in extra])).tolist()
        record = dict(zip(keys, values)) if values[len(keys)] > 0 else {}
        record.update(zip(extra, values[len(keys) + 1:]))
        self.sums, self.steps = {}, 0
        return record


APPLIED = "applied"  # the count of applied steps among a window's sums
