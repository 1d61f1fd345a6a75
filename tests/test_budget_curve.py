"""The budget curve's choice of the cpu scale, on constructed rows: chosen only on 3 seeds or more, provisional on
fewer, and said plainly when no budget beats the pixels."""

from mimae.report.budget_curve import chosen_budget, paired_to_pixels


def rows(per_epoch: dict[int, list[float]], pixels: float = 80.0) -> list[dict]:
    """Kept epochs -> the encoder's accuracy per seed under every fair protocol, pixels constant."""
    return [{"epoch": epoch, "samples": 1000 * epoch,
             **{name: paired_to_pixels(values, [pixels] * len(values)) for name in ("knn", "knn_full", "linear_best")}}
            for epoch, values in per_epoch.items()]


def test_three_seeds_choose_the_first_epoch_beyond_two_paired_se():
    text = chosen_budget(rows({0: [60.0, 61.0, 62.0], 4: [80.5, 79.0, 81.0], 8: [81.0, 81.2, 81.1]}))
    assert text.startswith("**The cpu scale: 8 MAE epochs (8,000 (image, mask) samples)**") and "n = 3" in text


def test_fewer_seeds_are_provisional():
    two = chosen_budget(rows({0: [60.0, 61.0], 8: [81.0, 81.2]}))
    assert two.startswith("Provisional (n = 2 seeds; a budget is chosen on 3). Where MAE first beats")
    assert "from 8 epochs (+1.10 ± 0.10)" in two
    one = chosen_budget(rows({0: [60.0], 8: [80.5]}))
    assert one.startswith("Provisional (n = 1 seed;") and "first scores above the raw pixels" in one
    assert "(+0.50)" in one
    never = chosen_budget(rows({8: [79.0, 79.4]}))
    assert "kNN, bank slice at no kept budget (-0.80 ± 0.20 at 8 epochs)" in never


def test_no_budget_beating_the_pixels_is_said():
    text = chosen_budget(rows({0: [60.0, 61.0, 62.0], 8: [79.0, 80.5, 79.5]}))
    assert text.startswith("At no kept budget does MAE beat the raw pixels")
