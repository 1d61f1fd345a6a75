"""Where the images come from: Fashion-MNIST (the embedded default) and torchvision's datasets.

Every loader returns ``(train, test, info)``: two datasets of ``(uint8 tensor (C, H, W), int label)`` pairs and a
:class:`DataInfo` with the channel count, class count and normalization statistics.
"""

from __future__ import annotations

import functools
import gzip
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mimae"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DataNotFoundError(FileNotFoundError):
    """The dataset is not where it was looked for; the message lists the places and how to get it."""


@dataclass(frozen=True)
class DataInfo:
    name: str
    channels: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


class TensorImages(Dataset):
    """An in-memory labelled image set. images (N, C, H, W) uint8, labels (N,) int64."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


FASHION_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                 "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` or in torchvision's ``folder/FashionMNIST/raw`` layout, or None."""
    for base in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        found = {}
        for key, stem in FASHION_FILES.items():
            for candidate in (base / stem, base / f"{stem}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FASHION_FILES):
            return found
    return None


def fashion_mnist_candidates(data_dir: str | None) -> list[Path]:
    """Folders searched, in order: ``data_dir``, ``$MIMAE_DATA``, the Debian package's folder, the cache."""
    places = [data_dir, os.environ.get("MIMAE_DATA"), SYSTEM_FASHION_MNIST, CACHE_DIR]
    return [Path(p) for p in places if p]


def load_fashion_mnist(data_dir: str | None = None):
    """Fashion-MNIST from the first folder that has it, else torchvision's download into the cache."""
    if data_dir is not None and _find_idx_files(Path(data_dir)) is None:
        raise DataNotFoundError(f"data.data_dir={data_dir} holds no Fashion-MNIST (the four IDX files "
                                f"train-images-idx3-ubyte[.gz], ... directly, or in FashionMNIST/raw); leave it "
                                f"unset to use $MIMAE_DATA or Debian's copy (apt-get install dataset-fashion-mnist)")
    candidates = fashion_mnist_candidates(data_dir)
    files = next((f for f in map(_find_idx_files, candidates) if f), None)
    if files is None:
        try:
            from torchvision.datasets import FashionMNIST
            FashionMNIST(str(CACHE_DIR), train=True, download=True)
            FashionMNIST(str(CACHE_DIR), train=False, download=True)
            files = _find_idx_files(CACHE_DIR)
        except Exception as exc:  # no network, or a broken mirror
            looked = "\n  ".join(str(p) for p in candidates)
            raise DataNotFoundError(
                f"Fashion-MNIST was not found. Looked in:\n  {looked}\nand the download failed ({exc}).\n"
                "Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four IDX files "
                "(train-images-idx3-ubyte.gz, ...) in a folder and pass --data-dir or set MIMAE_DATA.") from None
    arrays = {k: torch.from_numpy(read_idx(p).copy()) for k, p in (files or {}).items()}
    train = TensorImages(arrays["train_images"].unsqueeze(1), arrays["train_labels"].long())
    test = TensorImages(arrays["test_images"].unsqueeze(1), arrays["test_labels"].long())
    return train, test, DataInfo("fashion-mnist", 1, 10, (0.2860,), (0.3530,))


MIN_IMAGE_SIDE = 8  # images with a shorter side are skipped: nothing can be learned from a 3x3 thumbnail


def open_image(path: str):
    """The image in ``path`` as Pillow decodes it, in its own mode (torchvision's loader converts to RGB first,
    which clips 16-bit images to white); a truncated or unreadable file raises here."""
    from PIL import Image
    with open(path, "rb") as fh:
        image = Image.open(fh)
        image.load()
    return image


def to_rgb_tensor(image) -> torch.Tensor:
    """A PIL image as uint8 RGB (3, H, W). 16- and 32-bit integer images (``I;16``, ``I``) are scaled to 8 bits,
    not clipped (a 16-bit PNG is not white); float images (``F``) in [0, 1] are scaled by 255; palette, CMYK,
    grayscale and alpha images go through Pillow's conversion."""
    from torchvision.transforms.v2.functional import pil_to_tensor
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            scaled = values * 255.0 if values.max(initial=0.0) <= 1.0 else values
        else:
            scaled = values / 257.0 if image.mode.startswith("I;16") or values.max(initial=0.0) > 255 else values
        gray = torch.from_numpy(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
        return gray.unsqueeze(0).expand(3, -1, -1).contiguous()
    return pil_to_tensor(image.convert("RGB"))


class PILAsTensor(Dataset):
    """A torchvision dataset of PIL images seen as (uint8 RGB tensor (3, H, W), label) pairs.

    A file that cannot be read or converted, or whose shorter side is under ``MIN_IMAGE_SIDE`` pixels, is replaced by
    the next good one, named in a warning the first time, and counted in ``skipped`` (shared with DataLoader worker
    processes), so a bad file never stops an epoch and is never skipped silently.
    """

    def __init__(self, base: Dataset):
        self.base = base
        self.warned: set[int] = set()
        self.skipped = torch.zeros(1, dtype=torch.long).share_memory_()

    def __len__(self) -> int:
        return image_count(self.base)

    def name(self, index: int) -> str:
        samples = getattr(self.base, "samples", None)
        return str(samples[index][0]) if samples is not None else f"image #{index}"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for offset in range(image_count(self.base)):
            j = (i + offset) % image_count(self.base)
            try:
                image, label = self.base[j]
                if min(image.size) < MIN_IMAGE_SIDE:
                    raise ValueError(f"{image.size[0]}x{image.size[1]} pixels is under {MIN_IMAGE_SIDE} per side")
                return to_rgb_tensor(image), int(label)
            except (OSError, ValueError, SyntaxError) as exc:
                self.skipped += 1
                if j not in self.warned:
                    self.warned.add(j)
                    warnings.warn(f"skipping {self.name(j)}: {exc}", stacklevel=2)
        raise DataNotFoundError(f"no readable image among the {image_count(self.base)} files of the dataset")


def _torchvision_root(data_dir: str | None) -> Path:
    return Path(data_dir or os.environ.get("MIMAE_DATA") or CACHE_DIR)


def load_torchvision(name: str, data_dir: str | None = None):
    """CIFAR-10/100, STL-10 or an ImageFolder tree (``data_dir/train`` and ``data_dir/val`` or ``test``)."""
    import torchvision.datasets as tvd
    root = _torchvision_root(data_dir)
    if name == "imagefolder":
        if data_dir is None:
            raise DataNotFoundError("dataset=imagefolder needs data.data_dir pointing at a folder with train/ and "
                                    "val/ (or test/) subfolders of class folders")
        test_dir = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
        if not (root / "train").is_dir() or test_dir is None:
            raise DataNotFoundError(f"{root} must contain train/ and val/ (or test/) class folders")
        train = tvd.ImageFolder(str(root / "train"), loader=open_image)
        test = tvd.ImageFolder(str(test_dir), loader=open_image)
        classes = len(train.classes)
    else:
        makers = {"cifar10": (tvd.CIFAR10, 10), "cifar100": (tvd.CIFAR100, 100), "stl10": (tvd.STL10, 10)}
        cls, classes = makers[name]
        split = (lambda train: {"split": "train" if train else "test"}) if name == "stl10" else \
            (lambda train: {"train": train})
        try:
            train, test = (cls(str(root), download=True, **split(t)) for t in (True, False))
        except Exception as exc:
            raise DataNotFoundError(f"{name} was not found under {root} and could not be downloaded ({exc}); "
                                    f"pass data.data_dir or set MIMAE_DATA to a folder holding it") from None
    return PILAsTensor(train), PILAsTensor(test), DataInfo(name, 3, classes, IMAGENET_MEAN, IMAGENET_STD)


def image_count(dataset: Dataset) -> int:
    """The images of a map-style dataset (torch's ``Dataset`` type declares no ``__len__``; every dataset here
    has one)."""
    return len(dataset)  # type: ignore[arg-type]


# dataset name -> loader(data_dir) returning (train, test, info); other packages add theirs with register_dataset
LOADERS: dict[str, Callable[[str | None], tuple[Dataset, Dataset, DataInfo]]] = {
    "fashion-mnist": load_fashion_mnist,
    **{name: functools.partial(load_torchvision, name) for name in ("cifar10", "cifar100", "stl10", "imagefolder")},
}


def register_dataset(name: str):
    """Decorator: ``loader(data_dir) -> (train, test, info)`` becomes ``data.dataset=name`` (for instance paper
    003's synthetic ``hierarchical`` data, registered by :mod:`mimae.hierarchy.dataset`)."""
    def wrap(loader):
        LOADERS[name] = loader
        return loader
    return wrap


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_dir: str | None = None):
    """``(train, test, info)`` for a registered dataset name (``mimae.config.DATASETS``)."""
    if name not in LOADERS:
        raise DataNotFoundError(f"data.dataset={name!r} has no loader; registered: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](data_dir)
