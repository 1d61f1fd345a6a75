import json

import pytest
import torch

from mimae.engine import Trainer
from mimae.optim import learning_rate, make_optimizer
from mimae.runs import read
from mimae.workflow import KnnMonitor
from tests.conftest import tiny_config


def small(**kw):
    base = dict(data__train_limit=64, data__test_limit=64, eval__knn_bank_limit=64, optim__batch_size=16,
                train__epochs=2)
    base.update(kw)
    return tiny_config(**base)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.objective.state_dict().items()}


def test_learning_rate_schedule():
    assert learning_rate(0, 100, 10, 1.0, 0.0) == 0.0
    assert learning_rate(5, 100, 10, 1.0, 0.0) == 0.5
    assert learning_rate(10, 100, 10, 1.0, 0.0) == 1.0
    assert learning_rate(55, 100, 10, 1.0, 0.1) == pytest.approx(0.55)
    assert learning_rate(100, 100, 10, 1.0, 0.1) == pytest.approx(0.1)


def test_no_weight_decay_on_biases_norms_and_tokens(tiny_cfg):
    from mimae.objectives import build_objective
    model = build_objective(tiny_cfg, 1)
    opt = make_optimizer(model, tiny_cfg.optim)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            no_decay = p.ndim <= 1 or name.split(".")[-1] in ("cls_token", "mask_token", "pos_embed")
            assert group["weight_decay"] == (0.0 if no_decay else tiny_cfg.optim.weight_decay), name


@pytest.mark.parametrize("stop", [3, 4])  # mid-epoch and at an epoch boundary (4 steps per epoch)
def test_resume_equals_uninterrupted(tmp_path, stop):
    cfg = small()
    straight = Trainer(cfg, tmp_path / "a")
    straight.run()
    first = Trainer(cfg, tmp_path / "b")
    first.run(until_step=stop)
    assert first.step == stop and (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    assert resumed.step == stop
    resumed.run()
    assert resumed.step == straight.step == 8
    a, b = weights(straight), weights(resumed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


def test_resume_equals_uninterrupted_with_crops_taken_as_the_files_are_read(tmp_path):
    from tests.test_data import photo_folder
    photo_folder(tmp_path / "photos", count=32, size=(40, 56))
    cfg = small(data__dataset="imagefolder", data__data_dir=str(tmp_path / "photos"), optim__batch_size=8,
                eval__knn_query_limit=8, data__num_workers=1)
    straight = Trainer(cfg, tmp_path / "a")
    assert straight.augment.cropped
    straight.run()
    first = Trainer(cfg, tmp_path / "b")
    first.run(until_step=6)  # mid-way through the second epoch
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    resumed.run()
    assert resumed.step == straight.step == 8
    assert straight.dataset.epoch == resumed.dataset.epoch == 1  # the second epoch drew crops of its own
    a, b = weights(straight), weights(resumed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


def test_run_folder_contents_and_loss_decreases(tmp_path):
    cfg = small(data__train_limit=256, train__epochs=3, optim__base_lr=2e-3)
    Trainer(cfg, tmp_path, monitor=KnnMonitor(cfg)).run()
    assert {"config.yaml", "metrics.jsonl", "checkpoint.pt", "results.json"} <= {p.name for p in tmp_path.iterdir()}
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in lines if "loss" in r]
    assert losses[-1] < losses[0]
    state = read(tmp_path).checkpoint  # loads with weights_only=True
    assert state["step"] == 48 and state["config"]["method"] == "mae"
    assert json.loads((tmp_path / "results.json").read_text())["knn_final"] > 0


def test_the_loop_copies_to_the_host_only_at_the_log_interval(tmp_path, monkeypatch):
    """Every Tensor -> Python conversion that mimae's training code makes is counted (the dataset's labels, read on
    the host by the loader, are not): one per log window (the window's means and the skipped-step counters), none
    per step (the fused optimizer skips a step whose loss is not finite on the device). On a GPU each such
    conversion waits for the device."""
    import sys

    calls = []

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "/mimae/" in caller and "/mimae/data/" not in caller:
                calls.append((name, caller.rsplit("/", 1)[-1]))
            return original(self, *args, **kwargs)
        return wrapper

    cfg = small(method="mimae", train__log_every=4, train__knn_at_init=False, mimae__eps_l=100.0, train__epochs=3)
    trainer = Trainer(cfg, tmp_path)
    for name in ("item", "tolist", "__float__", "__bool__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    trainer.run(until_step=8)  # log windows end at steps 4 and 8 (the epoch ends, each with a checkpoint)
    assert calls == [("tolist", "train_step.py")] * 2


def test_an_explicit_precision_the_device_lacks_is_refused(tmp_path):
    from mimae.config import ConfigError
    with pytest.raises(ConfigError, match="train.precision=fp16 trains on GPUs only"):
        Trainer(small(train__precision="fp16", train__device="cpu"), tmp_path)


def test_results_count_image_mask_samples_of_a_multi_view_method(tmp_path):
    """Under train.equal_samples MI-MAE (4 masks) takes a quarter of MAE's images per step and SimCLR (2 crops)
    half, for the same steps, samples and peak lr; results.json says so."""
    from tests.conftest import train_tiny
    runs = {method: json.loads((train_tiny(tmp_path / method, method=method, train__equal_samples=True,
                                           train__epochs=4) / "results.json").read_text())
            for method in ("mae", "mimae", "simclr")}
    mae, mi, sim = runs["mae"], runs["mimae"], runs["simclr"]
    assert mi["views_per_image"] == 4 and mi["effective_batch"] * 4 == mae["effective_batch"]
    assert sim["samples_per_image"] == 2 and sim["effective_batch"] * 2 == mae["effective_batch"]
    for other in (mi, sim):
        assert other["steps"] == mae["steps"] and other["samples"] == mae["samples"]
        assert other["peak_lr"] == pytest.approx(mae["peak_lr"])
    assert mi["images_seen"] * 4 == mae["images_seen"] == mae["samples"] == mae["steps"] * mae["effective_batch"]


def test_a_resumed_run_reads_its_checkpoint_once(tmp_path, monkeypatch):
    import mimae.engine
    from mimae.cli import main
    from tests.conftest import TINY, train_tiny
    run_dir = train_tiny(tmp_path / "run")
    reads = []
    original = mimae.engine.latest_checkpoint
    monkeypatch.setattr(mimae.engine, "latest_checkpoint", lambda folder: reads.append(folder) or original(folder))
    tiny = [f"{k}={v}" for k, v in TINY.items() if k != "train.epochs"]
    assert main(["pretrain", "--output-dir", str(run_dir), "--resume", *tiny, "data.train_limit=64",
                 "data.test_limit=32", "eval.knn_bank_limit=32", "train.epochs=2"]) == 0
    assert len(reads) == 1 and read(run_dir).checkpoint["step"] == 8  # 64 images / 16 a step, 2 epochs
