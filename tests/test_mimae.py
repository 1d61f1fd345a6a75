"""MI-MAE: gradient routing of each loss, L_max against a loop over Eq. 7-8, the eps_l gate, masks, budgets, and a
short pretraining on Fashion-MNIST with a resume in the middle."""

import io
import json
import math

import pytest
import torch
from torch.nn import functional as F

from mimae.engine import Trainer
from mimae.objectives import build_objective
from mimae.objectives.mi_terms import ApproximationNetwork, MutualInformationTerms, visible_patch_summary
from tests.conftest import tiny_config

MI_TERMS = ("rec", "max_mi", "min_mi", "approx")


def tiny_mimae(**overrides):
    cfg = tiny_config(method="mimae", **overrides)
    torch.manual_seed(0)
    return build_objective(cfg, 1)


def parameter_groups(objective) -> dict[str, str]:
    """name -> encoder / decoder / approx for every trainable parameter (the projector counts as encoder)."""
    groups = {}
    for name, p in objective.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("decoder."):
            groups[name] = "decoder"
        elif name.startswith("mi.approx."):
            groups[name] = "approx"
        else:
            assert name.startswith(("encoder.", "mi.projector.")), name
            groups[name] = "encoder"
    return groups


# (loss kept alone, lambda_rec, lambda_max, lambda_min, train_approx) -> the groups that must get gradients
ROUTES = {
    "rec": ((1.0, 0.0, 0.0, False), {"encoder", "decoder"}),
    "max": ((0.0, 1.0, 0.0, False), {"encoder"}),
    "min": ((0.0, 0.0, 1.0, False), {"encoder"}),
    "approx": ((0.0, 0.0, 0.0, True), {"approx"}),
}


@pytest.mark.parametrize("projector_dim", [0, 16])
@pytest.mark.parametrize("loss", list(ROUTES))
def test_gradient_routing_each_loss_alone(loss, projector_dim):
    (l_rec, l_max, l_min, approx), expected = ROUTES[loss]
    obj = tiny_mimae(mimae__lambda_rec=l_rec, mimae__lambda_max=l_max, mimae__lambda_min=l_min,
                     mimae__train_approx=approx, mimae__projector_dim=projector_dim)
    obj.mi.gate_open.fill_(True)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 1, 16, 16, generator=g)
    out = obj(images, obj.draw_masks(4, g))
    out["loss"].backward()
    groups = parameter_groups(obj)
    if projector_dim == 0:
        assert not any(n.startswith("mi.projector") for n in groups)
    for name, p in obj.named_parameters():
        if name not in groups:
            continue
        has_grad = p.grad is not None and bool(p.grad.abs().sum() > 0)
        if loss == "rec" and name.startswith("mi.projector."):
            assert not has_grad, name  # the projector serves the MI terms only
        else:
            assert has_grad == (groups[name] in expected), (loss, name, groups[name])


def loop_l_max(z: torch.Tensor, tau: float) -> float:
    """Eq. 7-8 written out: for every image b and ordered view pair (i, k), i != k, the InfoNCE term with the
    denominator over all B*N views except i; mean over all such terms."""
    b, n, _ = z.shape
    flat = [F.normalize(v, dim=0) for v in z.reshape(b * n, -1)]
    terms = []
    for img in range(b):
        for i in range(n):
            for k in range(n):
                if i == k:
                    continue
                a, c = img * n + i, img * n + k
                num = math.exp(float(flat[a] @ flat[c]) / tau)
                den = sum(math.exp(float(flat[a] @ flat[o]) / tau) for o in range(b * n) if o != a)
                terms.append(-math.log(num / den))
    return sum(terms) / len(terms)


def test_l_max_equals_loop_over_eq_7_8():
    cfg = tiny_config(method="mimae").mimae
    mi = MutualInformationTerms(cfg, 8, 8)
    z = torch.tensor([[[1.0, 0, 0, 0, 0, 0, 0, 0], [0.9, 0.1, 0, 0, 0, 0, 0, 0], [0.8, 0, 0.3, 0, 0, 0, 0, 0]],
                      [[0, 1.0, 0, 0, 0.2, 0, 0, 0], [0, 0.7, 0.7, 0, 0, 0, 0, 0], [0.1, 0.5, 0, 0, 0, 0, 1, 0]]])
    loss, bound, chance = mi.max_mi(z)
    expected = loop_l_max(z, cfg.tau)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(bound) == pytest.approx(math.log(5 / 2) - expected, rel=1e-5) and chance == math.log(5)


def test_latent_choices_and_projector():
    obj = tiny_mimae(mimae__latent="mean", mimae__projector_dim=16, mimae__normalize_latent=True)
    tokens = torch.randn(6, 5, 32)
    z = obj.mi.latent(tokens)
    assert z.shape == (6, 16)
    assert torch.allclose(z.norm(dim=1), torch.ones(6))
    expected = F.normalize(obj.mi.projector(tokens[:, 1:].mean(dim=1)), dim=1)
    assert torch.allclose(z, expected)
    plain = tiny_mimae(mimae__projector_dim=0, mimae__normalize_latent=False).mi
    assert torch.equal(plain.latent(tokens), tokens[:, 0])


