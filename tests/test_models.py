import torch

from mimae.masking import random_masks
from mimae.models import MAEDecoder, ViTEncoder
from mimae.models.patches import normalized_pixel_target, patchify, unpatchify
from mimae.models.pos_embed import sincos_2d
from mimae.objectives.mae import masked_patch_mse


def test_patchify_round_trip_and_order():
    x = torch.randn(2, 3, 16, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 12, 48)
    assert torch.equal(unpatchify(p, 4, 3, (4, 3)), x)
    # patch 1 is the second patch of the first row; its first entry is pixel (0, 4), channel 0
    assert p[0, 1, 0] == x[0, 0, 0, 4] and p[0, 1, 1] == x[0, 1, 0, 4]


def test_norm_pix_target_is_standardized_per_patch():
    t = normalized_pixel_target(torch.rand(2, 1, 8, 8) * 5 + 3, 4)
    assert torch.allclose(t.mean(-1), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(t.var(-1), torch.ones(2, 4), atol=1e-3)


def test_mae_loss_matches_direct_computation():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 3.0]]])
    target = torch.tensor([[[0.0, 0.0], [5.0, 5.0], [1.0, 2.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    # hidden patches 0 and 2: ((1 + 4) / 2 + (4 + 1) / 2) / 2 = 2.5
    assert masked_patch_mse(pred, target, mask).item() == 2.5


def test_sincos_embedding_shape_and_distinct_positions():
    e = sincos_2d(16, 4, 4)
    assert e.shape == (17, 16) and torch.all(e[0] == 0)
    assert torch.unique(e[1:], dim=0).shape[0] == 16


def test_encoder_on_visible_tokens_and_views():
    enc = ViTEncoder(16, 4, 1, 32, 2, 2)
    x = torch.randn(3, 1, 16, 16)
    assert enc(x).shape == (3, 17, 32)
    m = random_masks(3, (4, 4), 0.75, views=2)
    out = enc(x, m.keep)
    assert out.shape == (6, 5, 32)
    # view 1 of image 2 equals encoding that image with that keep-set alone
    alone = enc(x[2:3], m.keep[2:3, 1])
    assert torch.allclose(out[5], alone[0], atol=1e-5)


def test_decoder_output_shape_and_dependence_on_visible_only():
    enc = ViTEncoder(16, 4, 3, 32, 1, 2)
    dec = MAEDecoder((4, 4), 32, 16, 1, 2, 48)
    x = torch.randn(2, 3, 16, 16)
    m = random_masks(2, (4, 4), 0.5)
    keep = m.keep[:, 0]
    pred = dec(enc(x, keep), keep)
    assert pred.shape == (2, 16, 48)
    # changing hidden pixels does not change the prediction
    hidden = m.mask[:, 0].bool()
    patches = patchify(x, 4)
    patches[hidden] = torch.randn_like(patches[hidden])
    x2 = unpatchify(patches, 4, 3, (4, 4))
    assert torch.allclose(dec(enc(x2, keep), keep), pred, atol=1e-5)
