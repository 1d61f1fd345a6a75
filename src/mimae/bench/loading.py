"""How fast the pretraining data pipeline delivers images: the loader the training loop uses (same dataset,
workers, batch) plus the batched augmentation, timed in images/s, and a folder of JPEGs to time it on."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mimae.config import Config
from mimae.data import BatchAugment, pretraining_set
from mimae.data.loader import default_workers, training_loader
from mimae.objectives.base import crops_per_image, objective_class


def jpeg_folder(root: Path, count: int, width: int = 320, height: int = 256, classes: int = 2) -> Path:
    """An ImageFolder tree (train/ and val/, ``classes`` class folders) of ``count`` training JPEGs (quality 90) of
    ``width`` x ``height`` with smooth random content (so that they compress as photos do, not as noise); kept
    when it already holds them. Returns ``root``."""
    from PIL import Image
    gen = np.random.default_rng(0)
    for split, n in (("train", count), ("val", max(classes, count // 10))):
        for i in range(n):
            path = root / split / f"class{i % classes}" / f"{i:06d}.jpg"
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            coarse = Image.fromarray(gen.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8))
            coarse.resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    return root


def delivery_rate(cfg: Config, batches: int, workers: int | None = None) -> dict:
    """Images/s that the training loop's loader and augmentation deliver for ``cfg`` (first batch, which starts the
    workers, left out), on the CPU."""
    kind, crops = objective_class(cfg.method), crops_per_image(cfg)
    dataset, info, cropped = pretraining_set(cfg.data, kind.augmentation, crops, cfg.train.seed)
    workers = default_workers(dataset, workers if workers is not None else cfg.data.num_workers)
    loader = training_loader(dataset, cfg.optim.batch_size, None, workers, pin_memory=False)
    augment = BatchAugment(kind.augmentation, info, cfg.data.image_size, cfg.data.crop_scale_min, crops, cropped)
    gen = torch.Generator().manual_seed(0)
    it = iter(loader)
    augment(next(it)[0], gen)
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(it, None)
        if batch is None:  # a small folder: the next epoch (its workers' start is timed too)
            it = iter(loader)
            batch = next(it)
        augment(batch[0], gen)
        images += len(batch[0])
    seconds = time.perf_counter() - start
    return {"dataset": cfg.data.dataset, "image_size": cfg.data.image_size, "workers": workers,
            "batch": cfg.optim.batch_size, "images": images, "images_per_s": images / seconds}
