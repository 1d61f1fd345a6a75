"""The pretraining loop: one code path for a CPU, one GPU, or many processes under torchrun.

data -> masks -> objective -> loss -> optimizer step. The objective (``mimae.objectives``) decides what the loss is;
this file only knows how to feed it, step the optimizer, log, checkpoint, and call the :class:`Monitor` it is handed
(the kNN accuracy, from :mod:`mimae.workflow`, which also writes the report). It imports no evaluation, analysis or
report module.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from mimae import checkpoint as ckpt
from mimae import distributed, run_folder
from mimae.budget import budget
from mimae.config import Config, save_config
from mimae.data import BatchAugment, DataInfo, image_count, pretraining_set, skipped_images
from mimae.data.loader import LoaderWorkerDied, next_batch, training_loader, worker_death
from mimae.masking import Masks
from mimae.models import Encoder
from mimae.objectives import Objective, build_objective
from mimae.objectives.base import crops_per_image, objective_class
from mimae.optim import learning_rate, make_optimizer, set_learning_rate
from mimae.precision import autocast_dtype, check_precision
from mimae.progress import progress
from mimae.runs import Source, latest_checkpoint, load_encoder_weights, read
from mimae.train_step import MetricWindow, TrainStep


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


class MetricsLog:
    """Metrics as JSON lines in ``metrics.jsonl`` (main process only), and optionally TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = False):
        self.path = run_dir / run_folder.LOG_NAME
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


class Monitor(Protocol):
    """What a run measures along training: an accuracy (%) of the encoder at ``init``, every
    ``train.eval_every`` epochs and at the end, recorded as ``<name>_<when>``, and of a baseline once
    (``<name>_pixels``)."""

    name: str  # the results' key prefix: knn -> knn_init, knn_final, knn_pixels
    label: str  # in the printed line: "kNN accuracy (final): 81.20%"
    baseline_label: str

    def accuracy(self, encoder: Encoder, device: torch.device) -> float: ...

    def baseline(self) -> float: ...


@dataclass
class Training:
    """What a pretraining step needs, built one way for the trainer and the benchmarks."""

    objective: Objective
    optimizer: torch.optim.Optimizer
    augment: BatchAugment  # uint8 images on the device -> the objective's input
    model: nn.Module  # what a step calls: the objective, wrapped in DDP and torch.compile as configured
    train_step: TrainStep


def build_training(cfg: Config, info: DataInfo, device: torch.device, dtype: torch.dtype | None,
                   cropped: bool = False, augment: bool = True, world_size: int = 1) -> Training:
    """The objective of ``cfg`` at ``train.seed`` (the same initial weights in every process), its optimizer, the
    batch augmentation (``augment=False``: none; ``cropped``: the dataset already cropped), DDP over ``world_size``
    processes, ``train.compile``, and the step in autocast ``dtype`` (None: fp32)."""
    kind = objective_class(cfg.method)
    objective = build_objective(cfg, info.channels, cfg.train.seed).to(device)
    optimizer = make_optimizer(objective, cfg.optim, objective.lr_scales())
    augmentation = BatchAugment(kind.augmentation if augment else "none", info, cfg.data.image_size,
                                cfg.data.crop_scale_min, crops_per_image(cfg), cropped)
    ddp = None
    if world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        ddp = DistributedDataParallel(objective, device_ids=ids, find_unused_parameters=objective.unused_parameters)
    model: nn.Module = ddp or objective
    if cfg.train.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    step = TrainStep(objective, optimizer, device, dtype, cfg.optim.clip_grad, ddp)
    return Training(objective, optimizer, augmentation, model, step)