def test_mean_latent_averages_only_the_visible_tokens_of_a_simmim_encoder():
    mi = tiny_mimae(mimae__latent="mean", mimae__normalize_latent=False, mimae__projector_dim=0).mi
    tokens = torch.randn(2, 1 + 4, 32)  # [CLS] + 4 tokens, of which SimMIM's mask tokens are 1 and 3
    visible = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    z = mi.latent(tokens, visible=visible)
    torch.testing.assert_close(z[0], tokens[0, [1, 3]].mean(dim=0))
    torch.testing.assert_close(z[1], tokens[1, [2, 3, 4]].mean(dim=0))


def test_relu_sigma_variance_is_the_papers_form_with_a_floor():
    torch.manual_seed(0)
    net = ApproximationNetwork(8, 4, 16, logvar_bound=6.0, variance="relu_sigma")
    x = torch.randn(32, 8)
    _, logvar = net(x)
    sigma = torch.relu(net.logvar(x)) + math.exp(-3.0)
    torch.testing.assert_close(logvar, 2 * torch.log(sigma))
    assert logvar.min() >= -6.0 - 1e-5 and (logvar > -6.0 + 1e-3).any()
    with pytest.raises(ValueError, match="unknown variance"):
        ApproximationNetwork(8, 4, 16, variance="softplus")


def test_club_negatives_views_vs_batch():
    """Within-image negatives give a (B, N, N) log-density matrix, batch negatives a (B*N, B*N) one."""
    mi_views = tiny_mimae().mi
    mi_batch = tiny_mimae(mimae__club_negatives="batch").mi
    z, mu, logvar = torch.randn(3, 4, 8), torch.randn(3, 4, 8), torch.zeros(3, 4, 8)
    within = mi_views.log_q_matrix(z, mu, logvar)
    across = mi_batch.log_q_matrix(z, mu, logvar)
    assert within.shape == (3, 4, 4) and across.shape == (12, 12)
    assert torch.allclose(within[1], across[4:8, 4:8])


def test_visible_patch_summary_is_mean_of_kept_rows():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    keep = torch.tensor([[[0, 1], [2, 4]], [[3, 3], [1, 0]]])
    out = visible_patch_summary(tokens, keep)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0, 1], (tokens[0, 2] + tokens[0, 4]) / 2)
    assert torch.equal(out[1, 0], tokens[1, 3])


def test_approximation_network_fits_gaussian_conditional():
    """q_theta trained by its negative log-likelihood (L_approx) learns mean rho*x and variance 1 - rho^2; the
    paper's LeakyReLU mean cannot follow negative targets as closely."""
    g = torch.Generator().manual_seed(0)
    rho = 0.8
    x = torch.randn(512, 2, generator=g)
    y = rho * x + math.sqrt(1 - rho ** 2) * torch.randn(512, 2, generator=g)
    errors = {}
    for activation in ("none", "leaky_relu"):
        torch.manual_seed(0)
        q = ApproximationNetwork(2, 2, 32, mean_activation=activation)
        opt = torch.optim.Adam(q.parameters(), lr=1e-2)
        for _ in range(300):
            mu, logvar = q(x)
            loss = 0.5 * ((y - mu).pow(2) * torch.exp(-logvar) + logvar).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        mu, logvar = q(x)
        errors[activation] = float((mu.detach() - rho * x).pow(2).mean())
        if activation == "none":
            assert errors[activation] < 0.02
            assert float(logvar.detach().exp().mean()) == pytest.approx(1 - rho ** 2, rel=0.25)
    assert errors["leaky_relu"] > errors["none"]


def run_gate(rec_values, eps=0.5, momentum=0.9):
    mi = MutualInformationTerms(tiny_config(method="mimae", mimae__eps_l=eps, mimae__gate_momentum=momentum).mimae,
                                8, 8)
    opened = []
    for value in rec_values:
        mi.update_gate(value)
        opened.append(bool(mi.gate_open))
    return mi, opened


def test_gate_switches_at_the_right_step_and_latches():
    seq = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2, 0.9, 1.5, 2.0]
    running, expected_step = None, None
    for step, value in enumerate(seq, start=1):
        running = value if running is None else 0.5 * running + 0.5 * value
        if expected_step is None and running < 0.5:
            expected_step = step
    assert expected_step == 6  # the running mean lags the raw values (raw < 0.5 from step 5)
    mi, opened = run_gate(seq, momentum=0.5)
    assert int(mi.gate_step) == expected_step
    assert opened == [False] * (expected_step - 1) + [True] * (len(seq) - expected_step + 1)
    assert float(mi.rec_running) == pytest.approx(running)


def test_gate_never_opens_above_eps_and_survives_state_dict_round_trip():
    mi, opened = run_gate([0.9] * 5)
    assert not any(opened) and int(mi.gate_step) == -1
    mi, _ = run_gate([0.1, 0.1, 5.0])
    buffer = io.BytesIO()
    torch.save(mi.state_dict(), buffer)
    buffer.seek(0)
    fresh, _ = run_gate([])
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert bool(fresh.gate_open) and int(fresh.gate_step) == 1 and int(fresh.steps) == 3
    fresh.update_gate(10.0)
    assert bool(fresh.gate_open) and int(fresh.gate_step) == 1


