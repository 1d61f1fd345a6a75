"""What the analyses read: a pretrained objective (encoder and decoder) from a checkpoint, and labelled test images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mimae.checkpoint import CHECKPOINT_NAME
from mimae.config import Config
from mimae.data import DataInfo, first, image_count, normalize, train_test_sets
from mimae.models.vit import Encoder
from mimae.objectives import Objective, build_objective
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


@dataclass
class Measured:
    """One encoder an analysis measures: a checkpoint's, or (``init``) the same ViT at its run's initialization."""

    model: Pretrained
    encoder: Encoder
    init: bool

    def row(self, numbers: dict) -> dict:
        """Its row of an analysis JSON: checkpoint, label, init, step, then ``numbers``."""
        label = f"{self.model.name} at initialization" if self.init else self.model.label
        return {"checkpoint": str(self.model.path), "label": label, "init": self.init,
                "step": 0 if self.init else self.model.step, **numbers}


def with_initializations(models: list[Pretrained], channels: int, device: str | torch.device,
                         with_init: bool) -> list[Measured]:
    """Each checkpoint's encoder and, with ``with_init``, after each the same ViT at the initialization its run
    started from (its seed): the baseline of a measure."""
    measured = []
    for model in models:
        measured.append(Measured(model, model.objective.encoder, False))
        if with_init:
            init = build_objective(model.cfg, channels, model.cfg.train.seed).encoder.to(device)
            measured.append(Measured(model, init, True))
    return measured


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
