"""mask-mi: its estimators against closed forms, its retrieval at the extremes, the command on real checkpoints."""

import json
import math

import pytest
import torch

from mimae.analysis.mask_mi import (
    Fitting,
    club_estimate,
    cosine_geometry,
    fit_critic,
    fit_q,
    infonce_bound,
    infonce_ceiling,
    retrieval_chance,
    view_retrieval,
)
from mimae.cli import main
from tests.conftest import train_tiny


def correlated_views(images: int, dim: int, rho: float, seed: int = 0) -> torch.Tensor:
    """(images, 2, dim): two views per image, each dimension a standard Gaussian pair with correlation rho."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(images, dim, generator=generator)
    b = rho * a + math.sqrt(1 - rho ** 2) * torch.randn(images, dim, generator=generator)
    return torch.stack([a, b], dim=1)


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_the_held_out_infonce_bound_stays_below_the_true_mi_and_close_to_it(rho):
    z = correlated_views(4000, 4, rho)
    true_mi = -4 / 2 * math.log(1 - rho ** 2)  # 0.58 and 1.35 nats
    critic = fit_critic(z[:2000], Fitting(steps=300))
    bound = infonce_bound(critic, z[2000:], 256)
    assert 0.8 * true_mi < bound < true_mi + 0.05
    assert bound < infonce_ceiling(256, 2)


def test_independent_views_are_not_credited_with_shared_information():
    z = torch.stack([torch.randn(4000, 4), torch.randn(4000, 4)], dim=1)
    critic = fit_critic(z[:2000], Fitting(steps=300))
    assert infonce_bound(critic, z[2000:], 256) < 0.05  # below 0 where the critic fitted the first half's noise


def test_club_with_a_fitted_q_matches_its_closed_form_and_bounds_the_true_mi(sigma=1.0):
    # z = x + sigma * noise, x ~ N(0, I_d): I(x; z) = d/2 log(1 + 1/sigma^2); CLUB with the true q is d / sigma^2
    generator = torch.Generator().manual_seed(0)
    d = 4
    x = torch.randn(4000, d, generator=generator)
    z = x + sigma * torch.randn(4000, d, generator=generator)
    q = fit_q(x[:2000], z[:2000], Fitting(steps=1000))
    estimate = club_estimate(q, x[2000:], z[2000:], 512)["club"]
    assert estimate == pytest.approx(d / sigma ** 2, rel=0.2)
    assert estimate > d / 2 * math.log(1 + 1 / sigma ** 2)


def test_identical_views_are_always_retrieved_and_noise_at_chance():
    same = torch.nn.functional.normalize(torch.randn(300, 1, 32), dim=-1).expand(300, 4, 32)
    assert view_retrieval(same) == 100.0
    noise = torch.nn.functional.normalize(torch.randn(300, 4, 32), dim=-1)
    chance = retrieval_chance(300, 4)  # 3 of 1199 other views: 0.25%
    assert chance == pytest.approx(100 * 3 / 1199)
    assert view_retrieval(noise) < 4 * chance


def test_cosine_geometry_separates_siblings_from_other_images():
    base = torch.randn(50, 1, 16)
    z = torch.nn.functional.normalize(base + 0.1 * torch.randn(50, 3, 16), dim=-1)
    geometry = cosine_geometry(z)
    assert geometry["cosine_siblings"] > 0.9 and abs(geometry["cosine_others"]) < 0.2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("mask-mi") / "run", data__test_limit=64, train__keep_checkpoints=True)


def test_the_command_measures_each_checkpoint_on_the_same_views(tiny_run, tmp_path, capsys):
    args = ["analyze", "mask-mi", "--checkpoint", str(tiny_run / "checkpoint-epoch0.pt"), str(tiny_run),
            "--output-dir", str(tmp_path), "--images", "64", "--fit-steps", "5", "--with-init"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "mask_mi.json").read_text())
    assert (tmp_path / "mask_mi.png").stat().st_size > 1000
    rows = data["checkpoints"]
    assert data["images"] == 64 and data["views"] == 4 and [r["init"] for r in rows] == [False, True, False, True]
    assert data["seconds"] > 0  # what a plan reads as the measurement's pace
    for row in rows:
        assert row["retrieval_chance"] == pytest.approx(100 * 3 / 127)  # 32 held-out images x 4 views
        assert row["infonce"] <= row["infonce_ceiling"]
        assert -1 <= row["cosine_others"] <= row["cosine_siblings"] + 1 and math.isfinite(row["club"])
    numbers = [{k: v for k, v in row.items() if k not in ("checkpoint", "label", "init", "step")} for row in rows]
    assert numbers[0] == numbers[1] == numbers[3]  # the run's initialization is its epoch-0 checkpoint
    assert numbers[2] != numbers[0]
    assert "infonce=" in printed and "mask_mi.png" in printed
    assert main(args) == 0  # the same masks and fits: the same numbers
    assert json.loads((tmp_path / "mask_mi.json").read_text())["checkpoints"] == rows


def test_bad_options_are_one_line(tmp_path, capsys):
    assert main(["analyze", "mask-mi", "--checkpoint", str(tmp_path), "--output-dir", str(tmp_path),
                 "--views", "1"]) == 2
    assert "--views >= 2" in capsys.readouterr().err


def test_the_run_report_shows_mask_mi_beside_the_initialization(tiny_run):
    from mimae.report.measures import MASK_MI_FILE
    from mimae.report.run import write_run_report
    assert main(["analyze", "mask-mi", "--checkpoint", str(tiny_run), "--output-dir",
                 str(tiny_run / MASK_MI_FILE.split("/")[0]), "--images", "32", "--fit-steps", "2", "--with-init"]) == 0
    text = write_run_report(tiny_run)["markdown"].read_text()
    section = text.split("## What masked views share (mask-mi)")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| this run") or line.startswith("| init")]
    assert len(rows) == 2 and "mimae analyze mask-mi --checkpoint" in text
