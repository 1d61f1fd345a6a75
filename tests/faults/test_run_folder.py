"""A run folder shared with a second run, reused, resumed with other options, corrupted, or on a full disk."""

from __future__ import annotations

import errno
import json
import signal

import pytest
import torch

from mimae import checkpoint as ckpt
from mimae.checkpoint import CheckpointError
from mimae.cli import main
from mimae.engine import Trainer
from mimae.runs import latest_checkpoint
from tests.conftest import tiny_config
from tests.faults.conftest import command, kill, run, start, wait_for_step


def cli_args(run_dir, *extra):
    return command(run_dir, *extra)[3:]  # without the interpreter and -m mimae.cli


def test_a_second_run_on_a_folder_in_use_refuses_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    first = start(command(run_dir, "train.epochs=1000"))  # killed below, long before its end
    try:
        wait_for_step(first, run_dir, 2)
        second = run(command(run_dir, "--resume", "auto"))
        assert second.returncode == 2
        assert f"in use by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        kill(first, signal.SIGKILL)


def test_a_new_run_never_replaces_an_old_one_unless_told(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(cli_args(run_dir, "train.epochs=1")) == 0
    before = (run_dir / "metrics.jsonl").read_text()
    assert main(cli_args(run_dir, "train.epochs=1")) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run_dir / "metrics.jsonl").read_text() == before
    (run_dir / "notes.txt").write_text("mine")
    assert main(["pretrain", "--overwrite", *cli_args(run_dir, "train.epochs=1", "train.seed=1")[1:]]) == 0
    assert (run_dir / "notes.txt").read_text() == "mine"  # only what a run writes is removed
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 16


def test_resume_keeps_the_runs_own_config_and_refuses_changes_that_make_another_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(cli_args(run_dir, "train.epochs=1")) == 0
    # the README's form: only the folder, no options; the run's own (tiny) config is used, not the defaults
    assert main(["pretrain", "--output-dir", str(run_dir), "--resume", "train.epochs=2"]) == 0
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 32
    capsys.readouterr()
    assert main(["pretrain", "--output-dir", str(run_dir), "--resume", "model.depth=3", "optim.base_lr=0.01",
                 "train.epochs=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.depth (2 -> 3)" in err and "optim.base_lr" in err and "train.epochs" not in err
    assert len(err.splitlines()) == 1


def test_resume_without_a_checkpoint_fails_and_resume_auto_starts(tmp_path, capsys):
    assert main(cli_args(tmp_path / "empty", "--resume")) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(cli_args(tmp_path / "auto", "--resume", "auto", "train.epochs=1")) == 0
    assert (tmp_path / "auto" / "results.json").is_file()


def test_resume_auto_starts_over_a_run_killed_before_its_first_checkpoint(tmp_path):
    from mimae import api
    starts = {"cli": lambda run_dir: main(cli_args(run_dir, "--resume", "auto", "train.epochs=1")) == 0,
              "api": lambda run_dir: "report" in api.pretrain(tiny_config(train__epochs=1, data__train_limit=64,
                                                                         eval__knn_bank_limit=32), run_dir,
                                                             resume="auto")}
    for name, start_over in starts.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("method: mae\n")  # what a run killed at its start leaves: no checkpoint
        (run_dir / "metrics.jsonl").write_text('{"step": 20, "loss": 123.0}\n')
        assert start_over(run_dir)
        assert (run_dir / "results.json").is_file() and "123.0" not in (run_dir / "metrics.jsonl").read_text()


def test_a_corrupt_newest_checkpoint_is_skipped_for_the_previous_one(tmp_path):
    cfg = tiny_config(data__train_limit=64, optim__batch_size=16, train__epochs=2, train__save_every_steps=1)
    trainer = Trainer(cfg, tmp_path)
    trainer.run(until_step=5)
    assert ckpt.load_file(tmp_path / "checkpoint.prev.pt")["step"] == 4
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 garbage")
    with pytest.warns(UserWarning, match="skipping the unreadable checkpoint .*checkpoint.pt"):
        source = latest_checkpoint(tmp_path)
    assert source.path.name == "checkpoint.prev.pt" and source.step == 4
    with pytest.warns(UserWarning):
        resumed = Trainer(cfg, tmp_path, resume=True)
    assert resumed.step == 4
    resumed.run()
    assert resumed.step == 8


def test_a_full_disk_fails_in_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(data__train_limit=64, optim__batch_size=16, train__epochs=1)
    trainer = Trainer(cfg, tmp_path)
    trainer.run(until_step=2)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=f"no space left on the device of {tmp_path}"):
        trainer.save_checkpoint()
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_saves_reach_the_disk(tmp_path, monkeypatch):
    synced = []
    real = ckpt.os.fsync
    monkeypatch.setattr(ckpt.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    ckpt.atomic_save({"x": torch.ones(2)}, tmp_path / "checkpoint.pt")
    assert len(synced) == 2  # the file, then its folder (so the rename survives a power cut)
