"""Checkpoints: atomic writes, exact resume, loading without unpickling code.

A checkpoint is a ``torch.save`` of plain containers of tensors, numbers and strings, so it loads with
``torch.load(weights_only=True)``: model, optimizer and scaler states, step and epoch, RNG states, and the resolved
config. ``checkpoint.pt`` in the run folder is always the latest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def atomic_save(obj: Any, path: str | Path) -> None:
    """Write to a temporary file beside ``path`` and rename it: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def resolve(path: str | Path) -> Path:
    """A run folder or a checkpoint file -> the checkpoint file; a clear error if there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint (file or run folder) safely: no arbitrary code is unpickled."""
    return torch.load(resolve(path), map_location=map_location, weights_only=True)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "mask": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["mask"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def encoder_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The encoder's weights from a pretraining checkpoint (keys without the ``encoder.`` prefix)."""
    prefix = "encoder."
    return {k[len(prefix):]: v for k, v in checkpoint["model"].items() if k.startswith(prefix)}
