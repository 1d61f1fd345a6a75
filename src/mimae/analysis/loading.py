"""What the analyses read: a pretrained objective (encoder and decoder) from a checkpoint, and labelled test images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mimae.checkpoint import CHECKPOINT_NAME
from mimae.config import Config
from mimae.data import DataInfo, first, image_count, normalize, train_test_sets
from mimae.objectives import Objective
from mimae.runs import load_objective


@dataclass
class Pretrained:
    """A checkpoint's full objective in eval mode, with its config and where it came from."""

    objective: Objective
    cfg: Config
    step: int
    path: Path

    @property
    def name(self) -> str:
        """The run folder, and the file if it is not the latest checkpoint (e.g. ``run/checkpoint-epoch0``)."""
        name = self.path.parent.name
        return name if self.path.name == CHECKPOINT_NAME else f"{name}/{self.path.stem}"

    @property
    def label(self) -> str:
        """A legend entry: :attr:`name`, method, mask ratio and unit."""
        return f"{self.name} ({self.cfg.method}, r={self.cfg.mask.ratio:g}, unit={self.cfg.mask.unit})"


def load_pretrained(path: str | Path, device: str | torch.device = "cpu", data_dir: str | None = None) -> Pretrained:
    """Rebuild the objective of a checkpoint (file or run folder) and load its weights; ``data_dir`` overrides the
    run's data folder (for a checkpoint trained elsewhere)."""
    objective, source = load_objective(path, device)
    if data_dir is not None:
        source.cfg.data.data_dir = data_dir
    return Pretrained(objective, source.cfg, source.step, source.path)


def labelled_test_images(cfg: Config, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, DataInfo]:
    """The first ``limit`` test images of the run's dataset: uint8 (N, C, H, W), labels (N,) int64, and its info."""
    _, test, info = train_test_sets(cfg.data)
    subset = first(test, limit)
    images, labels = next(iter(DataLoader(subset, batch_size=image_count(subset))))
    return images, labels.long(), info


def model_input(images: torch.Tensor, info: DataInfo, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (B, C, H, W) -> the standardized float input the encoder was trained on, on ``device``."""
    return normalize(images.to(device), info)


def unit_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [0, 1]."""
    return images.float() / 255.0
