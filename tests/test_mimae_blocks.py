"""MI-MAE with the MI terms split from the reconstruction by depth: ``mimae.latent_block`` (the MI terms read a
middle block's output, so they reach only the blocks below it) and ``mimae.top_blocks`` (they reach only the top
blocks, rerun on their detached input). Which parameters each reaches, the default path unchanged, the checks."""

import pytest
import torch

from mimae.config import ConfigError, load_config
from mimae.objectives import build_objective
from tests.conftest import tiny_config

ONLY_L_MAX = {"mimae__lambda_rec": 0.0, "mimae__lambda_min": 0.0, "mimae__train_approx": False}


def reached_by_l_max(**overrides) -> set[str]:
    """The encoder parameters L_max alone gives a non-zero gradient (a 2-block tiny ViT, the gate open)."""
    torch.manual_seed(0)
    objective = build_objective(tiny_config(method="mimae", **ONLY_L_MAX, **overrides), 1)
    objective.mi.gate_open.fill_(True)
    objective(torch.randn(4, 1, 16, 16), generator=torch.Generator().manual_seed(0))["loss"].backward()
    reached = set()
    for name, p in objective.named_parameters():
        if name.startswith("encoder.") and p.grad is not None and p.grad.abs().sum() > 0:
            parts = name.split(".")  # encoder.blocks.1.attn.qkv.weight -> block1; encoder.norm.weight -> norm
            reached.add(f"block{parts[2]}" if parts[1] == "blocks" else parts[1])
    return reached


def test_the_default_reads_the_encoders_output_and_reaches_every_block():
    reached = reached_by_l_max()
    assert {"block0", "block1", "norm", "patch_embed", "cls_token"} <= reached
    torch.manual_seed(0)
    objective = build_objective(tiny_config(method="mimae"), 1)
    images = torch.randn(2, 1, 16, 16)
    masks = objective.draw_masks(2, torch.Generator().manual_seed(1))
    latent, mi_tokens = objective.encode(images, masks)
    assert torch.equal(latent, objective.encoder(images, masks.keep)) and mi_tokens is latent


def test_a_middle_block_reaches_only_the_blocks_below_it():
    reached = reached_by_l_max(mimae__latent_block=1)
    assert "block0" in reached and "patch_embed" in reached
    assert "block1" not in reached and "norm" not in reached


def test_top_blocks_reach_only_the_top_and_the_final_norm():
    reached = reached_by_l_max(mimae__top_blocks=1)
    assert {"block1", "norm"} <= reached
    assert not reached & {"block0", "patch_embed", "cls_token"}


def test_the_decoder_still_reads_the_full_encoder_under_either_split():
    for key in ("latent_block", "top_blocks"):
        torch.manual_seed(0)
        objective = build_objective(tiny_config(method="mimae", **{f"mimae__{key}": 1}), 1)
        images = torch.randn(2, 1, 16, 16)
        masks = objective.draw_masks(2, torch.Generator().manual_seed(1))
        latent, mi_tokens = objective.encode(images, masks)
        torch.testing.assert_close(latent, objective.encoder(images, masks.keep), rtol=0, atol=0)
        assert mi_tokens.shape == latent.shape


@pytest.mark.parametrize("overrides, message", [
    ({"mimae.latent_block": 1, "mimae.top_blocks": 1}, "set one of them"),
    ({"mimae.latent_block": 2}, "mimae.latent_block=2 must be below model.depth=2"),
    ({"mimae.top_blocks": 1, "method": "mi-simmim"}, "mimae.top_blocks=1 is MI-MAE's option"),
])
def test_the_splits_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={"method": "mimae", "model.depth": 2, "model.embed_dim": 32, "model.num_heads": 2,
                               **overrides})
