"""The sweep runner: a grid x seeds of real runs, finished points skipped, an interrupted one resumed, failures
recorded, everything collected into sweep.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mimae.cli import main
from mimae.config import ConfigError, load_config, parse_overrides
from mimae.engine import Trainer
from mimae.experiments.sweep import (
    CHECKPOINT_MINUTES,
    Settings,
    commands,
    grid_points,
    missing,
    parse_grid,
    run_sweep,
)
from tests.conftest import TINY

COMMON = [f"{k}={v}" for k, v in TINY.items()] + ["data.train_limit=64", "eval.knn_bank_limit=64",
                                                   "eval.knn_query_limit=32", "train.epochs=1"]


def test_the_grid_is_every_combination_for_every_seed():
    points = grid_points(parse_grid(["mask.ratio=0.5,0.75", "optim.base_lr=1e-3,2e-3"]), [0, 1])
    assert len(points) == 8 and points[0].name == "mask.ratio=0.5,optim.base_lr=1e-3,seed=0"
    assert [p.seed for p in points] == [0] * 4 + [1] * 4
    assert points[-1].overrides() == ["mask.ratio=0.75", "optim.base_lr=2e-3", "train.seed=1"]
    with pytest.raises(ConfigError, match="section.key=value1,value2"):
        parse_grid(["mask.ratio"])


def test_a_sweep_runs_its_points_collects_them_and_skips_them_the_next_time(tmp_path, capsys):
    args = ["sweep", "--root", str(tmp_path), "--grid", "mask.ratio=0.5,0.75", "--eval", "knn", *COMMON]
    assert main(args) == 0
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["name"] for p in sweep["points"]] == ["mask.ratio=0.5,seed=0", "mask.ratio=0.75,seed=0"]
    for point in sweep["points"]:
        run_config = load_config(f"{point['run_dir']}/config.yaml")
        assert run_config.mask.ratio == point["values"]["mask.ratio"]
        assert run_config.train.save_every_minutes == CHECKPOINT_MINUTES  # a killed sweep loses at most that much
        assert point["results"]["steps"] == 4 and 0 <= point["measures"]["knn"] <= 100
        assert point["measures"]["knn (pixels)"] == point["results"]["knn_pixels"]
        times = json.loads((Path(point["run_dir"]) / "sweep_times.json").read_text())  # the plan's pace
        assert list(times) == ["knn"] and times["knn"] > 0
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 finished before, 0 to run" in out and ": pretrain" not in out
    assert json.loads((tmp_path / "sweep.json").read_text())["points"] == sweep["points"]


def test_an_interrupted_point_resumes_and_a_failing_one_is_recorded(tmp_path):
    points = grid_points(parse_grid(["mask.ratio=0.5,1.0"]), [0], COMMON)  # 1.0 fails validation in its run
    interrupted = tmp_path / points[0].name
    Trainer(load_config(overrides=parse_overrides(points[0].overrides())), interrupted).run(until_step=2)
    sweep = run_sweep(tmp_path, points, say=lambda text: None)
    good, bad = sweep["points"]
    assert good["results"]["steps"] == 4 and "failed" not in good
    steps = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert steps == [1, 2, 3, 4]  # continued after step 2, none repeated
    assert bad["failed"]["exit"] == 2 and "mask.ratio" in " ".join(bad["failed"]["tail"])


def processes_naming(text: str) -> list[int]:
    """The live processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(proc.name))
        except OSError:  # gone meanwhile
            pass
    return found


def test_a_sigterm_to_the_sweep_stops_its_running_trainer_with_a_checkpoint_and_starts_nothing_more(tmp_path):
    args = ["sweep", "--root", str(tmp_path), "--seeds", "0", "1", *COMMON, "train.epochs=500"]  # 2,000 steps each
    sweep = subprocess.Popen([sys.executable, "-m", "mimae.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = tmp_path / "seed=0" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and '"loss"' in metrics.read_text()):
        assert time.monotonic() < deadline and sweep.poll() is None, "the first point never started training"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)
    out, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in out
    assert processes_naming(str(tmp_path)) == []  # the trainer stopped with the sweep
    assert (tmp_path / "seed=0" / "checkpoint.pt").is_file() and not (tmp_path / "seed=0" / "results.json").exists()
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"loss"' in line]
    assert steps[-1] < 2000
    assert not (tmp_path / "seed=1").exists()  # the next point never started


def test_a_sigterm_to_an_analysis_experiment_stops_its_command_too(tmp_path):
    root = tmp_path / "experiments"
    experiment = subprocess.Popen([sys.executable, "-m", "mimae.cli", "experiment", "run", "paper003-hierarchy",
                                   "--scale", "cpu", "--root", str(root)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while len(processes_naming(f"learned --output {root}")) == 0:  # the command's own process
        assert time.monotonic() < deadline and experiment.poll() is None, "the analysis command never started"
        time.sleep(0.2)
    experiment.send_signal(signal.SIGTERM)
    out, _ = experiment.communicate(timeout=60)
    assert experiment.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in out
    deadline = time.monotonic() + 30
    while processes_naming(str(root)):
        assert time.monotonic() < deadline, "the analysis command outlived the experiment"
        time.sleep(0.2)


def test_a_sweeps_own_checkpoint_interval_overrides_the_ten_minute_default(tmp_path):
    point = grid_points(parse_grid(["mask.ratio=0.5"]), [0], COMMON)[0]
    settings = Settings(base=["train.save_every_minutes=30"])
    (name, args), = commands(point, tmp_path / point.name, settings)
    overrides = args[args.index("auto") + 1:]  # after pretrain --output-dir RUN --resume auto
    assert name == "pretrain" and f"train.save_every_minutes={CHECKPOINT_MINUTES}" in overrides
    assert load_config(overrides=parse_overrides(overrides)).train.save_every_minutes == 30


def test_an_evaluation_that_does_not_apply_to_a_run_is_neither_run_nor_missing(tmp_path):
    """mask-mi encodes each view's visible patches alone, which a Swin does not: a Swin point is not given it, and
    a finished Swin run without it counts as finished; a ViT point is given it and lacks it until it has run."""
    swin = ["--method", "simmim", "model.backbone=swin", "model.swin_depths=2,2", "data.image_size=32"]
    settings = Settings(evaluations=["mask-mi", "rank"])
    names = {}
    for label, extra in (("vit", []), ("swin", swin)):
        point = grid_points(parse_grid(["mask.ratio=0.5"]), [0], [*COMMON, *extra])[0]
        run_dir = tmp_path / label
        names[label] = [name for name, _ in commands(point, run_dir, settings)]
        main(["pretrain", "--output-dir", str(run_dir), *point.overrides()])
        names[f"{label} finished"] = missing(run_dir, settings.evaluations)
    assert names == {"vit": ["pretrain", "mask-mi", "rank"], "vit finished": ["mask-mi", "rank"],
                     "swin": ["pretrain", "rank"], "swin finished": ["rank"]}
