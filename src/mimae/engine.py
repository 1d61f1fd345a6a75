"""The pretraining loop: one code path for a CPU, one GPU, or many processes under torchrun.

data -> masks -> objective -> loss -> optimizer step. The objective (``mimae.objectives``) decides what the loss is;
this file only knows how to feed it, step the optimizer, log, evaluate and checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import torch
from timm.optim import param_groups_weight_decay
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from mimae import checkpoint as ckpt
from mimae import distributed
from mimae.config import Config, OptimConfig, save_config
from mimae.data import BatchAugment, train_test_sets
from mimae.eval.api import autocast_dtype, knn_eval
from mimae.objectives import Objective, build_objective
from mimae.objectives.base import objective_class

NO_WEIGHT_DECAY = ("cls_token", "mask_token", "pos_embed")


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way, after ``skip`` of this process's samples."""

    skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def single_thread_worker(_: int) -> None:
    """DataLoader workers use one thread each, so they do not fight the training process for cores."""
    torch.set_num_threads(1)


def split_by_lr_scale(groups: list[dict], model: torch.nn.Module, lr_scales: dict[str, float]) -> list[dict]:
    """Split parameter groups so that parameters whose name starts with a prefix of ``lr_scales`` form groups of
    their own with ``lr_scale`` set (the scheduler multiplies the group's lr by it, as timm's layer decay)."""
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


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and tokens (as MAE), and the objective's per-module lr scales
    (``Objective.lr_scales``)."""
    skip = [n for n, _ in model.named_parameters() if n.split(".")[-1] in NO_WEIGHT_DECAY]
    groups = param_groups_weight_decay(model, cfg.weight_decay, no_weight_decay_list=skip)
    groups = split_by_lr_scale(groups, model, getattr(model, "lr_scales", dict)())
    return torch.optim.AdamW(groups, lr=cfg.base_lr, betas=(cfg.beta1, cfg.beta2))


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float, floor: float) -> float:
    """Per-iteration linear warmup to ``peak`` then half-cosine decay to ``floor``."""
    if step < warmup_steps:
        return peak * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class MetricsLog:
    """Metrics as JSON lines in ``metrics.jsonl`` (main process only), and optionally TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = False):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, record.get("step", 0))


