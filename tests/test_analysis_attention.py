import math

import torch

from mimae.analysis.attention import (
    default_token,
    last_block_attention,
    normalized_entropy,
    recording_attention,
    token_maps,
)
from mimae.objectives import build_objective
from tests.conftest import tiny_config


def encoder():
    torch.manual_seed(0)
    return build_objective(tiny_config(), 1).encoder.eval()


def test_fused_and_recording_paths_give_the_same_outputs():
    enc = encoder()
    images = torch.randn(3, 1, 16, 16)
    keep = torch.tensor([[0, 2, 5, 7, 9, 11]]).expand(3, -1)
    assert all(block.attn.fused_attn for block in enc.blocks)
    with torch.no_grad():
        fused = enc(images, keep)
        with recording_attention(enc) as weights:
            explicit = enc(images, keep)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert len(weights) == len(enc.blocks) and weights[0].shape == (3, 2, 7, 7)  # 2 heads, [CLS] + 6 tokens
    torch.testing.assert_close(weights[-1].sum(dim=-1), torch.ones(3, 2, 7))
    assert all(block.attn.fused_attn for block in enc.blocks)  # restored
    assert all(not block.attn.attn_drop._forward_hooks for block in enc.blocks)  # hooks removed


def test_forced_uniform_attention_gives_uniform_maps():
    enc = encoder()
    dim = enc.embed_dim
    with torch.no_grad():
        for block in enc.blocks:  # zero queries and keys: every logit is 0, the softmax is uniform
            block.attn.qkv.weight[:2 * dim].zero_()
            block.attn.qkv.bias[:2 * dim].zero_()
    attention = last_block_attention(enc, torch.randn(2, 1, 16, 16))
    torch.testing.assert_close(attention, torch.full((2, 17, 17), 1 / 17))
    for query in (0, 5):
        maps = token_maps(attention, query, (4, 4))
        torch.testing.assert_close(maps, torch.full((2, 4, 4), 1 / 16))
        torch.testing.assert_close(normalized_entropy(maps), torch.ones(2))


def test_token_maps_pick_the_query_row_and_renormalize_over_patches():
    attention = torch.zeros(1, 5, 5)
    attention[0, 0] = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0])  # [CLS] attends to itself and patch 0
    attention[0, 3] = torch.tensor([0.2, 0.0, 0.0, 0.4, 0.4])
    torch.testing.assert_close(token_maps(attention, 0, (2, 2)), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))
    torch.testing.assert_close(token_maps(attention, 3, (2, 2)), torch.tensor([[[0.0, 0.0], [0.5, 0.5]]]))
    assert normalized_entropy(token_maps(attention, 0, (2, 2))).item() == 0.0
    assert math.isclose(normalized_entropy(token_maps(attention, 3, (2, 2))).item(), 0.5, abs_tol=1e-6)


def test_default_token_is_the_brightest_patch():
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    images[0, 0, 4:, :4] = 200  # patch 2 (row 1, col 0)
    images[1, 0, :4, 4:] = 100  # patch 1
    assert default_token(images, 4).tolist() == [2, 1]
