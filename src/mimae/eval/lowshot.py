"""Low-shot fine-tuning (paper 000, FT 1%): fine-tune on a seeded, class-balanced fraction of the training labels.

The subset is written to a JSON file (or read from it when it exists), so two methods are fine-tuned on exactly the
same images and the choice can be audited.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from mimae.config import ConfigError
from mimae.data.sources import image_count


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """Labels (N,) of a labelled dataset: its ``labels`` tensor when it has one, else read item by item."""
    if hasattr(dataset, "labels"):
        return torch.as_tensor(dataset.labels).long()
    return torch.tensor([int(dataset[i][1]) for i in range(image_count(dataset))])


def class_balanced_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices keeping round(fraction * n_c) images (at least 1) of each class c, drawn without replacement
    by a generator seeded with ``seed``; the draw depends only on the labels, the fraction and the seed."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction} is not in (0, 1]")
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for cls in torch.unique(labels).tolist():
        members = (labels == cls).nonzero().flatten()
        keep = max(1, round(fraction * len(members)))
        picked.append(members[torch.randperm(len(members), generator=generator)[:keep]])
    return torch.cat(picked).sort().values


def load_or_make_subset(path: str | Path, labels: torch.Tensor, fraction: float, seed: int,
                        dataset: str) -> torch.Tensor:
    """The subset saved at ``path``, checked against this training set; or a new one, written there."""
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        indices = torch.tensor(saved["indices"])
        if saved["train_images"] != len(labels) or saved["dataset"] != dataset:
            raise ConfigError(f"lowshot.subset_file={path} was drawn from {saved['train_images']} images of "
                              f"{saved['dataset']}, not from these {len(labels)} images of {dataset}")
        if not torch.equal(labels[indices], torch.tensor(saved["labels"])):
            raise ConfigError(f"lowshot.subset_file={path}: its labels differ from this training set's")
        return indices
    indices = class_balanced_subset(labels, fraction, seed)
    chosen = labels[indices]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "dataset": dataset, "train_images": len(labels), "fraction": fraction, "seed": seed,
        "per_class": {int(c): int((chosen == c).sum()) for c in torch.unique(chosen)},
        "indices": indices.tolist(), "labels": chosen.tolist()}))
    return indices


def lowshot_train_set(train: Dataset, path: str | Path, fraction: float, seed: int, dataset: str) -> Subset:
    """The class-balanced subset of ``train`` saved at (or written to) ``path``."""
    return Subset(train, load_or_make_subset(path, dataset_labels(train), fraction, seed, dataset).tolist())
