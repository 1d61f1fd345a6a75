import json

import pytest

from mimae.cli import main

TINY_ARGS = ["model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.decoder_dim=32",
             "model.decoder_depth=1", "model.decoder_heads=2", "data.image_size=16", "data.train_limit=2000",
             "eval.knn_bank_limit=2000", "eval.knn_query_limit=500", "optim.batch_size=64",
             "optim.base_lr=2e-3", "train.precision=fp32", "model.patch_size=4"]


def test_pretrain_then_eval_knn_beats_chance(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--method", "mae", "--output-dir", str(run), "--epochs", "3", *TINY_ARGS]) == 0
    printed = capsys.readouterr().out
    assert "run folder:" in printed and "kNN accuracy (%): init " in printed and ", raw pixels " in printed
    assert f"report: {(run / 'report.html').resolve()}" in printed
    results = json.loads((run / "results.json").read_text())
    # 10 classes: chance is 10%; even 3 epochs on 2,000 images give far better features
    assert results["knn_final"] > 50.0 and results["knn_init"] > 20.0
    assert main(["eval", "knn", "--checkpoint", str(run)]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("accuracy: "))
    assert float(line.split()[1]) == pytest.approx(results["knn_final"], abs=0.006)
    # the pixel baseline of the same bank and queries, beside it and in the run's results
    assert f"| knn on the raw pixels (baseline) | 2000 | 500 | {results['knn_pixels']:.2f} |" in printed
    result = json.loads((run / "eval_knn.json").read_text())
    assert result["protocol"] == "knn" and result["pixels"]["accuracy"] == results["knn_pixels"]
    assert result["checkpoint"].startswith("/")  # absolute, whatever folder the command ran in


def test_bad_value_fails_before_training_and_names_the_key(tmp_path, capsys):
    assert main(["pretrain", "--output-dir", str(tmp_path / "x"), "mask.ratio=1.5"]) == 2
    err = capsys.readouterr().err
    assert "mask.ratio=1.5" in err and "maximum" in err
    assert not (tmp_path / "x").exists()


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "knn", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_options_and_overrides_in_any_order():
    from mimae.cli import parse
    args = parse(["pretrain", "--method", "mimae", "mimae.views=5", "--quick", "train.epochs=1", "--output-dir",
                  "runs/x", "optim.batch_size=8"])
    assert args.quick and args.method == "mimae" and args.output_dir == "runs/x"
    assert args.overrides == ["mimae.views=5", "train.epochs=1", "optim.batch_size=8"]
    args = parse(["eval", "knn", "eval.knn_k=5", "--checkpoint", "runs/x", "--full", "eval.knn_temperature=0.1"])
    assert args.full and args.overrides == ["eval.knn_k=5", "eval.knn_temperature=0.1"]


def test_an_override_after_an_option_of_many_values_is_an_override():
    from mimae.cli import parse
    args = parse(["hierarchy", "learned", "--output", "o", "--ratios", "0.1", "0.5", "train.epochs=1"])
    assert args.ratios == [0.1, 0.5] and args.overrides == ["train.epochs=1"]
    sweep = parse(["sweep", "--root", "r", "--grid", "optim.base_lr=1e-3,2e-3", "--seeds", "0", "1", "train.epochs=1"])
    assert sweep.grid == ["optim.base_lr=1e-3,2e-3"] and sweep.seeds == [0, 1] and sweep.overrides == ["train.epochs=1"]