def test_gate_scales_mi_terms_and_lambda_ramp():
    obj = tiny_mimae(mimae__min_ramp_steps=4, mimae__lambda_max=0.5, mimae__lambda_min=10.0)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 1, 16, 16, generator=g)
    masks = obj.draw_masks(4, g)
    closed = obj(images, masks)
    assert float(closed["gate"]) == 0.0
    assert float(closed["loss"].detach()) == pytest.approx(float(closed["rec"] + closed["approx"]), rel=1e-5)
    obj.mi.gate_open.fill_(True)
    obj.mi.gate_step.fill_(2)
    obj.mi.steps.fill_(3)  # one step after opening: lambda_min ramped to 10 / 4
    opened = obj(images, masks)
    expected = opened["rec"] + 0.5 * opened["max_mi"] + 2.5 * opened["min_mi"] + opened["approx"]
    assert float(opened["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)


def test_masks_orthogonal_independent_and_complete():
    g = torch.Generator().manual_seed(0)
    obj = tiny_mimae()
    masks = obj.draw_masks(3, g)
    assert masks.keep.shape == (3, 4, 4)
    assert torch.equal(masks.mask.sum(1), torch.full((3, 16), 3.0))  # each patch visible in exactly one view
    complete = tiny_mimae(mask__ratio=0.9, mimae__views="complete")
    assert complete.views_per_image == 10
    independent = tiny_mimae(mimae__masking="independent").draw_masks(64, g)
    assert (independent.mask.sum(1) == 4).any()  # some patch hidden in all four views: no partition


def test_equal_samples_budget_matches_mae(tmp_path):
    """Under train.equal_samples the batch counts samples: MI-MAE takes a quarter of MAE's images per step, the
    same steps, warmup and peak lr."""
    common = dict(data__train_limit=256, train__equal_samples=True, train__epochs=4, optim__batch_size=16)
    mae = Trainer(tiny_config(**common), tmp_path / "mae")
    mimae = Trainer(tiny_config(method="mimae", **common), tmp_path / "mimae")
    assert mimae.total_steps == mae.total_steps == 64
    assert mimae.effective_batch == 4 and mae.effective_batch == 16
    assert mimae.peak_lr == pytest.approx(mae.peak_lr)
    assert mimae.warmup_steps == mae.warmup_steps


def test_short_pretraining_gate_opens_losses_finite_and_resume_keeps_gate(tmp_path):
    cfg = tiny_config(method="mimae", data__train_limit=512, optim__batch_size=8, train__epochs=1,
                      mimae__eps_l=1.0, mimae__gate_momentum=0.5, mimae__lambda_min=10.0, optim__base_lr=2e-3)
    first = Trainer(cfg, tmp_path)
    first.run(until_step=40)
    gate_step = int(first.objective.mi.gate_step)
    assert bool(first.objective.mi.gate_open) and 0 < gate_step <= 40
    resumed = Trainer(cfg, tmp_path, resume=True)
    assert bool(resumed.objective.mi.gate_open) and int(resumed.objective.mi.gate_step) == gate_step
    assert int(resumed.objective.mi.steps) == 40
    resumed.run()
    assert int(resumed.objective.mi.gate_step) == gate_step
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in lines if "loss" in r]
    assert train[-1]["gate"] == 1.0 and train[-1]["gate_step"] == gate_step
    for record in train:
        assert all(math.isfinite(record[k]) for k in MI_TERMS + ("club", "infonce_bound"))
    assert train[-1]["infonce_bound"] <= math.log((8 * 4 - 1) / 3)


def test_approx_lr_scale_puts_q_theta_in_its_own_groups_at_scaled_lr(tmp_path):
    cfg = tiny_config(method="mimae", data__train_limit=64, optim__batch_size=4, train__epochs=1,
                      mimae__approx_lr_scale=10.0)
    trainer = Trainer(cfg, tmp_path)
    names = {id(p): n for n, p in trainer.objective.named_parameters()}
    trainer.run(until_step=2)
    base_lr = None
    for group in trainer.optimizer.param_groups:
        in_approx = {names[id(p)].startswith("mi.approx.") for p in group["params"]}
        assert len(in_approx) == 1  # q_theta never shares a group with the encoder
        if in_approx == {False}:
            assert group.get("lr_scale", 1.0) == 1.0
            base_lr = group["lr"] if base_lr is None else base_lr
            assert group["lr"] == base_lr
    assert base_lr and base_lr > 0
    approx_lrs = {g["lr"] for g in trainer.optimizer.param_groups if g.get("lr_scale") == 10.0}
    assert len(approx_lrs) == 1 and approx_lrs.pop() == pytest.approx(10 * base_lr)
    weight_decays = {g["weight_decay"] for g in trainer.optimizer.param_groups if g.get("lr_scale") == 10.0}
    assert weight_decays == {0.0, cfg.optim.weight_decay}  # the decay split is kept inside the scaled groups
