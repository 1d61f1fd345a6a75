"""The budget of a run from its config alone (mimae.budget), by hand."""

import pytest

from mimae.budget import budget, samples_per_image, step_flops
from mimae.config import ConfigError, load_config
from tests.conftest import tiny_config


def test_samples_per_image_of_each_kind_of_method():
    assert samples_per_image(tiny_config()) == 1
    assert samples_per_image(tiny_config(method="mimae")) == 4
    assert samples_per_image(tiny_config(method="mimae", mask__ratio=0.5, mimae__views="complete")) == 2
    assert samples_per_image(tiny_config(method="simclr")) == 2


def test_equal_samples_divides_the_batch_by_the_samples_per_image():
    """60,000 images, batch 64 samples: MAE 64 images x 937 steps a pass; MI-MAE 16 images x 4 masks, the same
    937 steps per epoch of samples (3,750 steps a pass of images), the same peak lr 3e-3 x 64 / 256."""
    common = dict(train__equal_samples=True, train__epochs=2, optim__base_lr=3e-3, optim__batch_size=64)
    mae, mi = budget(tiny_config(**common), 60_000), budget(tiny_config(method="mimae", **common), 60_000)
    assert (mae.images_per_step, mae.steps_per_epoch, mae.steps) == (64, 937, 1874)
    assert (mi.images_per_step, mi.steps_per_epoch, mi.steps) == (16, 3750, 1874)
    assert mae.peak_lr == mi.peak_lr == pytest.approx(3e-3 * 64 / 256)
    assert mae.samples == mi.samples == 1874 * 64
    assert mi.images_seen * 4 == mae.images_seen
    assert mae.warmup_steps == mi.warmup_steps == round(0.5 * 937)


def test_without_equal_samples_the_batch_is_images_and_the_lr_follows_the_samples():
    mi = budget(tiny_config(method="mimae", train__epochs=1, optim__batch_size=64), 60_000, world_size=2)
    assert (mi.images_per_micro_batch, mi.images_per_step, mi.steps) == (64, 128, 60_000 // 2 // 64)
    assert mi.samples_per_step == 512 and mi.peak_lr == pytest.approx(tiny_config().optim.base_lr * 512 / 256)


def test_a_batch_that_does_not_divide_into_whole_images_is_refused():
    with pytest.raises(ConfigError, match="optim.batch_size=66 counts .* use a multiple of 4"):
        budget(tiny_config(method="mimae", train__equal_samples=True, optim__batch_size=66), 60_000)
    with pytest.raises(ConfigError, match="100 training images make no full optimizer step"):
        budget(tiny_config(optim__batch_size=128), 100)


def test_a_step_costs_what_its_visible_patches_cost_by_hand():
    """Masking 4 fewer of the tiny ViT's 16 patches adds 4 tokens to each of the step's 16 images in the encoder: per
    token, each block's q, k, v, projection and 4x MLP matmuls (12 d^2 multiply-adds) and the decoder's embedding
    (d x d_dec), at 2 FLOPs each, times 3 for the forward and the backward's two products. (The decoder sees every
    patch either way; the CPU's attention kernel is not counted.)"""
    d, depth, decoder_dim, images = 32, 2, 32, 16
    flops = {ratio: step_flops(tiny_config(mask__ratio=ratio)) for ratio in (0.75, 0.5)}
    assert flops[0.5] - flops[0.75] == 4 * images * 6 * (12 * d * d * depth + d * decoder_dim)


def test_a_few_counted_images_stand_for_the_whole_step():
    """MI-MAE's InfoNCE compares every view of the batch with every other: the only term not linear in the images,
    under 0.1% of a step of the cpu scale's ViT (the library's default model, 16 images x 4 masks a step)."""
    cfg = load_config(overrides={"method": "mimae", "train.equal_samples": True})
    assert step_flops(cfg) == pytest.approx(step_flops(cfg, counted_images=16), rel=1e-3)
