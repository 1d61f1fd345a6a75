"""Datasets as the training loop and the evaluations see them: uint8 images fitted to the model's size.

In-memory datasets (Fashion-MNIST) are fitted once as a whole tensor; file-based ones (torchvision, ImageFolder)
image by image in ``__getitem__``. Augmentation happens later, on whole batches (``mimae.data.augment``), except
pretraining's random crop of a file-based dataset, which is taken from the decoded image at its own resolution
(:class:`SourceCrops`), not from a copy already shrunk to the training size.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from mimae.data.augment import crop_scale, random_crop_boxes
from mimae.data.config import DataConfig
from mimae.data.sources import DataInfo, TensorImages, image_count, load_dataset


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
        return image_count(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return fit_to_size(image, self.size, pad_smaller=False), label


class SourceCrops(Dataset):
    """Pretraining's RandomResizedCrop of each image at its source resolution: ``crops`` boxes per image (area
    fraction in ``scale``, the same draw as the batched crop, :func:`random_crop_boxes`), each resized to ``size``
    x ``size`` with antialiasing. Items are uint8 (C, size, size), or (crops, C, size, size).

    The boxes of image ``i`` in epoch ``e`` come from a generator seeded by (``seed``, ``e``, ``i``), so they do not
    depend on the number of loader workers or processes, and a resumed run draws what the uninterrupted one would.
    Set the epoch with :meth:`set_epoch` before iterating.
    """

    def __init__(self, base: Dataset, size: int, scale: tuple[float, float], crops: int, seed: int):
        self.base, self.size, self.scale, self.crops, self.seed = base, size, scale, crops, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return image_count(self.base)

    def boxes(self, i: int, height: int, width: int) -> torch.Tensor:
        """(crops, 4) boxes x1, y1, x2, y2 of image ``i`` in the current epoch."""
        key = ((self.seed * 1_000_003 + self.epoch) * 1_000_000_007 + i) % 2 ** 63
        generator = torch.Generator().manual_seed(key)
        return random_crop_boxes(self.crops, height, width, self.scale, generator=generator)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms.v2 import functional as F
        image, label = self.base[i]
        views = []
        for x1, y1, x2, y2 in self.boxes(i, *image.shape[-2:]).tolist():
            top, left = round(y1), round(x1)
            height, width = max(1, round(y2) - top), max(1, round(x2) - left)
            views.append(F.resized_crop(image, top, left, height, width, [self.size, self.size], antialias=True))
        return (views[0] if self.crops == 1 else torch.stack(views)), label


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
    return dataset if n is None or n >= image_count(dataset) else Subset(dataset, range(n))


def _prepare(dataset: Dataset, size: int, limit: int | None) -> Dataset:
    if isinstance(dataset, TensorImages):
        n = len(dataset) if limit is None else min(limit, len(dataset))
        return TensorImages(fit_to_size(dataset.images[:n], size), dataset.labels[:n])
    dataset = dataset if limit is None or limit >= image_count(dataset) else Subset(dataset, range(limit))
    return Fitted(dataset, size)


def pretraining_set(cfg: DataConfig, augmentation: str, crops: int, seed: int) -> tuple[Dataset, DataInfo, bool]:
    """The pretraining images of ``cfg`` for a method's augmentation kind: (dataset, info, cropped). In-memory
    data comes fitted to the size and is cropped later on the training device (``cropped`` False); file-based
    data is cropped at its source resolution as it is read (:class:`SourceCrops`, ``cropped`` True)."""
    train, _, info = load_dataset(cfg.dataset, cfg.data_dir)
    if isinstance(train, TensorImages) or augmentation == "none":
        return _prepare(train, cfg.image_size, cfg.train_limit), info, False
    scale = crop_scale(augmentation, cfg.crop_scale_min)
    return SourceCrops(first(train, cfg.train_limit), cfg.image_size, scale, crops, seed), info, True


def train_test_sets(cfg: DataConfig) -> tuple[Dataset, Dataset, DataInfo]:
    """(train, test, info): uint8 (C, size, size) images with labels, with the configured limits applied."""
    train, test, info = load_dataset(cfg.dataset, cfg.data_dir)
    return (_prepare(train, cfg.image_size, cfg.train_limit), _prepare(test, cfg.image_size, cfg.test_limit),
            info)
