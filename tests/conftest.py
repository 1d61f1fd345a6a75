"""Shared fixtures: small configs and datasets so the suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import os

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


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now (for a gloo rendezvous)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_process_group(rank: int, world: int, port: int) -> None:
    """Set what torchrun sets for process ``rank`` of ``world``; the Trainer joins the gloo group from there."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
