import json

import pytest
import torch

from mimae.cli import main
from tests.conftest import train_tiny

SMALL = ["data.train_limit=160", "data.test_limit=64", "linear.epochs=3", "linear.train_limit=128",
         "linear.test_limit=64", "linear.batch_size=32", "finetune.batch_size=16", "finetune.test_limit=32",
         "finetune.epochs=1", "lowshot.epochs=1", "lowshot.fraction=0.1", "robustness.test_limit=16",
         "robustness.corruptions=fog,pixelate", "robustness.severities=1,5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("run"), data__train_limit=160, data__test_limit=64,
                      eval__knn_bank_limit=64)


def evaluate(run, protocol, *extra):
    assert main(["eval", protocol, "--checkpoint", str(run), "--device", "cpu", *SMALL, *extra]) == 0
    return json.loads((run / f"eval_{protocol}.json").read_text())


def test_all_prints_one_table_of_knn_linear_and_lowshot(run, capsys):
    result = evaluate(run, "all")
    out = capsys.readouterr().out
    assert "| knn | 128 | 64 |" in out and "| linear | 128 | 64 |" in out and "| lowshot | 18 | 32 |" in out
    assert result["linear"]["features"].startswith("cached") and result["linear"]["epochs"] == 3
    assert result["lowshot"]["fraction"] == 0.1 and (run / "lowshot_subset.json").is_file()
    assert all(0 <= result[p]["accuracy"] <= 100 for p in ("knn", "linear", "lowshot"))


def test_linear_reextract_protocol_is_stated_in_its_result(run):
    result = evaluate(run, "linear", "linear.reextract=true")
    assert result["protocol"] == "linear" and result["features"].startswith("reextracted")
    assert result["train_images"] == 128 and result["optimizer"] == "lars"


def test_robustness_against_a_baseline_gives_mce(run, tmp_path):
    base = evaluate(run, "robustness")
    assert set(base["errors"]) == {"fog", "pixelate"} and set(base["errors"]["fog"]) == {"1", "5"}
    assert "mce" not in base
    (tmp_path / "base.json").write_text(json.dumps(base))
    again = evaluate(run, "robustness", f"robustness.baseline={tmp_path / 'base.json'}")
    assert again["mce"] == pytest.approx(100.0)  # same model, same seeded corruptions


def test_bad_setting_fails_with_its_key(run, capsys):
    assert main(["eval", "robustness", "--checkpoint", str(run), "robustness.corruptions=rain"]) == 2
    assert "robustness.corruptions" in capsys.readouterr().err


def test_robustness_of_the_finetuned_classifier(run):
    result = evaluate(run, "robustness", "robustness.classifier=finetune", "robustness.corruptions=contrast",
                      "robustness.severities=5")
    assert result["classifier"] == "finetune" and result["classifier_result"]["protocol"] == "finetune"
    assert 0 <= result["errors"]["contrast"]["5"] <= 100 and 0 <= result["clean_error"] <= 100


def test_the_linear_probe_has_the_raw_pixels_beside_it_under_the_same_protocol(run, capsys):
    """The pixel probe: the first linear.train_limit / test_limit images, standardized and flattened, through the
    same probe (its epochs, lr, batch and seed)."""
    from mimae.config import load_config, parse_overrides
    from mimae.data import first, normalize, train_test_sets
    from mimae.eval.linear import linear_probe_features
    result = evaluate(run, "linear")
    pixels = result["pixels"]
    assert (pixels["feature"], pixels["train_images"], pixels["test_images"]) == ("pixels", 128, 64)
    assert "| linear on the raw pixels (baseline) | 128 | 64 |" in capsys.readouterr().out
    cfg = load_config(run / "config.yaml", parse_overrides(SMALL))
    train, test, info = train_test_sets(cfg.data)
    def flat(dataset, n):
        images = [first(dataset, n)[i] for i in range(n)]
        return (normalize(torch.stack([x for x, _ in images]), info).flatten(1),
                torch.tensor([int(y) for _, y in images]))
    _, accuracy = linear_probe_features(*flat(train, 128), *flat(test, 64), cfg.linear, info.num_classes)
    assert pixels["accuracy"] == accuracy
    # both also at the lr each chose on the last 25 of the 128 training images; a comparison reads them
    from mimae.report.measures import read_measures
    for chosen in (result["lr_chosen"], pixels["lr_chosen"]):
        assert chosen["validation_images"] == 25 and chosen["base_lr"] in chosen["lrs"] == [0.1, 0.3, 1, 3, 6.4]
    measures, _ = read_measures(run, json.loads((run / "results.json").read_text()))
    assert (measures["linear_lr_chosen"], measures["linear_lr_chosen (pixels)"]) == (
        result["lr_chosen"]["accuracy"], pixels["lr_chosen"]["accuracy"])


def test_the_from_scratch_encoder_is_the_untrained_initialization_of_the_same_seed(tmp_path):
    """finetune-scratch fine-tunes what a pretraining run at that seed starts from (its checkpoint-epoch0.pt),
    for any method: the encoder is built first, from the seed."""
    from mimae.objectives import build_objective
    from mimae.runs import read
    for method, seed in (("mae", 0), ("mimae", 3)):
        run = train_tiny(tmp_path / method, method=method, train__seed=seed, train__keep_checkpoints=True)
        initial = read(run / "checkpoint-epoch0.pt")
        scratch = build_objective(initial.cfg, initial.in_chans, initial.cfg.train.seed).encoder.state_dict()
        assert scratch.keys() == initial.encoder_state.keys()
        assert all(torch.equal(scratch[k], initial.encoder_state[k]) for k in scratch)
        trained = read(run).encoder_state
        assert not all(torch.equal(scratch[k], trained[k]) for k in scratch)  # the run itself moved on


def test_finetuning_from_scratch_is_the_fine_tune_baseline_on_a_comparison(run, tmp_path):
    from mimae.report.comparison import write_comparison
    scratch = evaluate(run, "finetune-scratch")
    assert scratch["init"] == "scratch" and 0 <= scratch["accuracy"] <= 100
    evaluate(run, "finetune")
    text = (write_comparison([run], tmp_path / "cmp", "scratch")["markdown"]).read_text()
    assert "| fine-tune (%) |" in text and "fine-tune, from scratch" not in text.splitlines()[4]
    baseline = next(line for line in text.splitlines() if line.startswith("| baseline, same protocol"))
    assert f"{scratch['accuracy']:.2f}" in baseline
