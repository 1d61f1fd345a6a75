"""The ``data`` section, beside the loaders it chooses between: its dataset is any name in the loader registry
(:func:`mimae.data.register_dataset`), so registering a dataset is all it takes to train on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mimae.config import ConfigError, param, register_section
from mimae.data.sources import LOADERS

if TYPE_CHECKING:
    from mimae.config import Config


@dataclass
class DataConfig:
    dataset: str = param("fashion-mnist", "dataset name: fashion-mnist, cifar10, cifar100, stl10, imagefolder, "
                                          "hierarchical, or any registered with mimae.data.register_dataset")
    data_dir: str | None = param(None, "folder holding the dataset (default: $MIMAE_DATA, then the system copy, "
                                       "then torchvision's download)")
    image_size: int = param(32, "side of the square input images, pixels (smaller images are padded)", low=8)
    train_limit: int | None = param(None, "use only the first N training images (None: all)", low=1)
    test_limit: int | None = param(None, "use only the first N test images in evaluations (None: all)", low=1)
    crop_scale_min: float = param(0.2, "smallest area fraction of RandomResizedCrop in pretraining", low=0.01, high=1.0)
    num_workers: int | None = param(None, "DataLoader worker processes (0: load in the training process; None: 0 "
                                          "for in-memory data, else one per core beyond the first, at most 8)", low=0)

    def validate(self, cfg: Config) -> None:
        if self.dataset not in LOADERS:
            raise ConfigError(f"data.dataset={self.dataset!r} is not one of {list(LOADERS)}")


register_section("data", DataConfig, "data")
