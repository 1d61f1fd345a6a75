"""InfoNCE and CLUB against closed forms on correlated Gaussians, and the matrix helpers against direct loops."""

import math

import pytest
import torch

from mimae.estimators import club, gaussian_log_prob, gaussian_log_prob_matrix, info_nce, info_nce_bound, view_positives

DIM = 2
RHOS = (0.3, 0.6, 0.8, 0.9)


def true_mi(rho: float, dim: int = DIM) -> float:
    """I(X; Y) for Y = rho X + sqrt(1 - rho^2) E, X, E ~ N(0, I_dim)."""
    return -0.5 * dim * math.log(1 - rho ** 2)


def club_closed_form(rho: float, dim: int = DIM) -> float:
    """CLUB with the true conditional q(y|x) = N(rho x, (1 - rho^2) I): dim * rho^2 / (1 - rho^2)."""
    return dim * rho ** 2 / (1 - rho ** 2)


def correlated(rho: float, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, DIM, generator=generator, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho ** 2) * torch.randn(n, DIM, generator=generator, dtype=torch.float64)
    return x, y


def infonce_estimate(rho: float, batch: int, batches: int = 20) -> float:
    """Mean InfoNCE bound with the optimal critic log p(y|x) over several batches."""
    g = torch.Generator().manual_seed(1)
    values = []
    for _ in range(batches):
        x, y = correlated(rho, batch, g)
        # the optimal critic: scores[i, j] = log p(y_j | x_i) / p(y_j) + const
        scores = -torch.cdist(rho * x, y).pow(2) / (2 * (1 - rho ** 2)) + y.pow(2).sum(dim=1) / 2
        loss = info_nce(scores, torch.eye(batch, dtype=torch.bool))
        values.append(float(info_nce_bound(loss, batch)))
    return sum(values) / len(values)


def fitted_gaussian_q(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A well-fitted q(y|x): least-squares linear mean and per-dimension residual variance. Returns (mu, logvar)."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    weights = torch.linalg.lstsq(design, y).solution
    mu = design @ weights
    logvar = (y - mu).pow(2).mean(dim=0).log().expand_as(mu)
    return mu, logvar


def test_infonce_below_log_batch_and_true_mi_and_rising():
    batch = 64
    estimates = [infonce_estimate(rho, batch) for rho in RHOS]
    for rho, est in zip(RHOS, estimates):
        assert est <= math.log(batch)
        assert est <= true_mi(rho) + 0.03, (rho, est, true_mi(rho))
    assert all(a < b for a, b in zip(estimates, estimates[1:])), estimates
    # at low MI the bound is tight, far from log(batch)
    assert estimates[0] == pytest.approx(true_mi(RHOS[0]), abs=0.05)


def test_infonce_saturates_at_log_batch():
    """With near-deterministic pairs the estimate approaches, and never exceeds, log(batch)."""
    batch = 16
    est = infonce_estimate(0.9999, batch, batches=5)
    assert math.log(batch) - 0.05 < est <= math.log(batch)


def test_club_with_fitted_q_upper_bounds_and_tracks_true_mi():
    g = torch.Generator().manual_seed(2)
    estimates = []
    for rho in RHOS:
        x, y = correlated(rho, 2000, g)
        mu, logvar = fitted_gaussian_q(x, y)
        est = float(club(gaussian_log_prob_matrix(y, mu, logvar)))
        estimates.append(est)
        assert est >= true_mi(rho) - 0.05, (rho, est, true_mi(rho))
        assert est == pytest.approx(club_closed_form(rho), rel=0.1, abs=0.05)
    assert all(a < b for a, b in zip(estimates, estimates[1:])), estimates


def test_club_is_zero_when_independent():
    g = torch.Generator().manual_seed(3)
    x, y = correlated(0.0, 2000, g)
    mu, logvar = fitted_gaussian_q(x, y)
    assert abs(float(club(gaussian_log_prob_matrix(y, mu, logvar)))) < 0.02


def test_club_batched_leading_dims_equal_per_group_mean():
    log_q = torch.randn(3, 4, 4, dtype=torch.float64)
    per_group = [float(club(log_q[i])) for i in range(3)]
    assert float(club(log_q)) == pytest.approx(sum(per_group) / 3)
    direct = sum(float(log_q[0, j, j] - log_q[0, j].mean()) for j in range(4)) / 4
    assert per_group[0] == pytest.approx(direct)


def test_gaussian_log_prob_matrix_equals_loop():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    mu = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    out = gaussian_log_prob_matrix(z, mu, logvar)
    assert out.shape == (2, 4, 5)
    for b in range(2):
        for j in range(4):
            for k in range(5):
                expected = torch.distributions.Normal(mu[b, j], (0.5 * logvar[b, j]).exp()).log_prob(z[b, k]).sum()
                assert float(out[b, j, k]) == pytest.approx(float(expected))
                assert float(gaussian_log_prob(z[b, k], mu[b, j], logvar[b, j])) == pytest.approx(float(expected))


def test_view_positives_pattern():
    positives, excluded = view_positives(2, 3)
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[:3, :3] = True
    expected[3:, 3:] = True
    expected.fill_diagonal_(False)
    assert torch.equal(positives, expected)
    assert torch.equal(excluded, torch.eye(6, dtype=torch.bool))


def test_losses_compute_in_float32_under_bf16_autocast():
    """The matrix products of the estimators and the joint-embedding losses ignore autocast: bf16 autocast gives
    the float32 values (autocast would otherwise run them in bf16: CLUB's log-prob matrix moved by ~2 nats)."""
    from mimae.objectives.mi_terms import MIMAEConfig, MutualInformationTerms
    from mimae.objectives.ssl_losses import barlow_twins_loss, nt_xent, uniformity_loss
    gen = torch.Generator().manual_seed(0)
    z, mu, logvar = (torch.randn(64, 128, generator=gen) for _ in range(3))
    a, b = torch.randn(32, 64, generator=gen), torch.randn(32, 64, generator=gen)
    positives, excluded = view_positives(16, 4)
    scores = z @ z.T / 10
    torch.manual_seed(0)
    mi = MutualInformationTerms(MIMAEConfig(lambda_min=1.0), 128, 128)
    losses = {
        "club": lambda: club(gaussian_log_prob_matrix(z, mu, logvar)),
        "info_nce": lambda: info_nce(scores, positives, excluded),
        "L_max": lambda: mi(z.reshape(16, 4, 128), mu.reshape(16, 4, 128))["max_mi"],
        "L_min": lambda: mi(z.reshape(16, 4, 128), mu.reshape(16, 4, 128))["min_mi"],
        "nt_xent": lambda: nt_xent(a, b, 0.2),
        "barlow": lambda: barlow_twins_loss(a, b, 0.005),
        "uniformity": lambda: uniformity_loss(a),
    }
    for name, loss in losses.items():
        reference = loss()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_autocast = loss()
        assert under_autocast.dtype == torch.float32, name
        torch.testing.assert_close(under_autocast, reference, rtol=1e-6, atol=1e-6, msg=name)