class Trainer:
    """Holds the state of one pretraining run; ``run()`` trains to the end (or resumes and does so)."""

    def __init__(self, cfg: Config, run_dir: str | Path, resume: bool = False, tensorboard: bool = False):
        self.cfg = cfg
        self.dist = distributed.setup(cfg.train.device)
        self.device = self.dist.device
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.run_dir = Path(run_dir)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.train.seed)  # identical initial weights in every process

        objective_cls = objective_class(cfg.method)
        self.dataset, _, self.info = train_test_sets(cfg.data)
        self.augment = BatchAugment(objective_cls.augmentation, self.info, cfg.data.image_size,
                                    cfg.data.crop_scale_min, objective_cls.crops)
        self.objective: Objective = build_objective(cfg, self.info.channels).to(self.device)
        self.optimizer = make_optimizer(self.objective, cfg.optim)
        self.autocast = autocast_dtype(cfg.train.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast == torch.float16)

        o = cfg.optim
        self.sampler = ResumableSampler(self.dataset, self.dist.world_size, self.dist.rank, shuffle=True,
                                        seed=cfg.train.seed, drop_last=True)
        self.loader = DataLoader(self.dataset, batch_size=o.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=cfg.data.num_workers, worker_init_fn=single_thread_worker,
                                 pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = (len(self.dataset) // self.dist.world_size // o.batch_size) // o.accum_steps
        if self.steps_per_epoch < 1:
            raise ValueError(f"{len(self.dataset)} training images make no full optimizer step of "
                             f"{o.batch_size} x {o.accum_steps} x {self.dist.world_size} processes")
        # learning rate and, with train.equal_samples, the schedule count (image, mask) samples, so a method that
        # masks each image N times trains on batch / N images with MAE's lr for epochs / N passes
        views = self.objective.views_per_image
        sample_epoch_steps = self.steps_per_epoch / views if cfg.train.equal_samples else self.steps_per_epoch
        self.total_steps = max(1, round(cfg.train.epochs * sample_epoch_steps))
        self.effective_batch = o.batch_size * o.accum_steps * self.dist.world_size
        self.peak_lr = o.base_lr * self.effective_batch * views / 256
        self.warmup_steps = round(o.warmup_epochs * sample_epoch_steps)

        # augmentation and masks draw from this generator; its state is checkpointed
        self.generator = torch.Generator(self.device).manual_seed(cfg.train.seed * 7919 + self.dist.rank)
        self.step = 0
        self.results: dict = {}
        if resume and (self.run_dir / ckpt.CHECKPOINT_NAME).is_file():
            self.load_checkpoint(self.run_dir / ckpt.CHECKPOINT_NAME)
        self.model = self.objective
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.objective, device_ids=ids,
                                                 find_unused_parameters=self.objective.unused_parameters)
        if cfg.train.compile:
            self.model = torch.compile(self.model)
        self.log = MetricsLog(self.run_dir, self.dist.is_main, tensorboard)
        if self.dist.is_main and self.step == 0 and self.log.path.exists():
            self.log.path.unlink()  # a fresh run in an old folder starts a fresh log

    # -- checkpoints -------------------------------------------------------------------------------------------

    def state(self) -> dict:
        return {"model": self.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "step": self.step, "epoch": self.step // self.steps_per_epoch,
                "rng": ckpt.rng_state(self.generator), "config": self.cfg.to_dict(),
                "in_chans": self.info.channels, "method": self.cfg.method, "results": self.results}

    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            state = self.state()
            ckpt.atomic_save(state, self.run_dir / ckpt.CHECKPOINT_NAME)
            if self.cfg.train.keep_checkpoints and self.step % self.steps_per_epoch == 0:
                ckpt.atomic_save(state, self.run_dir / f"checkpoint-epoch{self.step // self.steps_per_epoch}.pt")
        distributed.barrier()

    def load_checkpoint(self, path: Path) -> None:
        state = ckpt.load(path, map_location=self.device)
        self.objective.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.results = state.get("results", {})
        ckpt.restore_rng(state["rng"], self.generator)

    # -- training ----------------------------------------------------------------------------------------------

    def train_step(self, micro_batches: list[torch.Tensor]) -> dict[str, float]:
        """One optimizer step over ``accum_steps`` micro-batches. Returns the step's metrics."""
        lr = learning_rate(self.step, self.total_steps, self.warmup_steps, self.peak_lr, self.cfg.optim.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        totals: dict[str, float] = {}
        for i, images in enumerate(micro_batches):
            images = self.augment(images.to(self.device, non_blocking=True), self.generator)
            masks = self.objective.draw_masks(images.shape[0], self.generator, self.device)
            sync = i == len(micro_batches) - 1 or not isinstance(self.model, DistributedDataParallel)
            with (self.model.no_sync() if not sync else contextlib.nullcontext()):
                with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                                    enabled=self.autocast is not None):
                    out = self.model(images, masks)
                self.scaler.scale(out["loss"] / len(micro_batches)).backward()
            for key, value in out.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) / len(micro_batches)
        if self.cfg.optim.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.objective.parameters(),
                                                                       self.cfg.optim.clip_grad))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.objective.after_step(out)
        self.step += 1
        totals["lr"] = lr
        return totals

    def evaluate(self, tag: str) -> float | None:
        """kNN accuracy in the main process (others wait); recorded in ``results`` and the metrics log."""
        acc = None
        if self.dist.is_main:
            result = knn_eval(self.objective.encoder, self.cfg, self.device)
            acc = result["accuracy"]
            self.results[f"knn_{tag}"] = acc
            self.log.write({"step": self.step, "epoch": self.step / self.steps_per_epoch, f"knn_{tag}": acc,
                            "knn": acc})
            tqdm.write(f"kNN accuracy ({tag}): {acc:.2f}%")
        distributed.barrier()
        return acc

    def run(self, until_step: int | None = None) -> dict:
        """Train to the end of the schedule, or only up to ``until_step`` (then checkpoint and return, so that a
        later ``resume`` continues exactly)."""
        cfg = self.cfg
        stop_at = self.total_steps if until_step is None else min(until_step, self.total_steps)
        if self.dist.is_main:
            save_config(cfg, self.run_dir / "config.yaml")
        if self.step == 0 and cfg.train.knn_at_init:
            self.evaluate("init")
        if self.step == 0 and cfg.train.keep_checkpoints:
            self.save_checkpoint()  # checkpoint-epoch0.pt: the initialization
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"pretrain {cfg.method}",
                   disable=not self.dist.is_main, dynamic_ncols=True)
        window: dict[str, float] = {}
        window_start, window_steps, train_seconds = time.perf_counter(), 0, 0.0
        while self.step < stop_at:
            epoch = self.step // self.steps_per_epoch
            done_in_epoch = self.step % self.steps_per_epoch
            self.sampler.set_position(epoch, done_in_epoch * cfg.optim.batch_size * cfg.optim.accum_steps)
            micro: list[torch.Tensor] = []
            for images, _ in self.loader:
                micro.append(images)
                if len(micro) < cfg.optim.accum_steps:
                    continue
                metrics = self.train_step(micro)
                micro = []
                if not all(math.isfinite(v) for v in metrics.values()):
                    raise FloatingPointError(f"non-finite metrics at step {self.step}: {metrics}")
                for key, value in metrics.items():
                    window[key] = window.get(key, 0.0) + value
                window_steps += 1
                bar.update(1)
                if self.step % cfg.train.log_every == 0 or self.step % self.steps_per_epoch == 0 \
                        or self.step == stop_at:
                    seconds = time.perf_counter() - window_start
                    train_seconds += seconds
                    record = {k: v / window_steps for k, v in window.items()}
                    record = {k: float(distributed.all_reduce_mean(torch.tensor(v))) for k, v in record.items()}
                    record.update(step=self.step, epoch=self.step / self.steps_per_epoch,
                                  images_per_s=window_steps * self.effective_batch / seconds)
                    self.log.write(record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}")
                    window, window_steps = {}, 0
                    window_start = time.perf_counter()
                if self.step % self.steps_per_epoch == 0 or self.step == stop_at:
                    break
            if self.step % self.steps_per_epoch:  # stopped part-way through an epoch
                self.save_checkpoint()
                break
            epoch_done = self.step // self.steps_per_epoch
            if cfg.train.eval_every and epoch_done % cfg.train.eval_every == 0 and self.step < self.total_steps:
                self.evaluate(f"epoch{epoch_done}")
            if epoch_done % cfg.train.save_every == 0 or self.step == stop_at:
                self.save_checkpoint()
            window_start = time.perf_counter()
        bar.close()
        if self.step < self.total_steps:
            return self.results
        if "knn_final" not in self.results:
            self.evaluate("final")
            self.save_checkpoint()
        self.results["train_seconds"] = train_seconds
        if self.dist.is_main:
            (self.run_dir / "results.json").write_text(json.dumps(
                {"method": cfg.method, "steps": self.step, "effective_batch": self.effective_batch,
                 **self.results}, indent=2))
        return self.results


def pretrain(cfg: Config, run_dir: str | Path, resume: bool = False, tensorboard: bool = False) -> dict:
    """Pretrain ``cfg.method`` into ``run_dir`` (resuming from its checkpoint if asked); returns the results."""
    return Trainer(cfg, run_dir, resume, tensorboard).run()
