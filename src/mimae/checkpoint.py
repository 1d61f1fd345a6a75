"""Checkpoint files: atomic writes, safe reads, and the random-number-generator states of a process.

A checkpoint is a ``torch.save`` of plain containers of tensors, numbers and strings, so it loads with
``torch.load(weights_only=True)``: no code is unpickled. ``checkpoint.pt`` in a run folder is always the latest.
What a checkpoint holds and how each kind of weights file is read is :mod:`mimae.runs`'s business.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"


class CheckpointError(ValueError):
    """A weights file cannot be read safely or does not hold what was expected; the message names the file."""


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | Path, keep_previous: bool = False) -> None:
    """Write ``obj`` to a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the folder: a
    crash never leaves a half-written checkpoint, and the previous one stays whole until the new one is on disk.

    ``keep_previous`` keeps the file being replaced as ``checkpoint.prev.pt`` (a hard link; the one before it is
    removed before writing, so the folder never needs room for more than two checkpoints). A failed write removes its
    temporary file; a full disk fails with one line naming the folder.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    previous = path.with_name(PREVIOUS_NAME)
    if keep_previous:
        previous.unlink(missing_ok=True)
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        full = getattr(exc, "errno", None) == errno.ENOSPC or shutil.disk_usage(path.parent).free < 1 << 20
        if full:
            raise CheckpointError(f"no space left on the device of {path.parent}: {path.name} was not written "
                                  f"(a checkpoint needs room for itself beside the previous one, which is intact)"
                                  ) from None
        raise
    if keep_previous and path.exists():
        os.link(path, previous)  # a second name for the same data: no copy, and checkpoint.pt is never missing
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def load_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only; a one-line error otherwise."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a write that never finished?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(f"{path} holds {unsafe.group(1)}, which loading would import and call; mimae "
                                  f"reads only tensors and plain containers from a checkpoint") from None
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: a truncated or "
                              f"corrupted file?)") from None


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """This process's generator states: torch's global CPU generator, the training ``generator`` (crops, masks)
    and, where CUDA is present, every GPU's."""
    state = {"torch": torch.get_rng_state(), "mask": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Put back what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["mask"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"].cpu()))
