"""The 15 ImageNet-C corruption types (Hendrycks & Dietterich, 2019) at 5 severities, on batched tensors.

Every corruption takes float images (B, C, H, W) in [0, 1] with C = 1 or 3 and any small size, a severity in 1..5
and a ``torch.Generator``, and returns a tensor of the same shape in [0, 1]. The severity parameters are those of
CIFAR-10-C (the authors' ``make_cifar_c.py``, made for 32 px images), scaled with the image side where they are in
pixels. Three corruptions differ from the reference by necessity, and say so:

- ``frost`` blends a procedural ice texture (the reference blends crops of six frost photographs that are not
  distributed with any package);
- ``glass_blur`` moves each pixel to a random neighbour in one vectorized step per iteration (the reference swaps
  pixels one at a time in a Python loop);
- ``motion_blur`` and the snow streaks use a one-sided Gaussian line kernel, as ImageMagick's motion blur does.

Two parameter tables are changed so that the change to the image grows with the severity on 32 px images: the
random affine shift of ``elastic_transform`` grows (3..8% of the side; CIFAR-10-C's shrinks from 8% to 3%, which
makes its severity 5 the mildest), and ``pixelate`` shrinks to 95/85/72/60/47% of the side (CIFAR-10-C's
95/90/85/75/65% gives a 24 px step milder than its 27 px step, as 24 px resamples more evenly to 32 px).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg
from torchvision.transforms.v2.functional import gaussian_blur as tv_gaussian_blur

from mimae.data.augment import resized_crop

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
CORRUPTIONS: dict[str, Corruption] = {}


def corruption(fn: Corruption) -> Corruption:
    CORRUPTIONS[fn.__name__] = fn
    return fn


def corrupt(images: torch.Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1..5) to float images (B, C, H, W) in [0, 1]."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity={severity} is not in 1..5")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got {tuple(images.shape)}")
    generator = generator or torch.Generator().manual_seed(0)
    return CORRUPTIONS[name](images.float(), severity, generator).clamp(0, 1)


# ---------------------------------------------------------------- helpers

def _uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) luminance."""
    if x.shape[1] == 1:
        return x
    return (x * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, keepdim=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (reflect border), kernel covering +-3 sigma."""
    size = 2 * math.ceil(3 * sigma) + 1
    return tv_gaussian_blur(x, [size, size], [sigma, sigma])


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with one (k, k) kernel, reflect border."""
    k = kernel.shape[-1]
    c = x.shape[1]
    padded = F.pad(x, [k // 2] * 4, mode="reflect")
    return F.conv2d(padded, kernel.expand(c, 1, k, k), groups=c)


def _center_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the center by ``factor`` >= 1 (crop the central 1/factor and resize it back, bilinear)."""
    b, _, h, w = x.shape
    ch, cw = h / factor, w / factor
    box = torch.tensor([(w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2]).expand(b, 4)
    return resized_crop(x, box, h) if h == w else F.interpolate(resized_crop(x, box, h), size=(h, w))


def _line_blur(x: torch.Tensor, radius: float, sigma: float, angles_deg: torch.Tensor) -> torch.Tensor:
    """One-sided motion blur: average of copies shifted by i pixels along each image's angle (B,), i = 0..2r,
    with weights exp(-i^2 / 2 sigma^2) (ImageMagick's kernel)."""
    b, _, h, w = x.shape
    taps = torch.arange(2 * math.ceil(radius) + 1, dtype=torch.float32)
    weights = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    weights = weights / weights.sum()
    rad = torch.deg2rad(angles_deg)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    out = torch.zeros_like(x)
    for tap, weight in zip(taps, weights):
        sx = xs + tap * torch.cos(rad).reshape(b, 1, 1)
        sy = ys - tap * torch.sin(rad).reshape(b, 1, 1)
        grid = torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], dim=-1)
        out = out + weight * F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out


def plasma_fractal(batch: int, size: int, decay: float, generator: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps (B, size, size) in [0, 1], ``size`` a power of two (the reference's fog)."""
    grid = torch.zeros(batch, size, size, dtype=torch.float64)
    step, wibble = size, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        return total / 4 + wibble * _uniform(total.shape, -wibble, wibble, generator).double()

    while step >= 2:
        half = step // 2
        corners = grid[:, 0:size:step, 0:size:step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        grid[:, half:size:step, half:size:step] = wibbled_mean(squares)
        centers = grid[:, half:size:step, half:size:step]
        corners = grid[:, 0:size:step, 0:size:step]
        grid[:, 0:size:step, half:size:step] = wibbled_mean(centers + centers.roll(1, 1) + corners
                                                            + corners.roll(-1, 2))
        grid[:, half:size:step, 0:size:step] = wibbled_mean(centers + centers.roll(1, 2) + corners
                                                            + corners.roll(-1, 1))
        step //= 2
        wibble /= decay
    low = grid.amin(dim=(1, 2), keepdim=True)
    high = grid.amax(dim=(1, 2), keepdim=True)
    return ((grid - low) / (high - low).clamp_min(1e-12)).float()


def _fractal_like(x: torch.Tensor, decay: float, generator: torch.Generator) -> torch.Tensor:
    """A plasma fractal (B, 1, H, W) cropped from the next power-of-two map."""
    b, _, h, w = x.shape
    size = 2 ** math.ceil(math.log2(max(h, w, 2)))
    return plasma_fractal(b, size, decay, generator)[:, None, :h, :w]


# ---------------------------------------------------------------- noise

@corruption
def gaussian_noise(x, severity, generator):
    c = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    return x + c * torch.randn(x.shape, generator=generator)


@corruption
def shot_noise(x, severity, generator):
    c = [500, 250, 100, 75, 50][severity - 1]
    return torch.poisson(x * c, generator=generator) / c


@corruption
def impulse_noise(x, severity, generator):
    c = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    r = torch.rand(x.shape, generator=generator)
    return torch.where(r < c / 2, torch.zeros_like(x), torch.where(r < c, torch.ones_like(x), x))


# ---------------------------------------------------------------- blur

@corruption
def defocus_blur(x, severity, generator):
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    half = math.ceil(radius) + 1
    coords = torch.arange(-half, half + 1, dtype=torch.float32)
    disk = ((coords[:, None] ** 2 + coords[None, :] ** 2) <= radius ** 2).float()
    disk = disk / disk.sum()
    kernel = tv_gaussian_blur(disk[None, None], [3, 3], [alias, alias])[0, 0]
    return _filter(x, kernel / kernel.sum())


@corruption
def glass_blur(x, severity, generator):
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    x = torch.floor(_blur(x, sigma) * 255) / 255
    b, c, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for _ in range(iterations):
        dy, dx = torch.randint(-delta, delta, (2, b, h, w), generator=generator)
        src_y = (ys + dy).clamp(0, h - 1)
        src_x = (xs + dx).clamp(0, w - 1)
        index = (src_y * w + src_x).reshape(b, 1, h * w).expand(b, c, h * w)
        x = x.reshape(b, c, h * w).gather(2, index).reshape(b, c, h, w)
    return _blur(x, sigma)


@corruption
def motion_blur(x, severity, generator):
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    return _line_blur(x, radius * x.shape[-1] / 32, sigma * x.shape[-1] / 32,
                      _uniform(len(x), -45, 45, generator))


@corruption
def zoom_blur(x, severity, generator):
    top = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    factors = torch.arange(1, top, 0.01).tolist()
    return (x + sum(_center_zoom(x, f) for f in factors)) / (len(factors) + 1)


# ---------------------------------------------------------------- weather

@corruption
def snow(x, severity, generator):
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    b, _, h, w = x.shape
    flakes = loc + scale * torch.randn((b, 1, h, w), generator=generator)
    flakes = _center_zoom(flakes, zoom)
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp(0, 1)
    scale_px = w / 32
    flakes = _line_blur(flakes, radius * scale_px, sigma * scale_px, _uniform(b, -135, -45, generator))
    x = keep * x + (1 - keep) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return x + flakes + flakes.flip(-1, -2)


def frost_texture(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A bright ice texture (B, 1, H, W) in [0, 1]: a fine plasma fractal with sharp crystal edges."""
    base = _fractal_like(x, 1.4, generator)
    crystals = (base - _blur(base, 1.0)).abs()
    texture = 0.55 + 0.45 * base - 2.0 * crystals
    return texture.clamp(0, 1)


@corruption
def frost(x, severity, generator):
    keep, amount = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    return keep * x + amount * frost_texture(x, generator)


@corruption
def fog(x, severity, generator):
    amount, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + amount * _fractal_like(x, decay, generator)) * peak / (peak + amount)


# ---------------------------------------------------------------- digital

@corruption
def brightness(x, severity, generator):
    c = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    value = x.amax(dim=1, keepdim=True)  # HSV value; hue and saturation are kept
    new_value = (value + c).clamp(max=1)
    return torch.where(value > 0, x * new_value / value.clamp_min(1e-12), new_value.expand_as(x))


@corruption
def contrast(x, severity, generator):
    c = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


@corruption
def elastic_transform(x, severity, generator):
    b, _, h, w = x.shape
    alpha, sigma, shift = (v * h for v in [(0, 0, 0.03), (0.05, 0.2, 0.05), (0.08, 0.06, 0.06),
                                           (0.1, 0.04, 0.07), (0.1, 0.03, 0.08)][severity - 1])
    # Random affine: three points around the center moved by up to +-shift pixels; the output pixel p reads the
    # input at A p, with A the affine map from the moved points back to the original ones.
    center, side = torch.tensor([w // 2, h // 2], dtype=torch.float32), min(h, w) // 3
    src = torch.stack([center + side, center + torch.tensor([side, -side]), center - side])
    dst = src + _uniform((b, 3, 2), -shift, shift, generator)
    ones = torch.ones(b, 3, 1)
    inverse = torch.linalg.solve(torch.cat([dst, ones], 2), src.expand(b, 3, 2))  # (B, 3, 2)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, h * w, 3)
    source = (points @ inverse).reshape(b, h, w, 2)
    if alpha > 0:
        noise = _uniform((b, 2, h, w), -1, 1, generator)
        displacement = _blur(noise, sigma) * alpha  # (B, 2, H, W): dx, dy in pixels
        source = source + displacement.permute(0, 2, 3, 1)
    grid = torch.stack([2 * source[..., 0] / (w - 1) - 1, 2 * source[..., 1] / (h - 1) - 1], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


@corruption
def pixelate(x, severity, generator):
    c = [0.95, 0.85, 0.72, 0.6, 0.47][severity - 1]
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(int(h * c), int(w * c)), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


@corruption
def jpeg_compression(x, severity, generator):
    quality = [80, 65, 58, 50, 40][severity - 1]
    images = list((x * 255).round().to(torch.uint8))
    decoded = decode_jpeg(encode_jpeg(images, quality=quality))
    return torch.stack(decoded).float() / 255
