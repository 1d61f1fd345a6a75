"""MI-MAE with ``mimae.crops``: each image gives 2 augmented crops, each masked with N masks, and L_max's positives
are the views of the image's other crop (views that differ beyond the mask). The positive pattern and the loss
against a hand computation, the budget it counts, which parameters each term reaches, the trainer end to end with
a bit-exact resume, and the checks."""

import math

import pytest
import torch
from torch.nn import functional as F

from mimae.config import ConfigError, load_config
from mimae.engine import Trainer
from mimae.estimators import view_positives
from mimae.objectives import build_objective
from mimae.objectives.base import crops_per_image, samples_per_image
from mimae.objectives.mi_terms import MutualInformationTerms
from tests.conftest import tiny_config

CROPS = {"mimae__crops": 2, "mimae__views": "2"}


def test_positives_are_the_other_crops_views_and_the_own_crop_is_left_out():
    positives, excluded = view_positives(1, 4, group=2)  # one image: crop 0's views 0, 1; crop 1's views 2, 3
    other_crop = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(positives, other_crop) and torch.equal(excluded, ~other_crop)
    positives, excluded = view_positives(2, 4, group=2)  # a second image's views are candidates, never positives
    assert torch.equal(positives[:4, 4:], torch.zeros(4, 4, dtype=torch.bool))
    assert not excluded[:4, 4:].any() and torch.equal(excluded[4:, 4:], ~other_crop)


def test_l_max_across_crops_matches_a_hand_computation():
    cfg = tiny_config(method="mimae", mimae__tau=0.5, **CROPS).mimae
    mi = MutualInformationTerms(cfg, embed_dim=8, input_dim=4)
    z = torch.randn(3, 4, 8)  # 3 images x (2 crops x 2 masks), crop-major within an image
    loss, bound, chance = mi.max_mi(z, crops=2)
    flat = F.normalize(z.reshape(12, 8), dim=-1)
    terms = []
    for i in range(12):
        image, crop = i // 4, i // 2
        candidates = [j for j in range(12) if j // 2 != crop]  # every view but the own crop's
        denominator = sum(math.exp(float(flat[i] @ flat[j]) / 0.5) for j in candidates)
        terms += [-(float(flat[i] @ flat[j]) / 0.5 - math.log(denominator))
                  for j in candidates if j // 4 == image]
    assert len(terms) == 24 and float(loss) == pytest.approx(sum(terms) / 24, rel=1e-5)
    assert float(bound) == pytest.approx(math.log(10 / 2) - float(loss), rel=1e-6) and chance == math.log(10)


def test_two_crops_of_two_masks_count_four_samples_an_image():
    cfg = tiny_config(method="mimae", **CROPS)
    assert (crops_per_image(cfg), samples_per_image(cfg)) == (2, 4)
    assert samples_per_image(tiny_config(method="mimae")) == 4 and crops_per_image(tiny_config(method="mimae")) == 1


def test_l_max_reaches_the_encoder_only_and_every_crop_is_reconstructed():
    torch.manual_seed(0)
    objective = build_objective(tiny_config(method="mimae", mimae__lambda_rec=0.0, mimae__lambda_min=0.0,
                                            mimae__train_approx=False, **CROPS), 1)
    objective.mi.gate_open.fill_(True)
    images = torch.randn(3, 2, 1, 16, 16)
    masks = objective.draw_masks(3, torch.Generator().manual_seed(0))
    assert masks.keep.shape[:2] == (6, 2)  # 2 masks for each of the 3 x 2 crops
    out = objective(images, masks)
    out["loss"].backward()
    reached = {n for n, p in objective.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith("encoder.blocks.") for n in reached)
    assert not any(n.startswith(("decoder.", "mi.approx.")) for n in reached)
    # L_rec reads every crop: changing the second crop alone changes it
    with torch.no_grad():
        rec = objective(images, masks)["rec"]
        images[:, 1] += 1.0
        assert float(objective(images, masks)["rec"]) != pytest.approx(float(rec))


def test_a_crops_run_trains_and_resumes_bit_exact(tmp_path):
    cfg = tiny_config(method="mimae", mimae__eps_l=100.0, data__train_limit=32, optim__batch_size=8,
                      train__epochs=1, train__equal_samples=True, **CROPS)
    straight = Trainer(cfg, tmp_path / "a")
    assert straight.budget.images_per_micro_batch == 2 and straight.augment.crops == 2  # 8 samples / 4 per image
    straight.run()
    Trainer(cfg, tmp_path / "b").run(until_step=5)
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    resumed.run()
    a, b = straight.objective.state_dict(), resumed.objective.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("overrides, message", [
    ({"method": "mi-simmim", "mimae.crops": 2}, "mimae.crops=2 is MI-MAE's option"),
    ({"mimae.crops": 2, "mimae.positives": "target"}, "set one of them"),
])
def test_crops_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={"method": "mimae", **overrides})
