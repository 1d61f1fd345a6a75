"""Kills, preemption and Ctrl-C: the run resumes and ends with the weights of a run that was never interrupted."""

from __future__ import annotations

import random
import signal
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import (
    TOTAL_STEPS,
    assert_bit_exact,
    command,
    kill,
    logged_step,
    run,
    start,
    wait_for_step,
    weights,
)


def resume_to_the_end(run_dir: Path) -> None:
    done = run(command(run_dir, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run folder:" in done.stdout


def log_steps(run_dir: Path) -> list[int]:
    """The optimizer steps of the metric lines (kNN lines excluded), in order."""
    import json
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "loss" in r]


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_a_random_step_then_resume_is_bit_exact(tmp_path, reference, seed):
    step = random.Random(seed).randint(3, TOTAL_STEPS - 6)
    process = start(command(tmp_path / "run"))
    wait_for_step(process, tmp_path / "run", step)
    kill(process, signal.SIGKILL)
    assert logged_step(tmp_path / "run") < TOTAL_STEPS
    resume_to_the_end(tmp_path / "run")
    assert_bit_exact(weights(tmp_path / "run"), weights(reference))
    assert log_steps(tmp_path / "run") == list(range(1, TOTAL_STEPS + 1))  # no step logged twice


def test_sigkill_during_a_save_keeps_the_previous_checkpoint(tmp_path, reference):
    run_dir = tmp_path / "run"
    marker = tmp_path / "stalled"
    helper = Path(__file__).with_name("slow_save.py")
    process = start([sys.executable, str(helper), str(marker), *command(run_dir)[3:]])
    for _ in range(12000):
        if marker.exists() or process.poll() is not None:
            break
        import time
        time.sleep(0.01)
    assert marker.exists(), process.stderr.read()[-2000:]
    before = (run_dir / "checkpoint.pt").read_bytes()
    kill(process, signal.SIGKILL)
    assert (run_dir / "checkpoint.pt").read_bytes() == before  # the first save, whole
    resume_to_the_end(run_dir)
    assert not list(run_dir.glob(".*.tmp"))  # the next save replaced the half-written temporary file
    assert_bit_exact(weights(run_dir), weights(reference))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_says_how_to_resume_and_exits_0(tmp_path, reference, sig):
    run_dir = tmp_path / "run"
    process = start(command(run_dir, "train.save_every_steps=0"))  # no step checkpoints: the signal's is the one
    wait_for_step(process, run_dir, 5)
    kill(process, sig)
    stderr = process.stderr.read()
    assert process.returncode == 0, stderr[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    resume_to_the_end(run_dir)
    assert_bit_exact(weights(run_dir), weights(reference))


def test_training_time_accumulates_over_resumes(tmp_path):
    import json
    run_dir = tmp_path / "run"
    process = start(command(run_dir))
    wait_for_step(process, run_dir, 10)
    kill(process, signal.SIGTERM)
    from mimae.runs import read
    first = read(run_dir).checkpoint["train_seconds"]
    resume_to_the_end(run_dir)
    total = json.loads((run_dir / "results.json").read_text())["train_seconds"]
    assert 0 < first < total
