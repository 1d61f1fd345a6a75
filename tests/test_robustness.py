import pytest
import torch

from mimae.config import ConfigError
from mimae.data.sources import TensorImages
from mimae.eval.robustness import (
    error_rate,
    mean_corruption_error,
    parse_names,
    parse_severities,
    relative_mean_corruption_error,
)

ERRORS = {"fog": {"1": 10.0, "2": 20.0}, "snow": {"1": 30.0, "2": 50.0}}
BASE = {"fog": {"1": 20.0, "2": 20.0}, "snow": {"1": 40.0, "2": 40.0}}


def test_mce_of_hand_made_tables_equals_the_formula():
    out = mean_corruption_error(ERRORS, BASE)
    assert out["ce"] == pytest.approx({"fog": 100 * 30 / 40, "snow": 100 * 80 / 80})
    assert out["mce"] == pytest.approx((75.0 + 100.0) / 2)
    assert mean_corruption_error(BASE, BASE)["mce"] == pytest.approx(100.0)


def test_relative_mce_of_hand_made_tables_equals_the_formula():
    out = relative_mean_corruption_error(ERRORS, 5.0, BASE, 10.0)
    fog, snow = 100 * (5 + 15) / (10 + 10), 100 * (25 + 45) / (30 + 30)
    assert out["relative_ce"] == pytest.approx({"fog": fog, "snow": snow})
    assert out["relative_mce"] == pytest.approx((fog + snow) / 2)


def test_baseline_must_cover_every_cell():
    with pytest.raises(ValueError, match="snow at severities"):
        mean_corruption_error(ERRORS, {"fog": BASE["fog"], "snow": {"1": 40.0}})


def test_error_rate_counts_wrong_predictions():
    images = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    labels = torch.tensor([0] * 7 + [1] * 3)
    data = TensorImages(images, labels)

    def always_zero(x):
        return torch.tensor([[1.0, 0.0]]).expand(len(x), 2)

    assert error_rate(always_zero, data, 4) == pytest.approx(30.0)
    assert error_rate(always_zero, data, 4, "gaussian_noise", 5) == pytest.approx(30.0)


def test_bad_names_and_severities_name_the_key():
    assert len(parse_names("all")) == 15 and parse_severities("1, 3") == [1, 3]
    with pytest.raises(ConfigError, match="robustness.corruptions"):
        parse_names("fog,rain")
    with pytest.raises(ConfigError, match="robustness.severities"):
        parse_severities("0,6")
