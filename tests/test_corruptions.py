import pytest
import torch

from mimae.config import load_config
from mimae.data import train_test_sets
from mimae.eval.corruptions import CORRUPTIONS, corrupt

IMAGENET_C = {"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression"}


@pytest.fixture(scope="module")
def gray_images():
    """32 Fashion-MNIST test images, 1 channel, 32x32, in [0, 1]."""
    test = train_test_sets(load_config().data)[1]
    return test.images[:32].float() / 255


@pytest.fixture(scope="module")
def color_images():
    """8 smooth RGB images, 16x16, in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(8, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=16, mode="bilinear", align_corners=False)


def test_the_fifteen_imagenet_c_types():
    assert set(CORRUPTIONS) == IMAGENET_C


@pytest.mark.parametrize("name", sorted(IMAGENET_C))
def test_corruption_changes_image_keeps_shape_and_range_and_grows_with_severity(name, gray_images, color_images):
    strength = []
    for severity in range(1, 6):
        for images in (gray_images, color_images):
            out = corrupt(images, name, severity, torch.Generator().manual_seed(1))
            assert out.shape == images.shape and out.dtype == torch.float32
            assert out.min() >= 0 and out.max() <= 1
            assert (out - images).abs().mean() > 1e-3, f"{name} severity {severity} left the image unchanged"
        strength.append((corrupt(gray_images, name, severity, torch.Generator().manual_seed(1))
                         - gray_images).abs().mean().item())
    # mean absolute change: never falls by more than 10% from one severity to the next, and severity 5 is
    # clearly stronger than severity 1
    for weaker, stronger in zip(strength, strength[1:]):
        assert stronger >= 0.9 * weaker, (name, strength)
    assert strength[4] >= 1.2 * strength[0], (name, strength)


def test_same_seed_same_corruption(gray_images):
    a = corrupt(gray_images, "snow", 3, torch.Generator().manual_seed(5))
    b = corrupt(gray_images, "snow", 3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_bad_arguments_are_named(gray_images):
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        corrupt(gray_images, "rain", 1)
    with pytest.raises(ValueError, match="severity=6"):
        corrupt(gray_images, "fog", 6)
    with pytest.raises(ValueError, match="expected images"):
        corrupt(gray_images[:, :, :2].expand(-1, 2, -1, -1), "fog", 1)
