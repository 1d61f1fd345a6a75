"""The budget curve's choice of the cpu scale, on constructed rows: chosen only on 3 seeds or more, provisional on
fewer, said plainly when no budget beats the pixels, and then chosen by fine-tuning against from scratch."""

import pytest

from mimae.report.budget_curve import chosen_budget, paired_to_baseline


def rows(per_epoch: dict[int, list[float]], pixels: float = 80.0,
         finetune: dict[int, list[float]] | None = None) -> list[dict]:
    """Kept epochs -> the encoder's accuracy per seed under every fair protocol, pixels constant; ``finetune``:
    kept epochs -> fine-tuned accuracy per seed, epoch 0's the from-scratch baseline."""
    finetune = finetune or {}
    return [{"epoch": epoch, "samples": 1000 * epoch,
             **{name: paired_to_baseline(values, [pixels] * len(values))
                for name in ("knn", "knn_full", "linear_best")},
             **({"finetune": paired_to_baseline(finetune[epoch], finetune[0])} if epoch in finetune else {})}
            for epoch, values in per_epoch.items()]


def test_the_paired_statistic_against_a_hand_computation():
    m = paired_to_baseline([70.0, 72.0, 77.0], [69.0, 70.0, 72.0])  # d_k = 1, 2, 5: mean 8/3, sd sqrt(13/3)
    assert m["d"] == pytest.approx(8 / 3) and m["se"] == pytest.approx((13 / 3) ** 0.5 / 3 ** 0.5)
    assert m["mean"] == pytest.approx(73.0) and m["baseline"] == pytest.approx(211 / 3)
    assert m["beats_baseline"] is (8 / 3 > 2 * (13 / 9) ** 0.5)
    t = (8 / 3) / (13 / 9) ** 0.5  # Student's t with 2 degrees of freedom: P(T > t) = 1/2 - t / (2 sqrt(t^2 + 2))
    assert m["p"] == pytest.approx(0.5 - t / (2 * (t * t + 2) ** 0.5))


def test_three_seeds_choose_the_first_epoch_beyond_two_paired_se():
    text = chosen_budget(rows({0: [60.0, 61.0, 62.0], 4: [80.5, 79.0, 81.0], 8: [81.0, 81.2, 81.1]}))
    assert text.startswith("**The cpu scale: 8 MAE epochs (8,000 (image, mask) samples)**") and "n = 3" in text


def test_fewer_seeds_are_provisional():
    two = chosen_budget(rows({0: [60.0, 61.0], 8: [81.0, 81.2]}))
    assert two.startswith("Provisional (n = 2 seeds; a budget is chosen on 3). Where MAE first beats its baseline")
    assert "from 8 epochs (+1.10 ± 0.10)" in two
    one = chosen_budget(rows({0: [60.0], 8: [80.5]}))
    assert one.startswith("Provisional (n = 1 seed;") and "first scores above its baseline (the raw pixels;" in one
    assert "(+0.50)" in one
    never = chosen_budget(rows({8: [79.0, 79.4]}))
    assert "kNN, bank slice at no kept budget (-0.80 ± 0.20 at 8 epochs)" in never


def test_no_budget_beating_the_pixels_is_said():
    text = chosen_budget(rows({0: [60.0, 61.0, 62.0], 8: [79.0, 80.5, 79.5]}))
    assert text.startswith("At no kept budget does MAE beat the raw pixels")


def test_without_a_win_over_the_pixels_fine_tuning_against_scratch_chooses():
    knn = {0: [60.0, 61.0, 62.0], 2: [75.0, 76.0, 77.0], 4: [79.0, 80.5, 79.5], 16: [79.0, 80.0, 80.5]}
    tuned = chosen_budget(rows(knn, finetune={0: [70.0, 71.0, 72.0], 2: [70.5, 70.0, 73.0],
                                              4: [74.0, 75.5, 75.0], 16: [80.0, 81.0, 80.0]}))
    assert tuned.startswith("At no kept budget does MAE beat the raw pixels")
    assert "**The cpu scale: 4 MAE epochs (4,000 (image, mask) samples), read by fine-tuning**" in tuned
    assert "(+3.83 ± 0.44, n = 3)" in tuned
    never = chosen_budget(rows(knn, finetune={0: [70.0, 71.0, 72.0], 4: [70.0, 72.0, 71.5], 16: [69.0, 72.0, 73.0]}))
    assert "nor does MAE fine-tuned beat" in never and "(+0.33 ± 0.67 at 16 epochs)" in never
    assert "once it is measured on 3 seeds" in chosen_budget(rows(knn))
    provisional = chosen_budget(rows({0: [60.0, 61.0], 4: [79.0, 79.5]}, finetune={0: [70.0, 71.0], 4: [75.0, 75.5]}))
    assert "fine-tune from 4 epochs (+4.75 ± 0.25)" in provisional
