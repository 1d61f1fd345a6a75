"""rank: the effective rank and the spread of latents against closed forms, the command on real checkpoints and the
run page that shows it."""

import json
import math

import pytest
import torch

from mimae.analysis.latent_rank import effective_rank, latent_rank
from mimae.cli import main
from tests.conftest import train_tiny


def latents_with_spectrum(singular_values: list[float], dim: int = 16, rows: int = 64) -> torch.Tensor:
    """(rows, dim) latents, centered, whose singular values are exactly ``singular_values`` (then zeros), plus a
    common offset that centering removes."""
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=generator, dtype=torch.float64))
    u = u[:, 1:len(singular_values) + 1]  # orthonormal columns orthogonal to u[:, 0] ...
    u = u - u.mean(dim=0)  # ... made centered, then orthonormalized again (centering keeps them independent)
    u, _ = torch.linalg.qr(u)
    v, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    z = u @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ v[:, :len(singular_values)].T
    return z + 5.0 * torch.randn(dim, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_k_equal_directions_have_an_effective_rank_of_k(k):
    assert effective_rank(latents_with_spectrum([2.0] * k)) == pytest.approx(k, rel=1e-6)


def test_the_effective_rank_is_the_exponential_of_the_spectrum_entropy():
    values = [4.0, 2.0, 1.0, 1.0]
    p = [v / sum(values) for v in values]
    expected = math.exp(-sum(q * math.log(q) for q in p))  # 3.36
    assert effective_rank(latents_with_spectrum(values)) == pytest.approx(expected, rel=1e-6)
    assert effective_rank(latents_with_spectrum([1.0, 1e-3])) == pytest.approx(1.0, abs=0.02)  # one direction


def test_collapsed_latents_have_no_spread_and_even_ones_about_one_over_root_d():
    point = torch.randn(32).expand(500, 32)
    collapsed = latent_rank(point)
    assert collapsed["unit_std"] == pytest.approx(0.0, abs=1e-6) and collapsed["cosine_others"] == pytest.approx(1.0)
    even = latent_rank(torch.randn(20000, 32, generator=torch.Generator().manual_seed(1)))
    assert even["unit_std"] == pytest.approx(even["unit_std_even"], rel=0.02)
    assert even["unit_std_even"] == pytest.approx(32 ** -0.5)
    assert abs(even["cosine_others"]) < 0.01 and even["effective_rank"] > 30 and even["dims"] == 32


def test_the_mean_cosine_between_different_rows_matches_the_pairwise_mean():
    z = torch.randn(40, 8, generator=torch.Generator().manual_seed(2)) + 1.0
    unit = torch.nn.functional.normalize(z, dim=1)
    gram = unit @ unit.T
    pairwise = float(gram[~torch.eye(40, dtype=torch.bool)].mean())
    assert latent_rank(z)["cosine_others"] == pytest.approx(pairwise, rel=1e-5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("rank") / "run", data__test_limit=64, train__keep_checkpoints=True)


def test_the_command_measures_each_checkpoint_beside_its_initialization(tiny_run, tmp_path, capsys):
    args = ["analyze", "rank", "--checkpoint", str(tiny_run / "checkpoint-epoch0.pt"), str(tiny_run),
            "--output-dir", str(tmp_path), "--images", "64", "--with-init"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "rank.json").read_text())
    assert (tmp_path / "rank.png").stat().st_size > 1000 and data["images"] == 64 and data["seconds"] > 0
    rows = data["checkpoints"]
    assert [r["init"] for r in rows] == [False, True, False, True]
    numbers = [{k: v for k, v in row.items() if k not in ("checkpoint", "label", "init", "step")} for row in rows]
    assert numbers[0] == numbers[1] == numbers[3]  # the run's initialization is its epoch-0 checkpoint
    assert numbers[2] != numbers[0]
    assert all(1 <= n["effective_rank"] <= min(63, n["dims"]) for n in numbers)
    assert "effective_rank=" in printed and "rank.png" in printed


def test_one_image_is_refused_in_one_line(tmp_path, capsys):
    assert main(["analyze", "rank", "--checkpoint", str(tmp_path), "--output-dir", str(tmp_path),
                 "--images", "1"]) == 2
    assert "--images >= 2, got 1" in capsys.readouterr().err


def test_the_run_report_shows_the_rank_beside_the_initialization(tiny_run):
    from mimae.report.measures import RANK_FILE, read_measures
    from mimae.report.run import write_run_report
    assert main(["analyze", "rank", "--checkpoint", str(tiny_run), "--output-dir",
                 str(tiny_run / RANK_FILE.split("/")[0]), "--images", "32", "--with-init"]) == 0
    text = write_run_report(tiny_run)["markdown"].read_text()
    section = text.split("## How many directions the latents use (rank)")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| this run") or line.startswith("| init")]
    assert len(rows) == 2 and "mimae analyze rank --checkpoint" in text
    measures, _ = read_measures(tiny_run, {})
    stored = json.loads((tiny_run / RANK_FILE).read_text())["checkpoints"]
    assert measures["rank_effective"] == stored[0]["effective_rank"]
    assert measures["rank_unit_std (init)"] == stored[1]["unit_std"]
