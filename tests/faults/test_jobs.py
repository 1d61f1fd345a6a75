"""A sweep as submitit jobs (the local executor: the job code of a SLURM run, in real processes on this machine): a
job warned of its time limit (SIGUSR2) stops its run with a checkpoint, is requeued, resumes and ends bit-exact."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from mimae.cli import main
from mimae.experiments.launch import Cluster
from mimae.experiments.sweep import grid_points, run_sweep, sweep_status
from tests.faults.conftest import RUN_ARGS, assert_bit_exact, command, finished, logged_step, weights

ARGS = [*RUN_ARGS, "train.epochs=8", "train.save_every_steps=0"]  # 128 steps: long enough to interrupt


def job_process(job_id: str) -> int:
    """The pid of the task process of a local submitit job (the one that runs the job's Python code)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if "submitit.core._submit" in cmdline and f"SUBMITIT_LOCAL_JOB_ID={job_id}".encode() in environ:
                return int(entry.name)
    raise AssertionError(f"no process of job {job_id}")


def test_a_job_warned_of_its_time_limit_is_requeued_and_resumes_bit_exact(tmp_path, capsys):
    reference = finished(command(tmp_path / "reference", *ARGS), tmp_path / "reference")
    root = tmp_path / "sweep"
    sweep = run_sweep(root, grid_points({}, [0], ARGS), ["--method", "mae"], say=lambda text: None,
                      cluster=Cluster("local", gpus_per_node=0, time_minutes=10))
    point = sweep["points"][0]
    run_dir, job = Path(point["run_dir"]), point["job"]
    assert sweep_status(root)[0]["job"] == job
    deadline = time.monotonic() + 240
    while logged_step(run_dir) < 10:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.02)
    os.kill(job_process(job), signal.SIGUSR2)  # what SLURM sends before the time limit or a preemption
    while not (root / "jobs" / f"{job}_0_result.pkl").is_file():
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)
    log = (root / "jobs" / f"{job}_0_log.out").read_text()
    assert "Requeued job" in log, log[-2000:]
    assert "stopped by SIGTERM at step" in (run_dir / "sweep.log").read_text()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 129))  # every step once
    assert_bit_exact(weights(run_dir), weights(reference))
    assert main(["sweep", "--status", str(root)]) == 0
    assert f"done (job {job})" in capsys.readouterr().out


def test_a_job_whose_run_fails_shows_as_failed(tmp_path):
    root = tmp_path / "sweep"
    sweep = run_sweep(root, grid_points({}, [0], [*RUN_ARGS, "data.dataset=imagefolder",
                                                   f"data.data_dir={tmp_path / 'nothing'}"]),
                      say=lambda text: None, cluster=Cluster("local", gpus_per_node=0, time_minutes=10))
    job = sweep["points"][0]["job"]
    deadline = time.monotonic() + 120
    while not (root / "jobs" / f"{job}_0_result.pkl").is_file():
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)
    assert sweep_status(root)[0]["state"].startswith("failed (see ")
