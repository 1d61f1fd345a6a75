import json

import pytest
import torch
import yaml

from mimae.analysis.curves import curve_keys, gate_opened_at, read_metrics
from mimae.cli import main
from mimae.runs import read
from tests.conftest import train_tiny


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-epoch tiny MAE run that keeps its per-epoch checkpoints."""
    return train_tiny(tmp_path_factory.mktemp("analysis") / "tiny-mae", data__test_limit=200,
                      eval__knn_bank_limit=64, eval__knn_query_limit=64, train__epochs=2,
                      train__keep_checkpoints=True)


def test_keep_checkpoints_saves_initialization_and_every_epoch(tiny_run):
    assert sorted(p.name for p in tiny_run.glob("checkpoint-epoch*.pt")) == [
        "checkpoint-epoch0.pt", "checkpoint-epoch1.pt", "checkpoint-epoch2.pt"]
    first, last, latest = (read(tiny_run / name).checkpoint for name in
                           ("checkpoint-epoch0.pt", "checkpoint-epoch2.pt", "checkpoint.pt"))
    assert (first["step"], last["step"]) == (0, latest["step"]) == (0, 8)
    key = "encoder.blocks.0.attn.qkv.weight"
    assert not torch.equal(first["model"][key], last["model"][key])
    torch.testing.assert_close(last["model"][key], latest["model"][key])


def run_cli(args, capsys):
    assert main(["analyze", *args]) == 0
    return capsys.readouterr().out


def outputs(folder, name):
    return json.loads((folder / f"{name}.json").read_text()), (folder / f"{name}.png").stat().st_size


def test_reconstruct_command(tiny_run, tmp_path, capsys):
    printed = run_cli(["reconstruct", "--checkpoint", str(tiny_run), "--output-dir", str(tmp_path),
                       "--images", "20", "--ratios", "0", "0.75", "--grid-images", "3"], capsys)
    data, size = outputs(tmp_path, "reconstruct_metrics")
    assert size > 1000 and (tmp_path / "reconstruct_grid.png").stat().st_size > 1000
    rows = data["checkpoints"][0]["by_ratio"]
    assert [r["ratio"] for r in rows] == [0.0, 0.75] and rows[0]["pasted"] is None
    for name in ("ssim", "fsim", "psnr", "mse"):
        assert name in rows[1]["decoded"] and name in rows[1]["pasted"]
    assert 0 < rows[1]["pasted"]["mse"] < rows[1]["decoded"]["mse"] + 1e-9  # visible patches are exact
    assert "reconstruct_metrics.json" in printed
    assert len(printed.splitlines()) == 4  # the two figures, the JSON file, one line per checkpoint
    assert f"ratio=0.75, decoded_ssim={rows[1]['decoded']['ssim']:.4g}" in printed


def test_attention_command(tiny_run, tmp_path, capsys):
    run_cli(["attention", "--checkpoint", str(tiny_run), str(tiny_run / "checkpoint-epoch0.pt"),
             "--output-dir", str(tmp_path), "--images", "10", "--grid-images", "2"], capsys)
    data, size = outputs(tmp_path, "attention")
    assert size > 1000 and len(data["checkpoints"]) == 2
    for result in data["checkpoints"]:
        assert 0 < result["cls_entropy_mean"] <= 1
        assert torch.tensor(result["cls_maps"]).shape == (2, 4, 4)
        torch.testing.assert_close(torch.tensor(result["token_maps"]).sum(dim=(1, 2)), torch.ones(2))


def test_tsne_command(tiny_run, tmp_path, capsys):
    run_cli(["tsne", "--checkpoint", str(tiny_run), "--output-dir", str(tmp_path), "--images", "5"], capsys)
    data, size = outputs(tmp_path, "tsne")
    assert size > 1000 and len(data["labels"]) == 50 and len(data["classes"]) == 10
    assert torch.tensor(data["checkpoints"][0]["points"]).shape == (50, 2)
    assert -1 <= data["checkpoints"][0]["silhouette_features_cosine"] <= 1


def test_mask_geometry_command(tiny_run, tmp_path, capsys):
    run_cli(["mask-geometry", "--checkpoint", str(tiny_run), "--output-dir", str(tmp_path), "--images", "40",
             "--ratios", "0", "0.5", "0.75", "--repeats", "2"], capsys)
    data, size = outputs(tmp_path, "mask_geometry")
    assert size > 1000 and data["patch"] == 4 and data["images"] == 40
    for pairing in ("own", "shared"):
        rows = data["by_ratio"][pairing]
        assert [r["ratio"] for r in rows] == [0.0, 0.5, 0.75]
        assert data["sweet_spot"][pairing] == min(rows, key=lambda r: r["relative"])["ratio"]
        assert rows[2]["all"] < rows[0]["all"]  # hiding patches brings views together


def test_lipschitz_command_follows_the_kept_checkpoints(tiny_run, tmp_path, capsys):
    run_cli(["lipschitz", "--checkpoint", str(tiny_run), "--output-dir", str(tmp_path), "--images", "16"], capsys)
    data, size = outputs(tmp_path, "lipschitz")
    assert size > 1000 and [c["step"] for c in data["checkpoints"]] == [0, 4, 8]
    for c in data["checkpoints"]:
        assert 0 < c["median"] <= c["max"] and c["mask_ratio"] == 0.75


def test_curves_command_and_mi_terms(tiny_run, tmp_path, capsys):
    mi_run = tmp_path / "mimae-run"
    mi_run.mkdir()
    first = {"loss": 1.2, "rec": 1.2, "max_mi": 3.0, "min_mi": 0.0, "club": 0.0, "approx": 5.0, "gate": 0.0,
             "gate_step": -1.0, "lr": 1e-3, "step": 10, "epoch": 0.5}
    lines = [{**first, "rec": 9.0}, first,  # step 10 logged twice (before and after a resume): drawn once, the last
             {"loss": 2.0, "rec": 0.45, "max_mi": 2.0, "min_mi": 0.1, "club": 0.1, "approx": 4.0, "gate": 0.5,
              "gate_step": 17.0, "lr": 1e-3, "step": 20, "epoch": 1.0},
             {"step": 20, "epoch": 1.0, "knn_final": 40.0, "knn": 40.0}]
    (mi_run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (mi_run / "config.yaml").write_text(yaml.safe_dump({"mimae": {"eps_l": 0.6}}))
    run_cli(["curves", "--run", str(tiny_run), str(mi_run), "--output-dir", str(tmp_path)], capsys)
    data, size = outputs(tmp_path, "curves")
    assert size > 1000
    assert data["curves"] == ["rec", "loss", "max_mi", "min_mi", "approx", "lr", "knn"]
    assert [r["eps_l"] for r in data["runs"]] == [None, 0.6]  # the eps_l line only for the run with a gate
    train, _ = read_metrics(mi_run)
    assert [(r["step"], r["rec"]) for r in train] == [(10, 1.2), (20, 0.45)]
    assert [r["gate_opened_at_step"] for r in data["runs"]] == [None, 17]  # the logged gate_step


def test_curve_keys_leave_out_a_total_equal_to_rec():
    runs = {"mae": [{"loss": 1.0, "rec": 1.0, "lr": 0.1, "step": 1, "images_per_s": 9.0}]}
    assert curve_keys(runs) == ["rec", "lr"]
    assert gate_opened_at(runs["mae"]) is None
    assert gate_opened_at([{"gate": 0.0, "step": 5}, {"gate": 1.0, "step": 10}]) == 10  # no gate_step logged


def test_result_files_name_checkpoints_by_absolute_paths(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tiny_run.parent)
    run_cli(["tsne", "--checkpoint", tiny_run.name, "--output-dir", str(tmp_path), "--images", "5"], capsys)
    data, _ = outputs(tmp_path, "tsne")
    assert data["checkpoints"][0]["checkpoint"] == str((tiny_run / "checkpoint.pt").resolve())


def test_linear_along_probes_every_kept_checkpoint(tiny_run, capsys):
    small = ["linear.epochs=1", "linear.train_limit=64", "linear.test_limit=32", "linear.batch_size=16"]
    assert main(["eval", "linear-along", "--checkpoint", str(tiny_run), *small]) == 0
    result = json.loads((tiny_run / "eval_linear-along.json").read_text())
    assert [p["epoch"] for p in result["along"]] == [0, 1, 2] and result["accuracy"] == result["along"][-1]["accuracy"]
    assert main(["eval", "linear", "--checkpoint", str(tiny_run / "checkpoint-epoch1.pt"), *small]) == 0
    one = json.loads((tiny_run / "eval_linear.json").read_text())
    assert one["accuracy"] == result["along"][1]["accuracy"]  # the same probe as on that checkpoint alone
    assert "| linear, epoch 2 |" in capsys.readouterr().out


def test_finetune_along_fine_tunes_kept_checkpoints_with_epoch_0_from_scratch(tiny_run, capsys):
    small = ["finetune.epochs=1", "finetune.train_limit=32", "finetune.test_limit=32", "finetune.batch_size=16"]

    def run(protocol, checkpoint, *more):
        assert main(["eval", protocol, "--checkpoint", str(checkpoint), *small, *more]) == 0
        return json.loads((tiny_run / f"eval_{protocol}.json").read_text())

    along = run("finetune-along", tiny_run, "along.finetune_epochs=0,2")
    assert [(p["epoch"], p["init"]) for p in along["along"]] == [(0, "scratch"), (2, "pretrained")]
    assert not (tiny_run / "finetune-along.partial.json").exists()
    scratch, tuned = run("finetune-scratch", tiny_run), run("finetune", tiny_run / "checkpoint-epoch2.pt")
    # epoch 0 is the run's initialization: its fine-tuning is the from-scratch baseline, step for step
    first, last = along["along"]
    assert (first["last_loss"], first["accuracy"]) == (scratch["last_loss"], scratch["accuracy"])
    assert (last["last_loss"], last["accuracy"]) == (tuned["last_loss"], tuned["accuracy"])
    # a killed evaluation continues: finished checkpoints of the same recipe are not fine-tuned again
    finished = {**along["along"][0], "accuracy": 123.0}
    (tiny_run / "finetune-along.partial.json").write_text(json.dumps({"finetune": along["finetune"],
                                                                      "points": [finished]}))
    assert run("finetune-along", tiny_run, "along.finetune_epochs=0,2")["along"][0]["accuracy"] == 123.0
    (tiny_run / "finetune-along.partial.json").write_text(json.dumps({"finetune": {**along["finetune"], "epochs": 9},
                                                                      "points": [finished]}))
    assert run("finetune-along", tiny_run, "along.finetune_epochs=0,2")["along"][0]["accuracy"] == scratch["accuracy"]
    assert main(["eval", "finetune-along", "--checkpoint", str(tiny_run), "along.finetune_epochs=0,5"]) == 2
    error = capsys.readouterr().err
    assert "along.finetune_epochs asks for epoch(s) [5] the run did not keep; it kept [0, 1, 2]" in error


def test_linear_along_without_kept_checkpoints_says_how_to_get_them(tmp_path, capsys):
    run = train_tiny(tmp_path / "plain")
    assert main(["eval", "linear-along", "--checkpoint", str(run)]) == 2
    assert "train.keep_checkpoints=true" in capsys.readouterr().err


def test_mask_geometry_takes_overrides_without_a_checkpoint(tmp_path, capsys):
    run_cli(["mask-geometry", "--output-dir", str(tmp_path), "--images", "20", "--ratios", "0", "0.5",
             "--repeats", "1", "data.image_size=16", "model.patch_size=8"], capsys)
    data, _ = outputs(tmp_path, "mask_geometry")
    assert data["patch"] == 8 and data["unit"] == 8
    assert main(["analyze", "mask-geometry", "--output-dir", str(tmp_path), "--checkpoint", str(tmp_path),
                 "data.image_size=16"]) == 2
    assert "not both" in capsys.readouterr().err
