"""Linear probe, MAE protocol: frozen [CLS] feature after the final norm -> BatchNorm (no affine) -> Linear,
trained with LARS (or SGD) under a per-iteration warmup + cosine schedule.

Two ways to feed it: ``cached`` encodes the un-augmented training images once and trains on those features (many
epochs cost seconds); ``reextract`` encodes freshly augmented images (RandomResizedCrop + flip) every epoch, as the
original protocol does, at one encoder pass per image per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch
from timm.optim import Lars
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mimae.config import Config, parse_floats
from mimae.data import BatchAugment, DataInfo, first, image_count, train_test_sets
from mimae.data.augment import match_channels
from mimae.eval.config import LinearConfig
from mimae.eval.knn import encoder_input, extract_features, feature_batch, pixel_features
from mimae.models import Encoder
from mimae.optim import learning_rate, set_learning_rate
from mimae.precision import autocast, autocast_dtype
from mimae.progress import progress
from mimae.train_step import TrainStep

Batches = Callable[[torch.Generator], Iterator[tuple[torch.Tensor, torch.Tensor]]]


class LinearProbe(nn.Module):
    """BatchNorm1d without affine parameters, then a linear classifier: features (B, D) -> logits (B, classes)."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(features))


def probe_optimizer(probe: LinearProbe, cfg: LinearConfig) -> torch.optim.Optimizer:
    """LARS as MAE uses it (trust ratio ||w|| / ||update|| on the weight matrix only, momentum 0.9) or SGD."""
    weights: list[torch.Tensor] = [p for p in probe.parameters() if p.ndim > 1]
    biases: list[torch.Tensor] = [p for p in probe.parameters() if p.ndim <= 1]
    if cfg.optimizer == "lars":
        return Lars([{"params": weights, "always_adapt": True}, {"params": biases, "weight_decay": 0.0}],
                    lr=cfg.base_lr, momentum=0.9, weight_decay=cfg.weight_decay, trust_coeff=0.001)
    groups: list[dict[str, Any]] = [{"params": weights}, {"params": biases, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=cfg.base_lr,
                           momentum=0.9, weight_decay=cfg.weight_decay)


def train_probe(batches: Batches, steps_per_epoch: int, dim: int, num_classes: int, cfg: LinearConfig,
                device="cpu", desc: str | None = None) -> LinearProbe:
    """Train a probe for ``cfg.epochs`` epochs; ``batches(generator)`` yields one epoch of (features (B, D), labels
    (B,)) on ``device``. lr = base_lr * batch_size / 256, warmup then cosine to 0, per iteration."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    probe = LinearProbe(dim, num_classes).to(device)
    optimizer = probe_optimizer(probe, cfg)
    train_step = TrainStep(probe, optimizer, torch.device(device), None)  # features are float32 already
    peak = cfg.base_lr * cfg.batch_size / 256
    total, warmup = cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)
    step = 0

    def forward(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats, labels = batch
        return {"loss": nn.functional.cross_entropy(probe(feats), labels)}

    probe.train()
    for _ in progress(range(cfg.epochs), desc=desc, leave=False):
        for batch in batches(generator):
            set_learning_rate(optimizer, learning_rate(step, total, warmup, peak, 0.0))
            train_step([batch], forward)
            step += 1
    return probe.eval()


def cached_batches(feats: torch.Tensor, labels: torch.Tensor, batch_size: int) -> tuple[Batches, int]:
    """Shuffled mini-batches of cached features (N, D) and labels (N,); the last partial batch is dropped unless
    it is the only one. Returns the epoch generator and the steps per epoch."""
    n = len(feats)
    steps = max(1, n // batch_size)

    def epoch(generator: torch.Generator):
        order = torch.randperm(n, generator=generator)
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            yield feats[idx], labels[idx]

    return epoch, steps


def reextracted_batches(encoder: Encoder, dataset: Dataset, info: DataInfo, image_size: int, batch_size: int,
                        crop_scale_min: float, device: torch.device,
                        autocast_dtype: torch.dtype | None) -> tuple[Batches, int]:
    """Mini-batches of features of freshly augmented images (RandomResizedCrop(crop_scale_min..1) + flip),
    encoded by the frozen encoder in eval mode, one pass per image per epoch."""
    augment = BatchAugment("mae", info, image_size, crop_scale_min)
    steps = max(1, image_count(dataset) // batch_size)
    encoder.eval()

    def epoch(generator: torch.Generator):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=image_count(dataset) >= batch_size,
                            generator=generator)
        for images, labels in loader:
            views = augment(images.to(device), generator if device.type == "cpu" else None)
            with autocast(device, autocast_dtype):
                feats = encoder.features(match_channels(views, encoder.in_chans), "cls").float()
            yield feats, labels.to(device)

    return epoch, steps


@torch.no_grad()
def probe_accuracy(probe: LinearProbe, feats: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (percent) of a trained probe on features (N, D) with labels (N,)."""
    device = next(probe.parameters(), torch.empty(0)).device
    preds = torch.cat([probe(chunk.to(device)).argmax(1).cpu() for chunk in feats.split(4096)])
    return 100.0 * (preds == labels).float().mean().item()


def linear_probe_features(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, cfg: LinearConfig, num_classes: int,
                          device: torch.device | str = "cpu") -> tuple[LinearProbe, float]:
    """Train on cached training features (N, D) and score on test features (M, D): (probe, accuracy %)."""
    batches, steps = cached_batches(train_x.to(device), train_y.to(device), cfg.batch_size)
    probe = train_probe(batches, steps, train_x.shape[1], num_classes, cfg, device)
    return probe, probe_accuracy(probe, test_x, test_y)


def chosen_lr_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                    cfg: LinearConfig, num_classes: int, device: torch.device | str = "cpu") -> dict | None:
    """The probe at the base_lr of ``cfg.lr_choices`` chosen on held-out training features: each lr trained on the
    training features (N, D) less the last ``validation_images`` (at most N / 5) and scored on those, the best refit
    on all N and scored on the test features (M, D). The test images play no part in the choice. None without
    choices."""
    lrs = parse_floats(cfg.lr_choices, "linear.lr_choices")
    held = min(cfg.validation_images, len(train_x) // 5)
    if not lrs or held < 1:
        return None
    fit_x, fit_y, val_x, val_y = train_x[:-held], train_y[:-held], train_x[-held:], train_y[-held:]
    validation = {f"{lr:g}": linear_probe_features(fit_x, fit_y, val_x, val_y, replace(cfg, base_lr=lr),
                                                   num_classes, device)[1] for lr in lrs}
    chosen = max(lrs, key=lambda lr: validation[f"{lr:g}"])  # the first of equals: the smaller lr
    _, accuracy = linear_probe_features(train_x, train_y, test_x, test_y, replace(cfg, base_lr=chosen), num_classes,
                                        device)
    return {"lrs": lrs, "validation_images": held, "validation": validation, "base_lr": chosen, "accuracy": accuracy}


def protocol_description(cfg: LinearConfig) -> dict:
    return {"protocol": "linear", "feature": "cls after final norm", "head": "BatchNorm1d(affine=False) + Linear",
            "features": "reextracted with RandomResizedCrop+flip each epoch" if cfg.reextract
            else "cached (un-augmented, encoded once)",
            "optimizer": cfg.optimizer, "epochs": cfg.epochs, "warmup_epochs": cfg.warmup_epochs,
            "batch_size": cfg.batch_size, "base_lr": cfg.base_lr, "lr": cfg.base_lr * cfg.batch_size / 256,
            "weight_decay": cfg.weight_decay, "seed": cfg.seed}


def frozen_features(encoder: Encoder, cfg: Config, device: torch.device, limits: dict[str, int | None],
                    progress: bool = True) -> dict:
    """[CLS] features of the first ``limits[split]`` images of each split named in ``limits`` ("train", "test"),
    encoded once: {"train": (feats (N, D), labels (N,)), "test": (feats (M, D), labels (M,)), "info", "seconds"}."""
    train, test, info = train_test_sets(cfg.data)
    sets = {"train": train, "test": test}
    dtype = autocast_dtype(cfg.train.precision, device)
    start = time.perf_counter()
    out = {split: extract_features(encoder, first(sets[split], limit), encoder_input(info, encoder.in_chans),
                                   feature_batch(cfg, device), device, dtype,
                                   desc=f"encoding {split} images" if progress else None)
           for split, limit in limits.items()}
    return {**out, "info": info, "seconds": time.perf_counter() - start}


def linear_eval(encoder: Encoder, cfg: Config, device: torch.device, progress: bool = True,
                features: dict | None = None) -> tuple[LinearProbe, dict]:
    """Train and score the probe of ``cfg.linear`` on ``cfg.data``; (probe, JSON-ready result with timings).

    ``features`` (from :func:`frozen_features`) reuses already encoded images for the cached protocol and the
    test set.
    """
    lin = cfg.linear
    limits = {"test": lin.test_limit} if lin.reextract else {"train": lin.train_limit, "test": lin.test_limit}
    features = features or frozen_features(encoder, cfg, device, limits, progress)
    info = features["info"]
    test_x, test_y = features["test"]
    start = time.perf_counter()
    if lin.reextract:
        train = first(train_test_sets(cfg.data)[0], lin.train_limit)
        batches, steps = reextracted_batches(encoder, train, info, cfg.data.image_size, lin.batch_size,
                                             lin.crop_scale_min, device, autocast_dtype(cfg.train.precision, device))
        n_train = image_count(train)
    else:
        train_x, train_y = features["train"]
        batches, steps = cached_batches(train_x.to(device), train_y.to(device), lin.batch_size)
        n_train = len(train_x)
    probe = train_probe(batches, steps, test_x.shape[1], info.num_classes, lin, device,
                        desc="linear probe" if progress else None)
    accuracy = probe_accuracy(probe, test_x, test_y)
    chosen = None if lin.reextract else chosen_lr_probe(train_x, train_y, test_x, test_y, lin, info.num_classes,
                                                        device)
    probe_seconds = time.perf_counter() - start
    result = {**protocol_description(lin), "dataset": info.name, "train_images": n_train,
              "test_images": len(test_x), "accuracy": accuracy, "lr_chosen": chosen,
              "encode_seconds": features["seconds"], "probe_seconds": probe_seconds,
              "seconds": features["seconds"] + probe_seconds}
    return probe, result


def pixel_linear_eval(cfg: Config) -> dict:
    """The same probe (``cfg.linear``, on cached features) on the pixels themselves, standardized and flattened,
    of the first ``linear.train_limit`` / ``linear.test_limit`` images: the baseline learned features must beat."""
    lin = cfg.linear
    train, test, info = train_test_sets(cfg.data)
    batch = feature_batch(cfg, torch.device("cpu"))
    train_x, train_y = pixel_features(first(train, lin.train_limit), info, batch)
    test_x, test_y = pixel_features(first(test, lin.test_limit), info, batch)
    _, accuracy = linear_probe_features(train_x, train_y, test_x, test_y, lin, info.num_classes)
    return {"protocol": "linear", "feature": "pixels", "train_images": len(train_x), "test_images": len(test_x),
            "accuracy": accuracy, "lr_chosen": chosen_lr_probe(train_x, train_y, test_x, test_y, lin,
                                                               info.num_classes)}
