import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from mimae.analysis.reconstruct import hidden_pixels, image_quality, predictions_to_pixels
from mimae.data import DataInfo, normalize
from mimae.models.patches import normalized_pixel_target, patchify

GRAY = DataInfo("toy", 1, 10, (0.3,), (0.25,))


def pair(seed=0, channels=1, size=32):
    g = torch.Generator().manual_seed(seed)
    reference = torch.rand(3, channels, size, size, generator=g)
    noisy = (reference + 0.1 * torch.randn(reference.shape, generator=g)).clamp(0, 1)
    return noisy, reference


def test_ssim_psnr_mse_match_scikit_image():
    noisy, reference = pair()
    quality = image_quality(noisy, reference)
    for i in range(len(noisy)):
        x, y = noisy[i, 0].double().numpy(), reference[i, 0].double().numpy()
        ssim = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
        assert quality["ssim"][i].item() == pytest.approx(ssim, abs=1e-4)
        assert quality["psnr"][i].item() == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1.0), abs=1e-3)
        assert quality["mse"][i].item() == pytest.approx(mean_squared_error(y, x), rel=1e-5)
    assert 0.3 < quality["fsim"].min() and quality["fsim"].max() < 1.0


def test_rgb_ssim_matches_scikit_image_channel_mean():
    noisy, reference = pair(channels=3)
    quality = image_quality(noisy, reference)
    x, y = noisy[0].double().numpy(), reference[0].double().numpy()
    ssim = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=0)
    assert quality["ssim"][0].item() == pytest.approx(ssim, abs=1e-4)
    assert quality["fsim"].shape == (3,)


@pytest.mark.parametrize("channels", [1, 3])
def test_an_image_against_itself_is_perfect(channels):
    _, reference = pair(channels=channels)
    quality = image_quality(reference, reference)
    torch.testing.assert_close(quality["ssim"], torch.ones(3))
    torch.testing.assert_close(quality["fsim"], torch.ones(3))
    assert quality["mse"].abs().max() == 0
    assert quality["psnr"].min() >= 80.0  # piq's cap for identical images


@pytest.mark.parametrize("norm_pix", [True, False])
def test_exact_predictions_map_back_to_the_original_pixels(norm_pix):
    images = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)
    inputs = normalize(images, GRAY)
    pred = normalized_pixel_target(inputs, 4) if norm_pix else patchify(inputs, 4)
    pixels = predictions_to_pixels(pred, inputs, 4, norm_pix, GRAY)
    torch.testing.assert_close(pixels, images.float() / 255, atol=1e-4, rtol=0)


def test_hidden_pixels_cover_exactly_the_hidden_patches():
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # 2x2 grid of 3-pixel patches
    hidden = hidden_pixels(mask, 3, (2, 2))
    assert hidden.shape == (1, 1, 6, 6)
    assert hidden[0, 0, :3, :3].eq(1).all() and hidden[0, 0, 3:, 3:].eq(1).all()
    assert hidden[0, 0, :3, 3:].eq(0).all() and hidden[0, 0, 3:, :3].eq(0).all()


def test_image_quality_works_on_the_smallest_allowed_images():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    same = image_quality(x, x)
    assert torch.allclose(same["ssim"], torch.ones(3), atol=1e-4) and torch.all(same["mse"] == 0)
    noisy = image_quality((x + 0.2 * torch.rand_like(x)).clamp(0, 1), x)
    assert torch.all(noisy["ssim"] < same["ssim"]) and torch.all(noisy["mse"] > 0)
