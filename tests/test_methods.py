"""U-MAE, the MRCL family (and the plain SimCLR / BYOL / Barlow Twins baselines), SimMIM and MI-SimMIM."""

import json
import math

import pytest
import torch

from mimae.config import sections
from mimae.engine import Trainer
from mimae.models.patches import patchify, unpatchify
from mimae.objectives import REGISTRY, build_objective
from mimae.objectives.mrcl import MRCL_PAPER_MASK_RATIO, MRCL_PAPER_WEIGHTS
from mimae.objectives.ssl_losses import uniformity_loss
from mimae.optim import make_optimizer
from mimae.workflow import KnnMonitor
from tests.conftest import tiny_config

METHODS = ("umae", "simclr", "mr-simclr", "byol", "mr-byol", "barlow", "mr-barlow", "simmim", "mi-simmim")
FAMILIES = ("simclr", "byol", "barlow")


def inputs(objective, batch: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, 1, 16, 16) if objective.crops == 1 else (batch, 2, 1, 16, 16)
    return torch.randn(shape, generator=gen), objective.draw_masks(batch, gen)


def build(method: str, **overrides):
    torch.manual_seed(0)
    return build_objective(tiny_config(method=method, **overrides), 1)


def test_umae_loss_is_mae_loss_plus_weighted_uniformity_of_cls():
    mae, umae = build("mae"), build("umae", umae__weight=0.3, umae__temperature=0.5)
    images, masks = inputs(mae)
    with torch.no_grad():
        latent, pred = mae.reconstruct(images, masks)
        expected = mae.reconstruction_loss(images, masks, pred) + 0.3 * uniformity_loss(latent[:, 0], 0.5)
        out = umae(images, masks)
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(out["uniformity"]) == pytest.approx(float(uniformity_loss(latent[:, 0], 0.5)), rel=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_baselines_see_every_patch_and_build_no_decoder(family):
    plain = build(family)
    images, masks = inputs(plain)
    assert plain.decoder is None
    assert masks.keep.shape == (8, 2, 16) and float(masks.mask.sum()) == 0.0
    assert set(plain(images, masks)) == {"loss", "contrast"}


@pytest.mark.parametrize("family", FAMILIES)
def test_mr_variants_use_the_paper_settings(family):
    mr = build(f"mr-{family}")
    assert (mr.mask_ratio, mr.masked_weight, mr.unmasked_weight) == (MRCL_PAPER_MASK_RATIO,
                                                                      *MRCL_PAPER_WEIGHTS[family])
    images, masks = inputs(mr)
    assert masks.keep.shape == (8, 2, int(16 * (1 - MRCL_PAPER_MASK_RATIO)))
    out = mr(images, masks)
    alpha, lam = MRCL_PAPER_WEIGHTS[family]
    expected_rec = alpha * out["rec_masked"] + lam * out["rec_visible"]
    assert float(out["loss"].detach()) == pytest.approx(float(out["contrast"] + expected_rec), rel=1e-5)


def test_mrcl_values_given_in_the_config_override_the_paper_defaults():
    mr = build("mr-barlow", mask__ratio=0.5, mrcl__masked_weight=1.0)
    assert (mr.mask_ratio, mr.masked_weight, mr.unmasked_weight) == (0.5, 1.0, MRCL_PAPER_WEIGHTS["barlow"][1])
    assert build("simclr", mrcl__unmasked_weight=2.0).decoder is not None


def test_byol_target_is_an_ema_of_the_online_network_and_gets_no_gradient():
    byol = build("mr-byol", mrcl__ema_momentum=0.9)
    online = list(byol.encoder.parameters()) + list(byol.projector.parameters())
    target = list(byol.target_encoder.parameters()) + list(byol.target_projector.parameters())
    for po, pt in zip(online, target):
        torch.testing.assert_close(pt, po)
    trained = {id(p) for group in make_optimizer(byol, tiny_config().optim).param_groups for p in group["params"]}
    assert not trained & {id(p) for p in target}

    images, masks = inputs(byol)
    out = byol(images, masks)
    out["loss"].backward()
    assert all(p.grad is None for p in target)
    assert sum(float(p.grad.abs().sum()) for p in online if p.grad is not None) > 0
    before = [p.detach().clone() for p in target]
    torch.optim.SGD([p for p in byol.parameters() if p.requires_grad], lr=0.5).step()
    byol.after_step(out)
    moved = 0
    for po, pt, old in zip(online, target, before):
        torch.testing.assert_close(pt, 0.9 * old + 0.1 * po.detach())
        moved += int(not torch.equal(pt, old))
    assert moved > 0


def test_simmim_encoder_ignores_the_pixels_of_masked_patches():
    simmim = build("simmim").eval()
    images, masks = inputs(simmim)
    mask = masks.mask[:, 0]
    noise = torch.randn_like(patchify(images, 4)) * mask.unsqueeze(-1)
    changed = images + unpatchify(noise, 4, 1, (4, 4))
    tokens = simmim.encoder.patch_tokens(images)
    torch.testing.assert_close(simmim.encode(simmim.encoder.patch_tokens(changed), mask), simmim.encode(tokens, mask))
    visible_change = images + unpatchify(torch.randn_like(noise) * (1 - mask).unsqueeze(-1), 4, 1, (4, 4))
    assert not torch.allclose(simmim.encode(simmim.encoder.patch_tokens(visible_change), mask),
                              simmim.encode(tokens, mask))


def test_simmim_masks_whole_units_at_its_ratio():
    simmim = build("simmim", mask__unit=8)  # 16 px image, patch 4: a 2x2 grid of 2x2-patch units
    _, masks = inputs(simmim, batch=32)
    grid = masks.mask[:, 0].reshape(32, 2, 2, 2, 2)  # (B, unit row, patch row, unit col, patch col)
    per_unit = grid.permute(0, 1, 3, 2, 4).reshape(32, 4, 4)
    assert torch.all((per_unit.sum(-1) == 0) | (per_unit.sum(-1) == 4))
    assert torch.all(masks.mask[:, 0].sum(-1) == 8)
    with pytest.raises(ValueError, match="mask.unit=6"):
        build("simmim", mask__unit=6)


def test_mi_simmim_masks_are_complementary_and_adds_the_mi_terms():
    mi = build("mi-simmim")
    images, masks = inputs(mi)
    assert masks.mask.shape[1] == 2 and torch.all(masks.mask.sum(dim=1) == 1)
    out = mi(images, masks)
    assert {"rec", "max_mi", "min_mi", "approx", "gate"} <= set(out)
    # gate closed at the start: L = L_rec + L_approx
    assert float(out["gate"]) == 0.0
    assert float(out["loss"].detach()) == pytest.approx(float(out["rec"] + out["approx"]), rel=1e-5)
    simmim = build("simmim")
    simmim.load_state_dict({k: v for k, v in mi.state_dict().items() if not k.startswith("mi.")})
    _, pred = simmim.reconstruct(images, masks)
    rec = simmim.reconstruction_loss(images, masks, pred)
    assert float(rec.detach()) == pytest.approx(float(out["rec"]), rel=1e-5)


@pytest.mark.parametrize("method", ["simmim", "mi-simmim"])
def test_a_simmim_run_ends_with_its_report_and_reconstructions(method, tmp_path):
    """The run report decodes SimMIM's predictions (standardized pixels, no per-patch normalization)."""
    from mimae.workflow import pretrain
    from tests.conftest import tiny_config
    pretrain(tiny_config(method=method, data__train_limit=16, train__epochs=1, eval__knn_bank_limit=16,
                         eval__knn_query_limit=16), tmp_path)
    assert (tmp_path / "figures" / "reconstructions.png").is_file() and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize("method", METHODS)
def test_short_pretraining_on_fashion_mnist_has_finite_losses(tmp_path, method):
    cfg = tiny_config(method=method, data__train_limit=48, data__test_limit=32, eval__knn_bank_limit=48,
                      eval__knn_query_limit=32, train__epochs=1, mimae__eps_l=100.0)
    results = Trainer(cfg, tmp_path, monitor=KnnMonitor(cfg)).run()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "loss" in line]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert 0.0 <= results["knn_final"] <= 100.0


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_an_objective_receives_its_own_sections_not_the_run_config(method):
    objective = build(method)
    assert not hasattr(objective, "cfg")
    assert set(REGISTRY[method].sections) <= set(sections())
    assert objective.spec.mask.ratio == tiny_config(method=method).mask.ratio
