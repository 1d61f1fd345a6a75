"""MI-MAE with ``mimae.positives=target``: L_max pulls each masked view's prediction towards its unmasked image's
latent under an EMA copy of the encoder (and projector), with stop-gradient. Its loss against a hand computation,
which parameters each term reaches, the EMA update, and a bit-exact resume."""

import math

import pytest
import torch
from torch.nn import functional as F

from mimae.config import ConfigError, load_config
from mimae.engine import Trainer
from mimae.objectives import build_objective
from mimae.objectives.mi_terms import MutualInformationTerms
from tests.conftest import tiny_config


def target_mimae(**overrides):
    cfg = tiny_config(method="mimae", mimae__positives="target", **overrides)
    torch.manual_seed(0)
    return build_objective(cfg, 1)


def test_l_max_against_the_target_matches_a_hand_computation():
    cfg = tiny_config(method="mimae", mimae__positives="target", mimae__tau=0.5, mimae__projector_dim=0).mimae
    torch.manual_seed(0)
    mi = MutualInformationTerms(cfg, embed_dim=8, input_dim=4)
    z, target = torch.randn(3, 2, 8), torch.randn(3, 8)
    loss, bound, chance = mi.max_mi_target(z, target)
    p = F.normalize(mi.predictor(z.flatten(0, 1)), dim=-1).detach()
    t = F.normalize(target, dim=-1)
    rows = []
    for i in range(6):  # view i belongs to image i // 2
        scores = [float(p[i] @ t[j]) / 0.5 for j in range(3)]
        rows.append(-(scores[i // 2] - math.log(sum(math.exp(s) for s in scores))))
    assert float(loss) == pytest.approx(sum(rows) / 6, rel=1e-5)
    assert float(bound) == pytest.approx(math.log(3) - float(loss), rel=1e-6) and chance == math.log(3)


def test_l_max_reaches_the_encoder_projector_and_predictor_never_the_target_or_the_decoder():
    objective = target_mimae(mimae__lambda_rec=0.0, mimae__lambda_min=0.0, mimae__train_approx=False,
                             mimae__projector_dim=8)
    objective.mi.gate_open.fill_(True)
    images = torch.randn(4, 1, 16, 16)
    objective(images, generator=torch.Generator().manual_seed(0))["loss"].backward()
    grads = {name: p.grad for name, p in objective.named_parameters()}
    reached = {name for name, g in grads.items() if g is not None and g.abs().sum() > 0}
    assert {n for n in grads if n.startswith("target_encoder.")} and not reached & {
        n for n in grads if n.startswith(("target_encoder.", "mi.target_projector.", "decoder.", "mi.approx."))}
    for prefix in ("encoder.blocks.", "mi.projector.", "mi.predictor."):
        assert any(n.startswith(prefix) for n in reached), prefix
    assert not any(p.requires_grad for p in objective.target_encoder.parameters())


def test_the_target_follows_by_ema_and_not_after_a_skipped_step():
    objective = target_mimae(mimae__target_momentum=0.9, mimae__projector_dim=8)
    with torch.no_grad():
        for p in [*objective.encoder.parameters(), *objective.mi.projector.parameters()]:
            p.add_(torch.randn_like(p))
    pairs = [(objective.encoder, objective.target_encoder), (objective.mi.projector, objective.mi.target_projector)]
    before = [[p.clone() for p in target.parameters()] for _, target in pairs]
    rec = {"rec": torch.tensor(1.0)}
    objective.after_step(rec, torch.tensor(False))
    for (_, target), old in zip(pairs, before):
        assert all(torch.equal(p, q) for p, q in zip(target.parameters(), old))
    objective.after_step(rec, torch.tensor(True))
    for (online, target), old in zip(pairs, before):
        for po, pt, q in zip(online.parameters(), target.parameters(), old):
            torch.testing.assert_close(pt, 0.9 * q + 0.1 * po, rtol=1e-6, atol=1e-7)


def test_a_target_run_resumes_bit_exact(tmp_path):
    cfg = tiny_config(method="mimae", mimae__positives="target", mimae__eps_l=100.0, mimae__projector_dim=8,
                      data__train_limit=32, optim__batch_size=4, train__epochs=1)
    straight = Trainer(cfg, tmp_path / "a")
    initial = {k: v.clone() for k, v in straight.objective.target_encoder.state_dict().items()}
    straight.run()
    Trainer(cfg, tmp_path / "b").run(until_step=5)
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    resumed.run()
    a, b = straight.objective.state_dict(), resumed.objective.state_dict()
    assert any(k.startswith("target_encoder.") for k in a) and any(k.startswith("mi.target_projector.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    moved = straight.objective.target_encoder.state_dict()
    assert any(not torch.equal(moved[k], initial[k]) for k in initial)


def test_a_target_is_mimaes_option_only():
    with pytest.raises(ConfigError, match="mimae.positives=target is MI-MAE's"):
        load_config(overrides={"method": "mi-simmim", "mimae.positives": "target"})
