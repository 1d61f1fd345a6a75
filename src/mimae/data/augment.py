"""Batched augmentation on the training device.

In-memory datasets (Fashion-MNIST) hand over uint8 images at their own resolution, fitted to the model's size; the
random crops, flips and colour changes are drawn here for a whole batch at once from the training generator (so they
are reproducible and resumable) and run on whatever device trains. File datasets are cropped at their source
resolution as they are decoded (``mimae.data.datasets.SourceCrops``, boxes from :func:`random_crop_boxes` too), and
only the flips and colours are drawn here (``cropped=True``). Cropping and resizing on the device use torchvision's
``roi_align`` (bilinear; a box larger than the output is anti-aliased by averaging ceil(box/output) samples per pixel
per axis), one box per image.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align

from mimae.data.sources import DataInfo


def standardize(images: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """[0, 1] float images (..., C, H, W) standardized with the dataset's mean and std."""
    mean = torch.tensor(info.mean, device=images.device).reshape(-1, 1, 1)
    std = torch.tensor(info.std, device=images.device).reshape(-1, 1, 1)
    return (images - mean) / std


def normalize(images: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float32 standardized with the dataset's mean and std."""
    return standardize(images.float() / 255.0, info)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, channels, H, W): a single channel is repeated (grayscale into an RGB encoder)."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] != 1:
        raise ValueError(f"images have {images.shape[1]} channels; the encoder takes {channels}")
    return images.expand(-1, channels, -1, -1)


def random_crop_boxes(batch: int, height: int, width: int, scale: tuple[float, float],
                      ratio: tuple[float, float] = (3 / 4, 4 / 3),
                      generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """RandomResizedCrop's boxes for a batch: (B, 4) as x1, y1, x2, y2 in pixels.

    Area fraction uniform in ``scale``, log aspect ratio uniform in ``ratio``; a box larger than the image is
    clipped to it (torchvision retries instead; the distributions differ only in that rare case).
    """
    rand = torch.rand(batch, 4, generator=generator, device=device)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * rand[:, 0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * rand[:, 1]
    aspect = log_r.exp()
    w = (area * aspect).sqrt().clamp(1, width)
    h = (area / aspect).sqrt().clamp(1, height)
    x1 = (width - w) * rand[:, 2]
    y1 = (height - h) * rand[:, 3]
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each image (B, C, H, W) float to its box (B, 4) and resize to ``size`` x ``size``."""
    index = torch.arange(len(images), device=images.device, dtype=images.dtype).unsqueeze(1)
    return roi_align(images, torch.cat([index, boxes.to(images.dtype)], dim=1), size, spatial_scale=1.0,
                     sampling_ratio=-1, aligned=True)


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Horizontal flip of a random half of the batch (each image with probability 0.5)."""
    flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
    return torch.where(flip.reshape(-1, 1, 1, 1), images.flip(-1), images)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor.reshape(-1, 1, 1, 1) * images + (1 - factor.reshape(-1, 1, 1, 1)) * other).clamp(0, 1)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).reshape(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand_as(images)


def color_jitter(images: torch.Tensor, strength: float = 0.4, p: float = 0.8, gray_p: float = 0.2,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """SimCLR's colour distortion on [0, 1] images (B, C, H, W): brightness, contrast and (RGB) saturation with
    factors uniform in [1 - strength, 1 + strength], applied with probability ``p``, then grayscale with ``gray_p``.
    Hue jitter is left out."""
    b = len(images)
    rand = torch.rand(b, 5, generator=generator, device=images.device)
    apply = (rand[:, 0] < p).float()
    factors = 1 + strength * (2 * rand[:, 1:4] - 1)
    factors = apply.unsqueeze(1) * factors + (1 - apply.unsqueeze(1))
    images = _blend(images, torch.zeros_like(images), factors[:, 0])
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True).expand_as(images)
    images = _blend(images, mean, factors[:, 1])
    if images.shape[1] == 3:
        images = _blend(images, _grayscale(images), factors[:, 2])
        gray = (rand[:, 4] < gray_p).reshape(-1, 1, 1, 1)
        images = torch.where(gray, _grayscale(images), images)
    return images


def crop_scale(kind: str, scale_min: float) -> tuple[float, float]:
    """The RandomResizedCrop area range of an augmentation kind: (scale_min, 1) for MAE's, (0.08, 1) for SimCLR's."""
    return (scale_min, 1.0) if kind == "mae" else (0.08, 1.0)


class BatchAugment:
    """The pretraining augmentation of a method, applied to a uint8 batch on its device.

    kind ``mae``: RandomResizedCrop(scale_min..1) + flip. kind ``simclr``: RandomResizedCrop(0.08..1) + flip +
    colour distortion. ``crops`` > 1 returns (B, crops, C, H, W) with independent draws per crop. ``cropped``: the
    dataset has cropped already (at the source resolution), so (B, C, size, size) or, with ``crops`` > 1,
    (B, crops, C, size, size) come in, and only flips and colours are drawn here.
    """

    def __init__(self, kind: str, info: DataInfo, size: int, scale_min: float = 0.2, crops: int = 1,
                 cropped: bool = False):
        if kind not in ("mae", "simclr", "none"):
            raise ValueError(f"unknown augmentation {kind!r}; expected mae, simclr or none")
        self.kind, self.info, self.size, self.crops, self.cropped = kind, info, size, crops, cropped
        self.scale = crop_scale(kind, scale_min)

    def one_view(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = images.float() / 255.0
        if self.kind != "none":
            if not self.cropped:
                boxes = random_crop_boxes(len(x), x.shape[-2], x.shape[-1], self.scale, generator=generator,
                                          device=x.device)
                x = resized_crop(x, boxes, self.size)
            x = random_flip(x, generator)
        if self.kind == "simclr":
            x = color_jitter(x, generator=generator)
        return standardize(x, self.info)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float (B, C, size, size), or (B, crops, C, size, size)."""
        if self.crops == 1:
            return self.one_view(images, generator)
        if self.cropped:
            return torch.stack([self.one_view(images[:, k], generator) for k in range(self.crops)], dim=1)
        return torch.stack([self.one_view(images, generator) for _ in range(self.crops)], dim=1)
