"""Per-level R^2 probes, the ``mimae hierarchy`` commands and a tiny end-to-end learned run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mimae.cli import main
from mimae.hierarchy.graph import quadtree
from mimae.hierarchy.probe import fit_r2, level_r2, nodes_by_level, patch_weights


def planted(n: int = 2000, features: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    linear = x @ rng.normal(size=(features, 3)) + 0.01 * rng.normal(size=(n, 3))
    independent = rng.normal(size=(n, 3))
    return x, linear, independent


@pytest.mark.parametrize("kind, floor", [("linear", 0.999), ("kernel", 0.9)])
def test_probe_recovers_a_planted_linear_latent_and_not_an_independent_one(kind, floor):
    x, linear, independent = planted()
    assert fit_r2(x[:1000], linear[:1000], x[1000:], linear[1000:], kind) > floor
    assert abs(fit_r2(x[:1000], independent[:1000], x[1000:], independent[1000:], "linear")) < 0.02


def test_level_r2_reads_each_level_from_the_tokens_over_its_region():
    """Tokens that carry the lowest latents (linearly mixed) at their patches: level 1 is read perfectly, a token
    map of pure noise reads nothing."""
    graph = quadtree(image_size=8, depth=2, root_dim=2, dim_growth=1, channels=3)  # 2x2 level-1 nodes of 4x4 px
    n, patch = 600, 2
    generator = torch.Generator().manual_seed(0)
    latents = {node: torch.randn(n, graph.nodes[node]["dim"], generator=generator) for node in graph
               if graph.nodes[node]["kind"] == "latent"}
    mixing = torch.randn(3, 5, generator=generator)
    tokens = torch.zeros(n, 16, 5)
    for r in range(4):
        for c in range(4):
            tokens[:, r * 4 + c] = latents[f"z1_{r // 2}_{c // 2}"] @ mixing
    assert level_r2(tokens, latents, graph, patch)[1] > 0.999
    noise = torch.randn(n, 16, 5, generator=generator)
    assert all(abs(r2) < 0.05 for r2 in level_r2(noise, latents, graph, patch).values())


def test_patch_weights_average_the_covered_patches():
    graph = quadtree(image_size=8, depth=2, root_dim=2, dim_growth=1)
    levels = nodes_by_level(graph)
    assert sorted(levels) == [1, 2] and len(levels[1]) == 4
    weights = patch_weights(graph, ["z1_0_1", "z0_0_0"], grid=4, patch=2)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2))
    assert weights[0].nonzero().flatten().tolist() == [2, 3, 6, 7] and (weights[1] == 1 / 16).all()


def test_cli_locate_theory_and_errors(tmp_path, capsys):
    assert main(["hierarchy", "locate", "--ratio", "0.5", "--unit", "16"]) == 0
    out = capsys.readouterr().out
    assert "c: 1 nodes, dimension 4, mean level 4.00" in out and "z0_0_0" in out
    assert main(["hierarchy", "theory", "--output", str(tmp_path), "--units", "4", "8", "--ratios", "0.25", "0.75",
                 "--masks", "2", "hierarchy.image_size=16", "hierarchy.depth=3"]) == 0
    result = json.loads((tmp_path / "theory.json").read_text())
    assert result["units"] == [4, 8] and len(result["mean_level"][0]) == 2
    assert (tmp_path / "theory.png").stat().st_size > 10_000
    assert main(["hierarchy", "locate", "--ratio", "0.5", "--unit", "3"]) == 2
    assert "does not tile" in capsys.readouterr().err


@pytest.mark.slow
def test_learned_end_to_end_on_a_tiny_model(tmp_path):
    from mimae.experiments.hierarchy_learned import run_learned
    from tests.conftest import TINY
    overrides = {**TINY, "hierarchy.image_size": 16, "hierarchy.depth": 3, "hierarchy.train_size": 96,
                 "hierarchy.test_size": 80, "train.epochs": 1, "eval.knn_bank_limit": 96}
    result = run_learned(tmp_path, ratios=(0.25, 0.75), unit=8, overrides=overrides, theory_masks=4)
    assert set(result["r2"]) == {"pixels", "random init", "0.25", "0.75"}
    assert result["levels"] == [1, 2, 3]
    assert all(-1.0 < r2 <= 1.0 for scores in result["r2"].values() for r2 in scores.values())
    assert (tmp_path / "learned.png").is_file() and "MAE ratio 0.75" in (tmp_path / "learned.md").read_text()


def test_learned_over_seeds_pairs_each_level_with_the_initialization_of_its_seed(tmp_path):
    """Over seeds: the per-seed runs share one dataset, every value is the mean over the seeds, and each level's
    learned R^2 minus the random initialization's is d +- se over the seeds, recomputed here by hand."""
    import statistics

    from mimae.experiments.paper003 import learned_page
    from tests.conftest import TINY
    args = ["hierarchy", "learned", "--output", str(tmp_path), "--ratios", "0.75", "--unit", "8", "--seeds", "0", "1",
            *(f"{k}={v}" for k, v in {**TINY, "hierarchy.image_size": 16, "hierarchy.depth": 3,
                                       "hierarchy.train_size": 96, "hierarchy.test_size": 80, "train.epochs": 1,
                                       "eval.knn_bank_limit": 96}.items())]
    assert main(args) == 0
    result = json.loads((tmp_path / "learned.json").read_text())
    seeds = [json.loads((tmp_path / f"seed-{s}" / "learned.json").read_text()) for s in (0, 1)]
    assert result["seeds"] == [0, 1] and not (tmp_path / "seed-1" / "data").exists()
    assert [run["pretrain_config"]["train"]["seed"] for run in seeds] == [0, 1]
    assert seeds[0]["r2"]["random init"] != seeds[1]["r2"]["random init"]  # each seed its own initialization
    for level in result["levels"]:
        key = str(level)
        gains = [run["r2"]["0.75"][key] - run["r2"]["random init"][key] for run in seeds]
        cell = result["against_init"]["0.75"][key]
        assert cell["d"] == pytest.approx(statistics.mean(gains))
        assert cell["se"] == pytest.approx(statistics.stdev(gains) / 2 ** 0.5) and cell["n"] == 2
        assert result["r2"]["0.75"][key] == pytest.approx(statistics.mean(run["r2"]["0.75"][key] for run in seeds))
    page = learned_page(result)
    assert "paired by seed" in page and "| 0.75 | " in page and "Seeds 0, 1 (each value the mean over them)" in page
    cell = result["against_init"]["0.75"]["1"]  # one degree of freedom: t is Cauchy, P(T > t) = 1/2 - atan(t)/pi
    assert f"p {0.5 - math.atan(cell['d'] / cell['se']) / math.pi:.3f})" in page and "2 se is p = 0.15 at n = 2" in page
    assert "level 1: d ± se (verdict, p)" in page
