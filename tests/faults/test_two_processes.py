"""The same faults under torchrun with 2 gloo processes: a resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import random
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.faults.conftest import RUN_ARGS, assert_bit_exact, finished, kill, start, wait_for_step, weights

# 512 images, 8 per process per step: 32 steps per epoch, 64 in all
ARGS = [a for a in RUN_ARGS if not a.startswith(("data.train_limit", "optim.batch_size"))] + [
    "data.train_limit=512", "optim.batch_size=8"]
TOTAL_STEPS = 64


def torchrun(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
            str(free_port()), "-m", "mimae.cli", "pretrain", "--output-dir", str(run_dir), *ARGS, *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp-reference") / "run"
    return finished(torchrun(run_dir), run_dir)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_two_processes_interrupted_then_resumed_are_bit_exact(tmp_path, reference, sig):
    run_dir = tmp_path / "run"
    process = start(torchrun(run_dir))
    wait_for_step(process, run_dir, random.Random(int(sig)).randint(4, TOTAL_STEPS - 10))
    kill(process, sig)  # the whole group: torchrun and both workers
    if sig == signal.SIGTERM:
        assert "stopped by SIGTERM" in process.stderr.read()
    finished(torchrun(run_dir, "--resume"), run_dir)
    assert_bit_exact(weights(run_dir), weights(reference))