class Trainer:
    """Holds the state of one pretraining run; ``run()`` trains to the end (or resumes and does so).

    Each optimizer step is ``optimizer_step([prepare(images) for images in micro_batches])``: ``prepare`` draws the
    augmentation and the masks from this process's generator, ``optimizer_step`` takes (images, masks) pairs, so a
    caller (a test, an experiment) can hand in images and masks of its own. Without a ``monitor`` nothing is
    evaluated along training.
    """

    def __init__(self, cfg: Config, run_dir: str | Path, resume: bool | str | Source = False, tensorboard: bool = False,
                 overwrite: bool = False, monitor: Monitor | None = None):
        self.cfg = cfg
        self.monitor = monitor
        self.dist = distributed.setup(cfg.train.device)
        self.device = self.dist.device
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.run_dir = Path(run_dir)
        self.lock = None
        resumed = resume if isinstance(resume, Source) else resume_source(self.run_dir, resume)
        if self.dist.is_main:
            self.lock = run_folder.FolderLock(self.run_dir)  # held until run() returns
            if resumed is None:  # --resume auto with nothing to resume starts over: no checkpoint is lost
                run_folder.check_fresh_start(self.run_dir, overwrite or resume == "auto")
        distributed.barrier()
        objective_cls = objective_class(cfg.method)
        check_precision(cfg.train.precision, self.device)
        self.dataset, self.info, cropped = pretraining_set(cfg.data, objective_cls.augmentation, crops_per_image(cfg),
                                                           cfg.train.seed)
        self.dataset[0]  # a dataset with no readable image fails here, in one line, not mid-epoch
        self.skipped_reported = self.skipped_start = skipped_images(self.dataset)
        training = build_training(cfg, self.info, self.device, autocast_dtype(cfg.train.precision, self.device),
                                  cropped, world_size=self.dist.world_size)
        self.objective, self.optimizer, self.augment = training.objective, training.optimizer, training.augment
        self.model, self.train_step = training.model, training.train_step
        self.budget = budget(cfg, image_count(self.dataset), self.dist.world_size, self.objective.samples_per_image)
        images = self.budget.images_per_micro_batch
        self.sampler = ResumableSampler(self.dataset, self.dist.world_size, self.dist.rank, shuffle=True,
                                        seed=cfg.train.seed, drop_last=True)
        self.loader = training_loader(self.dataset, images, self.sampler, cfg.data.num_workers,
                                      pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = self.budget.steps_per_epoch
        self.total_steps = self.budget.steps
        self.effective_batch = self.budget.images_per_step
        self.peak_lr = self.budget.peak_lr
        self.warmup_steps = self.budget.warmup_steps

        # augmentation and masks draw from this process's generator; every rank's state is checkpointed
        self.generator = torch.Generator(self.device).manual_seed(cfg.train.seed * 7919 + self.dist.rank)
        self.step = 0
        self.peak_lr_used = 0.0  # the highest lr the optimizer applied (its base group's, without layer scales)
        self.saved_step: int | None = None  # the step of the newest checkpoint, written or resumed from
        self.results: dict = {}
        self.train_seconds = 0.0  # accumulated over resumes
        self.skipped_steps = 0  # steps whose loss was not finite, not applied to the weights (host copy)
        self.stop_signal: int | None = None
        self.last_save = time.monotonic()
        if resumed is not None:
            self.load_checkpoint(resumed.state, resumed.path)
            if self.dist.is_main:
                run_folder.truncate_log(self.run_dir, self.step)
        elif cfg.train.init_from:
            load_encoder_weights(self.objective.encoder, read(cfg.train.init_from))
        self.skipped_on_device = torch.tensor(self.skipped_steps, device=self.device)
        self.bad_in_a_row = torch.zeros((), dtype=torch.long, device=self.device)  # skipped steps in a row
        self.counted_at = self.step  # the step at which the host copy of skipped_steps was read
        self.log = MetricsLog(self.run_dir, self.dist.is_main, tensorboard)

    # -- checkpoints -------------------------------------------------------------------------------------------

    def rng_states(self) -> list[dict[str, torch.Tensor]]:
        """Every process's generator states, gathered on the training device (a collective: all ranks call it)."""
        mine = ckpt.rng_state(self.generator)
        gathered = {key: distributed.all_gather(value.to(self.device)) for key, value in mine.items()}
        return [{key: parts[rank].cpu() for key, parts in gathered.items()} for rank in range(self.dist.world_size)]

    def state(self) -> dict:
        if self.counted_at != self.step:  # a checkpoint between log lines: read the count (saves are rare)
            self.skipped_steps, self.counted_at = int(self.skipped_on_device.item()), self.step
        return {"model": self.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.train_step.scaler.state_dict(), "step": self.step,
                "epoch": self.step // self.steps_per_epoch, "world_size": self.dist.world_size,
                "rng": self.rng_states(), "config": self.cfg.to_dict(), "train_seconds": self.train_seconds,
                "skipped_steps": self.skipped_steps, "in_chans": self.info.channels, "method": self.cfg.method,
                "results": self.results, "peak_lr_used": self.peak_lr_used}

    def save_checkpoint(self) -> None:
        state = self.state()  # every rank takes part in gathering the generator states
        if self.dist.is_main:
            ckpt.atomic_save(state, self.run_dir / ckpt.CHECKPOINT_NAME, keep_previous=True)
            if self.cfg.train.keep_checkpoints and self.step % self.steps_per_epoch == 0:
                ckpt.atomic_save(state, self.run_dir / f"checkpoint-epoch{self.step // self.steps_per_epoch}.pt")
        self.last_save = time.monotonic()
        distributed.barrier()
        self.saved_step = self.step

    def load_checkpoint(self, state: dict, path: Path) -> None:
        rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # older runs: one process
        if len(rng) != self.dist.world_size:
            raise ckpt.CheckpointError(
                f"{path} was written by a run of {len(rng)} process(es); resume it with {len(rng)} (torchrun "
                f"--nproc_per_node) so that every process continues its own data slice and generator, not "
                f"{self.dist.world_size}")
        self.objective.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.train_step.scaler.load_state_dict(state["scaler"])
        self.step = self.saved_step = state["step"]
        self.results = state.get("results", {})
        self.train_seconds = state.get("train_seconds", 0.0)
        self.skipped_steps = state.get("skipped_steps", 0)
        past_warmup = self.step > self.warmup_steps  # a checkpoint older than the key: its schedule's peak
        self.peak_lr_used = state.get("peak_lr_used", self.peak_lr if past_warmup else 0.0)
        ckpt.restore_rng(rng[self.dist.rank], self.generator)

    # -- training ----------------------------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor) -> tuple[torch.Tensor, Masks]:
        """uint8 images (B, C, H, W) from the loader -> (augmented images on the device, the objective's masks),
        both drawn from this process's generator."""
        images = self.augment(images.to(self.device, non_blocking=True), self.generator)
        return images, self.objective.draw_masks(images.shape[0], self.generator, self.device)

    def optimizer_step(self, micro_batches: list[tuple[torch.Tensor, Masks]]) -> tuple[dict[str, torch.Tensor],
                                                                                      torch.Tensor]:
        """One optimizer step over ``accum_steps`` (images, masks) micro-batches. Returns the step's loss terms,
        detached, on the device, and whether it was applied (a 0-d bool tensor on the device: False if the loss was
        not finite, and the weights were left as they were). The count of such steps in a row is kept on the
        device and read at the log lines: ``train.max_bad_steps`` of them stop the run."""
        lr = learning_rate(self.step, self.total_steps, self.warmup_steps, self.peak_lr, self.cfg.optim.min_lr)
        set_learning_rate(self.optimizer, lr)
        group = self.optimizer.param_groups[0]
        self.peak_lr_used = max(self.peak_lr_used, group["lr"] / group.get("lr_scale", 1.0))
        result = self.train_step(micro_batches, lambda batch: self.model(*batch))
        self.step += 1
        skipped = (~result.applied).long()
        self.skipped_on_device += skipped
        self.bad_in_a_row = (self.bad_in_a_row + 1) * skipped
        self.objective.after_step(result.outputs, result.applied)
        return result.terms, result.applied

    def read_counters(self, window: MetricWindow) -> dict[str, float]:
        """The window's means and the skipped-step counters, in one copy to the host; stops a run whose last
        ``train.max_bad_steps`` steps or more were all skipped."""
        record = window.mean({"skipped_steps": self.skipped_on_device, "bad_in_a_row": self.bad_in_a_row})
        self.skipped_steps, self.counted_at = round(record["skipped_steps"]), self.step
        bad = round(record.pop("bad_in_a_row"))
        if bad >= self.cfg.train.max_bad_steps:
            raise NonFiniteLoss(
                f"the loss was not finite in {bad} steps in a row (up to step {self.step}), so the run stopped; its "
                f"last checkpoint is intact. Try a lower optim.base_lr, optim.clip_grad=1.0, or "
                f"train.precision=fp32, then --resume")
        return record

    def evaluate(self, tag: str) -> float | None:
        """The monitor's accuracy in the main process (others wait); recorded in ``results`` and the metrics log,
        with the baseline's once per run."""
        m, acc = self.monitor, None
        if m is None:
            return None
        if self.dist.is_main:
            acc = m.accuracy(self.objective.encoder, self.device)
            self.record({f"{m.name}_{tag}": acc, m.name: acc})
            tqdm.write(f"{m.label} accuracy ({tag}): {acc:.2f}%")
            if f"{m.name}_pixels" not in self.results:
                baseline = m.baseline()
                self.record({f"{m.name}_pixels": baseline})
                tqdm.write(f"{m.label} accuracy ({m.baseline_label}): {baseline:.2f}%")
        distributed.barrier()
        return acc

    def record(self, values: dict[str, float]) -> None:
        """Keep ``values`` in the results (all but the plain ``<name>`` curve key) and write them to the log."""
        self.results.update({k: v for k, v in values.items() if self.monitor is None or k != self.monitor.name})
        self.log.write({"step": self.step, "epoch": self.step / self.steps_per_epoch, **values})

    def log_window(self, window: MetricWindow, seconds: float, bar) -> None:
        """Write the window's means (over steps and processes: the one host sync of the window) to the log."""
        steps = window.steps
        record = self.read_counters(window)
        record.update(step=self.step, epoch=self.step / self.steps_per_epoch,
                      lr=self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0].get("lr_scale", 1.0),
                      images_per_s=steps * self.effective_batch / seconds)
        self.log.write(record)
        if "loss" in record:
            bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}")

    def stop_handler(self, signum: int, _frame) -> None:
        """SIGTERM / SIGINT: finish the step, write a checkpoint, stop. A second SIGINT interrupts at once."""
        self.stop_signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def should_stop(self, at_log_line: bool) -> bool:
        """Whether a stop signal arrived: checked every step in one process; under DDP at log lines, agreed by all
        processes (a collective), so they stop at the same step."""
        if not distributed.is_distributed():
            return self.stop_signal is not None
        return at_log_line and distributed.any_true(self.stop_signal is not None, self.device)

    def minutes_passed(self) -> bool:
        """``train.save_every_minutes`` since the last checkpoint, as process 0 sees it (checked at log lines)."""
        minutes = self.cfg.train.save_every_minutes
        if not minutes:  # the same config in every process: no collective needed to agree
            return False
        late = time.monotonic() - self.last_save >= 60 * minutes
        return distributed.any_true(late, self.device) if distributed.is_distributed() else late

    def run(self, until_step: int | None = None) -> dict:
        """Train to the end of the schedule, or only up to ``until_step`` (then checkpoint and return, so that a
        later ``resume`` continues exactly). A SIGTERM or SIGINT stops it the same way, at the next step."""
        in_main_thread = threading.current_thread() is threading.main_thread()
        handlers = {}
        if in_main_thread:
            handlers = {sig: signal.signal(sig, self.stop_handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self.train_loop(until_step)
        except RuntimeError as exc:  # PyTorch's words for a dead loader worker, raised wherever the step was
            death = worker_death(exc)
            if death is None:
                raise
            raise LoaderWorkerDied(f"{death}; the run stopped at step {self.step}, {self.saved_words()}") from None
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if self.lock is not None:
                self.lock.release()

    def batches(self) -> Iterator[list[torch.Tensor]]:
        """The micro-batches of each optimizer step from the current step on (uint8 images). At each epoch's start
        the sampler is placed at the step reached (part-way after a resume) and the dataset told its epoch; an epoch
        is exactly ``steps_per_epoch`` steps."""
        accum = self.cfg.optim.accum_steps
        while True:
            epoch, done = divmod(self.step, self.steps_per_epoch)
            self.sampler.set_position(epoch, done * self.budget.images_per_micro_batch * accum)
            if hasattr(self.dataset, "set_epoch"):  # crops taken as the files are read are drawn per epoch
                self.dataset.set_epoch(epoch)
            loader = iter(self.loader)
            for _ in range(self.steps_per_epoch - done):
                yield [next_batch(loader)[0] for _ in range(accum)]

    def train_loop(self, until_step: int | None) -> dict:
        cfg = self.cfg
        stop_at = self.total_steps if until_step is None else min(until_step, self.total_steps)
        if self.dist.is_main:
            save_config(cfg, self.run_dir / run_folder.CONFIG_NAME)
        if self.step == 0 and cfg.train.knn_at_init:
            self.evaluate("init")
        if self.step == 0 and cfg.train.keep_checkpoints:
            self.save_checkpoint()  # checkpoint-epoch0.pt: the initialization
        bar = progress(total=self.total_steps, initial=self.step, desc=f"pretrain {cfg.method}",
                       enabled=self.dist.is_main)
        window = MetricWindow()
        self.last_save = time.monotonic()
        window_start = time.perf_counter()
        stopped = False
        for micro in self.batches() if self.step < stop_at else ():
            window.add(*self.optimizer_step([self.prepare(x) for x in micro]))
            bar.update(1)
            epoch_end = self.step % self.steps_per_epoch == 0
            log_line = self.step % cfg.train.log_every == 0 or epoch_end or self.step == stop_at
            if log_line:  # the one host sync of the window
                seconds = time.perf_counter() - window_start
                self.train_seconds += seconds
                self.log_window(window, seconds, bar)
                window_start = time.perf_counter()
            stopped = self.should_stop(log_line)
            if stopped:
                if not log_line:
                    self.train_seconds += time.perf_counter() - window_start
                self.save_checkpoint()
                break
            if epoch_end:
                self.end_epoch(stop_at)
                window_start = time.perf_counter()
            elif self.step == stop_at:  # part-way through an epoch
                self.save_checkpoint()
            elif ((cfg.train.save_every_steps and self.step % cfg.train.save_every_steps == 0)
                  or (log_line and self.minutes_passed())):
                self.save_checkpoint()
            if self.step == stop_at:
                break
        bar.close()
        if stopped:
            self.announce_stop()
        if self.step < self.total_steps:
            return {**self.results, "stopped_at": self.step}
        return self.finish()

    def end_epoch(self, stop_at: int) -> None:
        """After an epoch's last step: the skipped files, the evaluation and the checkpoint it is due."""
        epoch = self.step // self.steps_per_epoch
        self.report_skipped_images(epoch)
        if self.cfg.train.eval_every and epoch % self.cfg.train.eval_every == 0 and self.step < self.total_steps:
            self.evaluate(f"epoch{epoch}")
        if epoch % self.cfg.train.save_every == 0 or self.step == stop_at:
            self.save_checkpoint()

    def finish(self) -> dict:
        """At the schedule's end: the final evaluation and checkpoint (once), then ``results.json``."""
        if self.monitor is not None and f"{self.monitor.name}_final" not in self.results:
            self.evaluate("final")
            self.save_checkpoint()
        self.results["train_seconds"] = self.train_seconds
        objective_results, notes = self.objective.training_summary()
        self.results.update({**objective_results, **({"notes": notes} if notes else {})})
        if self.dist.is_main:
            for note in notes:
                tqdm.write(f"note: {note}", file=sys.stderr)
            (self.run_dir / run_folder.RESULTS_NAME).write_text(json.dumps(
                {"method": self.cfg.method, "steps": self.step, "effective_batch": self.effective_batch,
                 "views_per_image": self.objective.views_per_image,
                 "samples_per_image": self.objective.samples_per_image,
                 "samples_per_step": self.budget.samples_per_step, "samples": self.step * self.budget.samples_per_step,
                 "peak_lr": self.peak_lr_used, "images_seen": self.step * self.effective_batch,
                 "skipped_steps": self.skipped_steps, **self.results}, indent=2))
        return self.results

    def report_skipped_images(self, epoch: int) -> None:
        """The epoch's count of unreadable or unusable files (each was named in a warning when first met)."""
        total = skipped_images(self.dataset)
        if self.dist.is_main and total > self.skipped_reported:
            so_far = total - self.skipped_start
            tqdm.write(f"epoch {epoch}: {total - self.skipped_reported} unreadable or unusable images skipped "
                       f"({so_far} so far), each replaced by the next good one")
            self.log.write({"step": self.step, "epoch": float(epoch), "skipped_images": so_far})
        self.skipped_reported = total

    def saved_words(self) -> str:
        """Where the run can continue from, in words: its last checkpoint and the command."""
        if self.saved_step is None:
            return "before its first checkpoint: start it again"
        return (f"its last checkpoint (step {self.saved_step}) is intact. Continue with: mimae pretrain --output-dir "
                f"{self.run_dir} --resume")

    def announce_stop(self) -> None:
        if self.dist.is_main:
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "a signal"
            tqdm.write(f"stopped by {name} at step {self.step} of {self.total_steps}; checkpoint written to "
                       f"{self.run_dir / ckpt.CHECKPOINT_NAME}. Continue with: "
                       f"mimae pretrain --output-dir {self.run_dir} --resume", file=sys.stderr)


class NonFiniteLoss(FloatingPointError):
    """The loss was not finite in ``train.max_bad_steps`` consecutive steps; the message says what to try."""


def resume_source(run_dir: str | Path, resume: bool | str) -> Source | None:
    """The checkpoint a run continues from: None for a new run (``resume`` False, or ``"auto"`` in a folder without
    a readable checkpoint); with ``resume`` True, a folder without one is an error."""
    if not resume:
        return None
    source = latest_checkpoint(run_dir)
    if source is None and resume != "auto":
        raise run_folder.RunFolderError(f"nothing to resume in {run_dir}: it holds no readable checkpoint "
                                        f"(start without --resume, or use --resume auto)")
    return source
