"""Odd image files, a checkpoint that would run code, and a loss that stops being finite."""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mimae.cli import main
from mimae.data import train_test_sets
from mimae.data.config import DataConfig
from mimae.data.sources import DataNotFoundError
from mimae.engine import NonFiniteLoss, Trainer
from mimae.runs import read
from tests.conftest import tiny_config


def image_folder(root, files: dict[str, callable]) -> None:
    """train/ and val/ with one good RGB image per class, plus ``files`` (name -> writer(path)) in train/a."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / split / cls / "good.png")
    for name, write in files.items():
        write(root / "train" / "a" / name)


def sixteen_bit(path):
    Image.fromarray(np.full((24, 24), 32768, dtype=np.uint16)).save(path)  # half of the 16-bit range


def cmyk(path):
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(path, "JPEG")  # pure red in CMYK


def truncated(path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")
    path.write_bytes(path.read_bytes()[:200])


def zero_bytes(path):
    path.write_bytes(b"")


def tiny(path):
    Image.fromarray(np.zeros((3, 3, 3), dtype=np.uint8)).save(path)


def read_all(root):
    train, _, _ = train_test_sets(DataConfig(dataset="imagefolder", data_dir=str(root), image_size=16))
    names = [path.rsplit("/", 1)[-1] for path, _ in train.base.base.samples]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = {names[i]: train[i][0] for i in range(len(train))}
        for i in range(len(train)):  # a second epoch: no file is named twice
            train[i]
    return images, [str(w.message) for w in caught], train


def test_odd_files_are_converted_correctly_or_skipped_and_named_once(tmp_path):
    image_folder(tmp_path, {"deep.png": sixteen_bit, "cmyk.jpg": cmyk, "cut.jpg": truncated, "empty.png": zero_bytes,
                            "thumb.png": tiny})
    images, messages, train = read_all(tmp_path)
    deep = images["deep.png"].float()
    assert deep.shape == (3, 16, 16) and torch.all((deep - 128).abs() <= 1)  # 32768 / 257, not clipped to 255
    red = images["cmyk.jpg"].float().mean(dim=(1, 2))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    for bad in ("cut.jpg", "empty.png", "thumb.png"):
        assert sum(bad in m for m in messages) == 1, (bad, messages)  # named once over two epochs
    assert "3x3 pixels" in next(m for m in messages if "thumb.png" in m)
    assert len(messages) == 3
    from mimae.data import skipped_images
    assert skipped_images(train) == 6  # 3 files x 2 epochs


def test_a_data_set_with_no_readable_image_fails_at_start_in_one_line(tmp_path, capsys):
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "a" / "x.png").write_bytes(b"not an image")
    with pytest.raises(DataNotFoundError, match="no readable image"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(tiny_config(data__dataset="imagefolder", data__data_dir=str(tmp_path)), tmp_path / "run")
    assert main(["pretrain", "--output-dir", str(tmp_path / "run2"), "data.dataset=imagefolder",
                 f"data.data_dir={tmp_path}", "-W"] if False else
                ["pretrain", "--output-dir", str(tmp_path / "run2"), "data.dataset=imagefolder",
                 f"data.data_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no readable image" in err and "Traceback" not in err


def test_an_epoch_summary_counts_the_skipped_files(tmp_path, capsys):
    image_folder(tmp_path, {"empty.png": zero_bytes})
    cfg = tiny_config(data__dataset="imagefolder", data__data_dir=str(tmp_path), optim__batch_size=3,
                      train__epochs=2, eval__knn_bank_limit=4, eval__knn_query_limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(cfg, tmp_path / "run").run()
    out = capsys.readouterr().out
    assert "epoch 1: 1 unreadable or unusable images skipped (1 so far)" in out
    assert "epoch 2: 1 unreadable or unusable images skipped (2 so far)" in out


def test_a_checkpoint_whose_load_would_run_code_is_refused_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"

    class WritesAFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("evil.pth", "checkpoint.pt"):
        with open(tmp_path / name, "wb") as fh:
            pickle.dump({"model": WritesAFile(), "config": {}}, fh, protocol=2)
    assert main(["eval", "linear", "--checkpoint", str(tmp_path / "evil.pth")]) == 2
    assert main(["pretrain", "--output-dir", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "weights_only=False" not in err and "Traceback" not in err


def test_non_finite_steps_are_skipped_counted_and_stop_the_run_after_max_bad_steps(tmp_path, monkeypatch):
    cfg = tiny_config(data__train_limit=64, optim__batch_size=16, train__epochs=3, train__max_bad_steps=3,
                      train__save_every_steps=2, train__log_every=1)  # the count is read at each log line
    trainer = Trainer(cfg, tmp_path)
    forward = trainer.objective.forward
    poisoned = {3, 4}  # two bad steps, then good ones, then bad for good from step 7

    def sometimes_nan(images, masks):
        out = forward(images, masks)
        if trainer.step + 1 in poisoned or trainer.step + 1 >= 7:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(trainer.objective, "forward", sometimes_nan)
    weights_after = {}
    real_step = trainer.optimizer_step

    def recording_step(micro):
        terms = real_step(micro)
        weights_after[trainer.step] = trainer.objective.encoder.cls_token.detach().clone()
        return terms

    monkeypatch.setattr(trainer, "optimizer_step", recording_step)
    with pytest.raises(NonFiniteLoss, match="not finite in 3 steps in a row"):
        trainer.run()
    assert torch.equal(weights_after[2], weights_after[4])  # steps 3 and 4 left the weights as they were
    assert not torch.equal(weights_after[4], weights_after[5])
    assert trainer.skipped_steps == 2 + 3
    saved = read(tmp_path).checkpoint
    assert saved["step"] == 8  # saved after skipped step 8: the weights are still those of step 6
    assert torch.equal(saved["model"]["encoder.cls_token"], weights_after[6])
    logged = (tmp_path / "metrics.jsonl").read_text()
    assert '"skipped_steps": 2' in logged


def test_skipped_steps_are_counted_on_the_device_and_stop_the_run_at_the_next_log_line(tmp_path, monkeypatch):
    cfg = tiny_config(data__train_limit=64, optim__batch_size=16, train__epochs=3, train__max_bad_steps=3,
                      train__log_every=4)
    trainer = Trainer(cfg, tmp_path)
    forward = trainer.objective.forward

    def nan_from_step_2(images, masks):
        out = forward(images, masks)
        out["loss"] = out["loss"] * (float("nan") if trainer.step + 1 >= 2 else 1.0)
        return out

    monkeypatch.setattr(trainer.objective, "forward", nan_from_step_2)
    with pytest.raises(NonFiniteLoss, match=r"not finite in 3 steps in a row \(up to step 4\)"):
        trainer.run()
    assert trainer.step == 4 and trainer.skipped_steps == 3


def test_a_diverging_run_stops_with_advice_not_a_traceback(tmp_path, capsys):
    args = ["pretrain", "--output-dir", str(tmp_path / "run"), "model.embed_dim=32", "model.depth=2",
            "model.num_heads=2", "model.decoder_dim=32", "model.decoder_depth=1", "model.decoder_heads=2",
            "data.image_size=16", "data.train_limit=256", "optim.batch_size=16", "optim.base_lr=1e30",
            "optim.warmup_epochs=0", "train.knn_at_init=false", "train.precision=fp32"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(r"not finite in \d+ steps in a row", err) and "optim.base_lr" in err and "Traceback" not in err
