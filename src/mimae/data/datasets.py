"""Datasets as the training loop and the evaluations see them: uint8 images fitted to the model's size.

In-memory datasets (Fashion-MNIST) are fitted once as a whole tensor; file-based ones (torchvision, ImageFolder)
image by image in ``__getitem__``. Augmentation happens later, on whole batches (``mimae.data.augment``).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from mimae.config import DataConfig
from mimae.data.sources import DataInfo, TensorImages, load_dataset


def fit_to_size(images: torch.Tensor, size: int, pad_smaller: bool = True) -> torch.Tensor:
    """Resize the shorter side to ``size`` and center-crop, or, with ``pad_smaller``, pad images that fit inside
    ``size`` (centered, zeros: Fashion-MNIST's 28 px in 32). (..., C, H, W) -> (..., C, size, size)."""
    from torchvision.transforms.v2 import functional as F
    h, w = images.shape[-2:]
    if pad_smaller and h <= size and w <= size:
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(images, [left, top, size - w - left, size - h - top])
    return F.center_crop(F.resize(images, size, antialias=True), size)


class Fitted(Dataset):
    """Fit each image of a file-based dataset to ``size`` x ``size`` as it is read (smaller images are resized up,
    as a photo collection's varied sizes need)."""

    def __init__(self, base: Dataset, size: int):
        self.base, self.size = base, size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return fit_to_size(image, self.size, pad_smaller=False), label


def skipped_images(dataset: Dataset) -> int:
    """How many unreadable or unusable files the dataset (or the one it wraps) has skipped so far, in every
    process that read it; 0 for in-memory datasets."""
    while not hasattr(dataset, "skipped"):
        inner = getattr(dataset, "base", None)
        inner = getattr(dataset, "dataset", None) if inner is None else inner
        if inner is None:
            return 0
        dataset = inner
    return int(dataset.skipped)


def first(dataset: Dataset, n: int | None) -> Dataset:
    """The first ``n`` items of a dataset (all of it when ``n`` is None or larger)."""
    return dataset if n is None or n >= len(dataset) else Subset(dataset, range(n))


def _prepare(dataset: Dataset, size: int, limit: int | None) -> Dataset:
    if isinstance(dataset, TensorImages):
        n = len(dataset) if limit is None else min(limit, len(dataset))
        return TensorImages(fit_to_size(dataset.images[:n], size), dataset.labels[:n])
    dataset = dataset if limit is None or limit >= len(dataset) else Subset(dataset, range(limit))
    return Fitted(dataset, size)


def train_test_sets(cfg: DataConfig) -> tuple[Dataset, Dataset, DataInfo]:
    """(train, test, info): uint8 (C, size, size) images with labels, with the configured limits applied."""
    train, test, info = load_dataset(cfg.dataset, cfg.data_dir)
    return (_prepare(train, cfg.image_size, cfg.train_limit), _prepare(test, cfg.image_size, cfg.test_limit),
            info)
