"""Shared fixtures: small configs and datasets so the suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import torch

from mimae.config import load_config
from mimae.presets import TINY as TINY_MODEL

# One thread per test process: pytest-xdist runs one process per core.
torch.set_num_threads(int(os.environ.get("MIMAE_TEST_THREADS", "1")))

TINY = {
    **TINY_MODEL,
    "optim.batch_size": 16, "train.epochs": 2, "train.log_every": 1,
    "train.precision": "fp32", "train.knn_at_init": False, "eval.knn_query_limit": 64,
}


def tiny_config(**overrides):
    """A 2-block ViT on 16x16 inputs; ``overrides`` use double underscores for dots (optim__batch_size=8)."""
    values = dict(TINY)
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(overrides=values)


def train_tiny(run_dir, **overrides):
    """Pretrain a ``tiny_config`` MAE into ``run_dir`` on a Fashion-MNIST slice (seconds); returns ``run_dir``."""
    from mimae.engine import Trainer
    from mimae.workflow import KnnMonitor
    values = dict(data__train_limit=64, data__test_limit=32, eval__knn_bank_limit=32, train__epochs=1)
    values.update(overrides)
    cfg = tiny_config(**values)
    Trainer(cfg, run_dir, monitor=KnnMonitor(cfg)).run()
    return run_dir


@pytest.fixture
def tiny_cfg():
    return tiny_config()


@contextlib.contextmanager
def rendezvous(world: int) -> Iterator[int]:
    """The port of a key-value store that this process hosts, as torchrun's agent does, for ``world`` processes
    to meet at: the store binds a port of the system's choosing and keeps it, so no other process can take it
    between the choice and the meeting."""
    store = torch.distributed.TCPStore("127.0.0.1", 0, world, is_master=True, wait_for_workers=False)
    try:
        yield store.port
    finally:
        del store


def join_process_group(rank: int, world: int, port: int) -> None:
    """Set what torchrun sets for process ``rank`` of ``world`` meeting at the store :func:`rendezvous` hosts on
    ``port``; the Trainer joins the gloo group from there."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), TORCHELASTIC_USE_AGENT_STORE="True")
    torch.set_num_threads(1)
