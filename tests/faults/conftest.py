"""Helpers of the fault matrix: runs of the real command in subprocesses, a reference run to compare with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mimae.runs import read

# A run of 32 optimizer steps (2 epochs of 16) that takes seconds; one thread, so that every run of it computes
# exactly the same weights and a resumed run can be compared bit for bit.
RUN_ARGS = ["model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.decoder_dim=32",
            "model.decoder_depth=1", "model.decoder_heads=2", "data.image_size=16", "model.patch_size=4",
            "data.train_limit=256", "optim.batch_size=16", "train.epochs=2", "train.log_every=1",
            "train.precision=fp32", "train.knn_at_init=false", "eval.knn_bank_limit=64", "eval.knn_query_limit=32",
            "train.threads=1", "train.save_every_steps=2"]
TOTAL_STEPS = 32


def command(run_dir: Path, *extra: str, method: str = "mae") -> list[str]:
    return [sys.executable, "-m", "mimae.cli", "pretrain", "--method", method, "--output-dir", str(run_dir),
            *RUN_ARGS, *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=environment())


PACED = str(Path(__file__).with_name("paced.py"))


def start(args: list[str]) -> subprocess.Popen:
    """Start ``args`` (a mimae command, or torchrun of one) in a new process group, paced (see paced.py) so that a
    test sees it at every step before it ends."""
    if "mimae.cli" in args:
        at = args.index("mimae.cli")
        args = [*args[:at - 1], PACED, *args[at + 1:]]  # "-m mimae.cli" -> the paced script
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                            start_new_session=True)


def logged_step(run_dir: Path) -> int:
    """The last step in the run's metrics log (0 before the first line)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [int(line.split('"step": ')[1].split(",")[0].split("}")[0])
             for line in path.read_text().splitlines() if '"step": ' in line]
    return max(steps, default=0)


def wait_for_step(process: subprocess.Popen, run_dir: Path, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while logged_step(run_dir) < step:
        if process.poll() is not None:
            raise AssertionError(f"the run ended (rc {process.returncode}) before step {step}: "
                                 f"{process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no step {step} within {timeout} s")
        time.sleep(0.01)


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=120)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return read(run_dir).checkpoint["model"]


def processes(field: int, value: int) -> list[int]:
    """The pids of the live processes whose /proc stat ``field`` (3: parent pid, 4: process group) is ``value``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended while we looked
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, pgrp, ...
            if fields[0] != "Z" and int(fields[field - 2]) == value:
                found.append(int(entry.name))
    return sorted(found)


def children(pid: int) -> list[int]:
    return processes(3, pid)


def assert_no_process_left(group: int, timeout: float = 10) -> None:
    """Nothing of the process group ``group`` (a run started by :func:`start`) outlives the run."""
    deadline = time.monotonic() + timeout
    while processes(4, group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes(4, group), f"left running: {processes(4, group)}"


def jpeg_folder(root: Path, per_class: int = 128) -> Path:
    """An ImageFolder of random 20 x 20 JPEGs: train/ with ``per_class`` per class and val/ with 16, classes a, b."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 16)):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.jpg")
    return root


def assert_bit_exact(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def finished(args: list[str], run_dir: Path) -> Path:
    """Run ``args`` (which write ``run_dir``) to the end; the folder."""
    done = run(args)
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one is compared with."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    return finished(command(run_dir), run_dir)
