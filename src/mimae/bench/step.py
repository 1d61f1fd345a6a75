"""The pretraining step as the loop runs it, timed: samples/s, the split into data / forward / backward / optimizer,
FLOPs from torch's FLOP counter and peak memory.

A :class:`StepBench` holds the objective, optimizer, augmentation and step that the trainer builds
(``mimae.engine.build_training``), and a fixed batch of uint8 images of the configured size. ``run`` times whole
steps exactly as the training loop takes them (augmentation and masks drawn on the device, no host sync inside);
``split`` times the phases one by one with a device sync between them, so it is slower in sum and says only where
the time goes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from mimae.bench.machine import synchronize, timed
from mimae.config import Config
from mimae.data import DataInfo
from mimae.engine import build_training
from mimae.precision import autocast


@dataclass
class Phases:
    """Mean milliseconds per step of each phase."""

    data: float
    forward: float
    backward: float
    optimizer: float


class StepBench:
    """One pretraining step of ``cfg`` on ``device`` at ``batch`` images, in autocast ``dtype`` (None: fp32).

    ``augment=False`` feeds the same standardized images every step and times masks + forward + backward +
    optimizer only (what a side-by-side with a library whose augmentation runs in its data loader compares).
    ``compile`` runs the objective through ``torch.compile`` in ``run`` (not in ``split`` and ``flops``).
    """

    def __init__(self, cfg: Config, device: torch.device, batch: int, dtype: torch.dtype | None,
                 augment: bool = True, channels: int = 1, compile: bool = False):
        self.device, self.dtype, self.batch = device, dtype, batch
        cfg = copy.deepcopy(cfg)
        cfg.train.compile = compile
        info = DataInfo("benchmark", channels, 10, (0.5,) * channels, (0.25,) * channels)
        training = build_training(cfg, info, device, dtype, augment=augment)  # as the trainer builds it
        self.objective, self.optimizer, self.augment = training.objective, training.optimizer, training.augment
        self.model, self.train_step = training.model, training.train_step
        self.generator = torch.Generator(device).manual_seed(0)
        size = cfg.data.image_size
        self.images = torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8, device=device)
        self.fixed = None if augment else self.augment(self.images)
        self.samples_per_step = batch * self.objective.samples_per_image

    def prepare(self):
        images = self.fixed if self.fixed is not None else self.augment(self.images, self.generator)
        return images, self.objective.draw_masks(self.batch, self.generator, self.device)

    def step(self) -> None:
        result = self.train_step([self.prepare()], lambda batch: self.model(*batch))
        self.objective.after_step(result.outputs, result.applied)

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` steps (one device sync at the end)."""
        return timed(self.step, steps, self.device)

    def split(self, steps: int) -> Phases:
        """The phases of ``steps`` steps timed apart (a sync after each), mean ms per step."""
        totals = [0.0] * 4
        for _ in range(steps):
            marks = [time.perf_counter()]
            images, masks = self.prepare()
            synchronize(self.device)
            marks.append(time.perf_counter())
            with autocast(self.device, self.dtype):
                out = self.objective(images, masks)
            synchronize(self.device)
            marks.append(time.perf_counter())
            out["loss"].backward()
            synchronize(self.device)
            marks.append(time.perf_counter())
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            synchronize(self.device)
            marks.append(time.perf_counter())
            totals = [t + 1000 * (b - a) for t, a, b in zip(totals, marks, marks[1:])]
        return Phases(*(t / steps for t in totals))

    def flops(self) -> int:
        """FLOPs of one step's forward and backward (torch.utils.flop_counter: matmuls, convolutions, attention)."""
        images, masks = self.prepare()
        with FlopCounterMode(display=False) as counter:
            with autocast(self.device, self.dtype):
                out = self.objective(images, masks)
            out["loss"].backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()
