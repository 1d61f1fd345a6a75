"""The pretraining DataLoader, shared by the training loop and the data-loading benchmark."""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mimae.data.sources import TensorImages


def single_thread_worker(_: int) -> None:
    """DataLoader workers use one thread each, so they do not fight the training process for cores."""
    torch.set_num_threads(1)


def default_workers(dataset: Dataset, requested: int | None) -> int:
    """``requested`` when set; else 0 for an in-memory dataset (indexing a tensor is faster than a worker's queue)
    and, for files to decode, one worker per core beyond the training process's first, at most 8."""
    if requested is not None:
        return requested
    inner = getattr(dataset, "dataset", dataset)
    if isinstance(inner, TensorImages):
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def training_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None, workers: int | None,
                    pin_memory: bool) -> DataLoader:
    """Batches of uint8 images in ``sampler``'s order (shuffled when None), last partial batch dropped."""
    workers = default_workers(dataset, workers)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=sampler is None, drop_last=True,
                      num_workers=workers, worker_init_fn=single_thread_worker, pin_memory=pin_memory,
                      persistent_workers=False, prefetch_factor=4 if workers else None)
