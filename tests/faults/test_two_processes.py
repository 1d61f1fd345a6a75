"""The same faults under torchrun with 2 gloo processes: a resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

import pytest

from mimae.runs import read
from tests.faults.conftest import (
    RUN_ARGS,
    assert_bit_exact,
    children,
    finished,
    kill,
    start,
    wait_for_step,
    weights,
)

# 512 images, 8 per process per step: 32 steps per epoch, 64 in all
ARGS = [a for a in RUN_ARGS if not a.startswith(("data.train_limit", "optim.batch_size"))] + [
    "data.train_limit=512", "optim.batch_size=8"]
TOTAL_STEPS = 64


def torchrun(run_dir: Path, *extra: str, restarts: int = 0) -> list[str]:
    """2 processes of ``mimae pretrain``; ``restarts``: torchrun's ``--max-restarts``, with ``--resume auto``."""
    elastic = ["--max-restarts", str(restarts)] if restarts else []
    resume = ["--resume", "auto"] if restarts else []
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *elastic,
            "-m", "mimae.cli", "pretrain", "--output-dir", str(run_dir), *resume, *ARGS, *extra]


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


def kill_one_process(torchrun_process, run_dir: Path, at_step: int, rank: int) -> None:
    """SIGKILL to the training process of ``rank`` once the log reaches ``at_step`` (torchrun then stops the other)."""
    wait_for_step(torchrun_process, run_dir, at_step)
    for pid in children(torchrun_process.pid):
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            os.kill(pid, signal.SIGKILL)
            return
    raise AssertionError(f"no process of rank {rank} under torchrun")


def test_torchrun_restarts_a_killed_process_and_ends_bit_exact(tmp_path, reference):
    run_dir = tmp_path / "run"
    process = start(torchrun(run_dir, restarts=2))
    kill_one_process(process, run_dir, random.Random(0).randint(6, TOTAL_STEPS - 20), rank=0)  # the one that saves
    process.wait(timeout=300)
    stderr = process.stderr.read()
    assert process.returncode == 0, stderr[-3000:]
    assert "Connection refused" not in stderr
    assert read(run_dir).checkpoint["step"] == TOTAL_STEPS
    assert_bit_exact(weights(run_dir), weights(reference))


def test_more_failures_than_restarts_end_the_run_with_its_last_checkpoint_intact(tmp_path, reference):
    run_dir = tmp_path / "run"
    process = start(torchrun(run_dir, restarts=2))
    for attempt, step in enumerate((8, 20, 32)):  # each restart resumes, gets further, and is killed again
        kill_one_process(process, run_dir, step, rank=attempt % 2)
    process.wait(timeout=300)
    assert process.returncode != 0
    assert 8 <= read(run_dir).checkpoint["step"] < TOTAL_STEPS  # the newest checkpoint reads
    finished(torchrun(run_dir, "--resume"), run_dir)
    assert_bit_exact(weights(run_dir), weights(reference))
