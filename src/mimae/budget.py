"""A run's training budget from its config alone: images and (view, mask) samples per optimizer step, optimizer
steps, the peak learning rate; and the FLOPs of one step. The trainer schedules by it and an experiment checks its
rows' budgets by it before anything trains, so the two cannot disagree.

A sample is one (view, mask) pair an encoder is trained on: an image gives ``crops x masks`` of them per step
(MAE 1, MI-MAE N, SimCLR and MRCL 2). The learning rate follows the samples: lr = base_lr x samples per step / 256.

With ``train.equal_samples`` the budget is counted in samples, as paper 000 counts it (1,024 images x 4 masks,
"equivalent to 4096"): ``optim.batch_size`` is samples per micro-batch, so a method with N samples per image takes
batch_size / N images per step, and ``train.epochs`` is epochs of samples. Every method then takes the same steps
at the same peak lr on the same samples; only the distinct images it sees differ (1/N as many).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from mimae.config import Config, ConfigError
from mimae.data import BatchAugment, DataInfo
from mimae.objectives.base import build_objective, crops_per_image, samples_per_image


@dataclass(frozen=True)
class Budget:
    images_per_micro_batch: int  # per process
    samples_per_image: int  # (view, mask) samples one image gives per step
    images_per_step: int  # over every process and accumulated micro-batch
    steps_per_epoch: int  # optimizer steps per pass over the training images
    sample_epoch_steps: float  # optimizer steps per epoch as train.epochs counts it (a pass, or a pass of samples)
    steps: int  # optimizer steps of the whole run
    warmup_steps: int
    peak_lr: float

    @property
    def samples_per_step(self) -> int:
        return self.images_per_step * self.samples_per_image

    @property
    def samples(self) -> int:
        """(view, mask) samples of the whole run."""
        return self.steps * self.samples_per_step

    @property
    def images_seen(self) -> int:
        """Images drawn over the whole run (an image drawn in two epochs counts twice)."""
        return self.steps * self.images_per_step


def images_per_micro_batch(cfg: Config, per_image: int) -> int:
    """Images per process per micro-batch: ``optim.batch_size``, or under ``train.equal_samples`` that many samples'
    worth of images."""
    o = cfg.optim
    if not cfg.train.equal_samples:
        return o.batch_size
    if o.batch_size % per_image:
        raise ConfigError(f"optim.batch_size={o.batch_size} counts (view, mask) samples (train.equal_samples=true) "
                          f"and {cfg.method} takes {per_image} per image: use a multiple of {per_image}")
    return o.batch_size // per_image


def peak_lr(cfg: Config, images_per_step: int, per_image: int) -> float:
    """lr = base_lr x (view, mask) samples per step / 256."""
    return cfg.optim.base_lr * images_per_step * per_image / 256


def sample_epochs(cfg: Config, per_image: int) -> float:
    """The run's length in passes of samples over the training images (an MAE epoch is one): with the samples per
    step and the training images it fixes the steps."""
    return cfg.train.epochs if cfg.train.equal_samples else cfg.train.epochs * per_image


def budget(cfg: Config, train_images: int, world_size: int = 1, per_image: int | None = None) -> Budget:
    """The budget of ``cfg`` on ``train_images`` images over ``world_size`` processes (``per_image``: the samples
    per image, when the objective is already built)."""
    o, per_image = cfg.optim, per_image or samples_per_image(cfg)
    images = images_per_micro_batch(cfg, per_image)
    steps_per_epoch = train_images // world_size // images // o.accum_steps
    if steps_per_epoch < 1:
        raise ConfigError(f"{train_images} training images make no full optimizer step of {images} images x "
                          f"{o.accum_steps} micro-batches x {world_size} processes")
    # with equal samples an epoch is a pass of samples: the steps of a method taking 1 sample per image
    sample_epoch_steps = (train_images // world_size // (images * per_image) // o.accum_steps
                          if cfg.train.equal_samples else steps_per_epoch)
    images_per_step = images * o.accum_steps * world_size
    return Budget(images, per_image, images_per_step, steps_per_epoch, sample_epoch_steps,
                  steps=max(1, round(cfg.train.epochs * sample_epoch_steps)),
                  warmup_steps=round(o.warmup_epochs * sample_epoch_steps),
                  peak_lr=peak_lr(cfg, images_per_step, per_image))


def step_flops(cfg: Config, channels: int = 3, counted_images: int = 8) -> float:
    """FLOPs of one optimizer step's forward and backward under ``cfg`` in one process, as torch's FLOP counter
    counts them (matmuls and convolutions; not the CPU's attention kernel, a few % of a small ViT's): the objective
    built on the CPU and run once on ``counted_images`` blank ``channels``-channel images (their samples), scaled
    to the step's images. Per-sample layers scale exactly; the batch-wide terms (InfoNCE's similarity matrix) are
    under 0.1% of a step at the cpu scale. What a run's time scales with between configs that differ in method,
    masks or backbone; ``channels`` moves the patch embedding's share only."""
    per_image = samples_per_image(cfg)
    images = images_per_micro_batch(cfg, per_image) * cfg.optim.accum_steps
    counted = min(images, counted_images)
    size = cfg.data.image_size
    info = DataInfo("blank", channels, 10, (0.5,) * channels, (0.25,) * channels)
    batch = BatchAugment("none", info, size, crops=crops_per_image(cfg))(
        torch.zeros(counted, channels, size, size, dtype=torch.uint8))
    objective = build_objective(cfg, channels, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a count, not a timing: one thread leaves the cores to a sweep that may be training
    try:
        with FlopCounterMode(display=False) as counter:
            objective(batch, generator=torch.Generator().manual_seed(0))["loss"].backward()
    finally:
        torch.set_num_threads(threads)
    return counter.get_total_flops() * images / counted
