"""``mimae bench``: every benchmark runs at smoke size and writes its numbers; the side-by-side arithmetic."""

import json

import pytest
import torch

from mimae.bench.rounds import alternate, ratio
from mimae.bench.step import StepBench
from mimae.cli import main
from tests.conftest import tiny_config


def test_every_benchmark_runs_at_smoke_size_and_writes_its_json(tmp_path, capsys):
    pytest.importorskip("lightly")
    assert main(["bench", "all", "--smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MFU" in out and "mimae / lightly" in out and "MI-MAE time per sample" in out
    results = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(results) == {f"{n}_smoke" for n in ("step", "lightly", "methods", "knn", "data")}
    for record in results.values():
        assert record["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    step = results["step_smoke"]["result"]
    assert step["samples_per_s"] > 0 and 0 < step["mfu"] < 2 and step["gflop_per_sample"] > 0
    assert set(step["split_ms"]) == {"data", "forward", "backward", "optimizer"}
    assert results["lightly_smoke"]["result"]["ratio"] > 0
    assert results["methods_smoke"]["result"]["views"] == 4
    assert 0 < results["knn_smoke"]["result"]["knn_share_of_job"] < 1
    cases = results["data_smoke"]["result"]["cases"]
    assert [c["dataset"] for c in cases] == ["fashion-mnist", "imagefolder"]
    assert all(c["images_per_s"] > 0 and c["train_images_per_s"] > 0 for c in cases)


class Fixed:
    def __init__(self, seconds_per_step: float, samples: int):
        self.seconds_per_step, self.samples_per_step = seconds_per_step, samples

    def run(self, steps: int) -> float:
        return steps * self.seconds_per_step


def test_alternating_rounds_and_their_ratio():
    rates = alternate({"a": Fixed(0.5, 10), "b": Fixed(0.25, 10)}, steps=3, rounds=4)
    assert rates == {"a": [20.0] * 4, "b": [40.0] * 4}
    result = ratio(rates, "a", "b")
    assert result["ratio"] == 0.5 and result["rounds"] == 4 and result["b_samples_per_s"] == 40.0


def test_the_flop_count_follows_the_batch_and_the_visible_patches():
    def flops(batch, ratio_):
        cfg = tiny_config(mask__ratio=ratio_)
        return StepBench(cfg, torch.device("cpu"), batch, None).flops()

    assert flops(8, 0.75) == 2 * flops(4, 0.75)
    assert flops(4, 0.5) > flops(4, 0.75)  # the encoder sees more patches
