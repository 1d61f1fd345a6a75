"""Every mask generator of the project. Convention: 1 = masked (hidden from the encoder), 0 = visible.

Masks are drawn on the coarse grid of masking units (``unit`` patches per side, paper 003) and expanded to the patch
grid, so whole units are kept or masked. All draws are vectorized over the batch and take an explicit
``torch.Generator`` so that training is reproducible and resumable.

* ``random``: MAE's per-image argsort of uniform noise, ``len_keep = int(units * (1 - ratio))``.
* ``orthogonal(N)``: one permutation per image split into N disjoint keep-sets (the visible sets partition the
  image when N * keep = units; with N * keep > units, consecutive windows of the permutation with the least overlap).
* ``independent(N)``: N independent random masks per image.
* ``block``: SimMIM's mask (a random coarse grid upsampled to the patches); the same draw as ``random`` with a unit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mimae.config import ConfigError, methods, param, register_section

if TYPE_CHECKING:
    from mimae.config import Config


@dataclass
class Masks:
    """Masks for B images with N views each.

    keep: (B, N, K) indices of the visible patches of each view (in draw order);
    mask: (B, N, L) float, 1 where the patch is hidden.
    """

    keep: torch.Tensor
    mask: torch.Tensor

    @property
    def num_views(self) -> int:
        return self.keep.shape[1]

    def flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(B*N, K) keep indices and (B*N, L) masks, view-major within each image (image b's views are adjacent)."""
        b, n, k = self.keep.shape
        return self.keep.reshape(b * n, k), self.mask.reshape(b * n, -1)

    def __getitem__(self, index) -> Masks:
        """Select images (for example the slice of the global batch that one process trains on)."""
        return Masks(self.keep[index], self.mask[index])

    def to(self, device) -> Masks:
        return Masks(self.keep.to(device), self.mask.to(device))


def complete_masking_views(ratio: float) -> int:
    """"Complete masking" (paper 000 Fig. 2): N = max(2, round(1 / (1 - ratio))) views cover the image."""
    return max(2, round(1.0 / (1.0 - ratio)))


def unit_to_patches(grid: tuple[int, int], unit: int) -> torch.Tensor:
    """(units, unit*unit) table of the patch indices inside each coarse unit, both row-major."""
    gh, gw = grid
    if gh % unit or gw % unit:
        raise ValueError(f"masking unit of {unit} patches does not tile the {gh}x{gw} patch grid")
    rows = torch.arange(gh).reshape(gh // unit, unit, 1, 1)
    cols = torch.arange(gw).reshape(1, 1, gw // unit, unit)
    ids = (rows * gw + cols).permute(0, 2, 1, 3)  # (gh/u, gw/u, u, u)
    return ids.reshape(-1, unit * unit)


def keep_count(num_units: int, ratio: float) -> int:
    """Units kept visible at ``ratio``; at least one."""
    keep = int(num_units * (1 - ratio))
    if keep < 1:
        raise ValueError(f"mask ratio {ratio} keeps no unit out of {num_units}")
    return keep


def _unit_permutations(batch: int, draws: int, num_units: int, generator: torch.Generator | None,
                       device: torch.device | str | None) -> torch.Tensor:
    """(batch, draws, num_units) independent random permutations of the units (argsort of uniform noise)."""
    noise = torch.rand(batch, draws, num_units, generator=generator, device=device)
    return noise.argsort(dim=-1)


def _build(unit_keep: torch.Tensor, grid: tuple[int, int], unit: int) -> Masks:
    """unit_keep (B, N, k) kept unit ids -> Masks on the patch grid."""
    table = unit_to_patches(grid, unit).to(unit_keep.device)
    b, n, k = unit_keep.shape
    keep = table[unit_keep].reshape(b, n, k * unit * unit)
    mask = torch.ones(b, n, grid[0] * grid[1], device=unit_keep.device)
    mask.scatter_(2, keep, 0.0)
    return Masks(keep, mask)


def random_masks(batch: int, grid: tuple[int, int], ratio: float, unit: int = 1, views: int = 1,
                 generator: torch.Generator | None = None, device=None) -> Masks:
    """``views`` independent random masks per image (``independent(N)``; N = 1 is MAE's random masking)."""
    num_units = (grid[0] // unit) * (grid[1] // unit)
    k = keep_count(num_units, ratio)
    order = _unit_permutations(batch, views, num_units, generator, device)
    return _build(order[..., :k], grid, unit)


def orthogonal_windows(num_units: int, keep: int, views: int) -> list[int]:
    """Start offsets of ``views`` windows of length ``keep`` in a permutation of ``num_units``.

    Disjoint when views * keep <= num_units; otherwise spread evenly from 0 to num_units - keep, which gives the
    smallest possible overlap.
    """
    if views * keep <= num_units:
        return [j * keep for j in range(views)]
    last = num_units - keep
    return [round(j * last / (views - 1)) for j in range(views)]


def orthogonal_masks(batch: int, grid: tuple[int, int], ratio: float, views: int, unit: int = 1,
                     generator: torch.Generator | None = None, device=None) -> Masks:
    """N masks per image whose keep-sets are disjoint windows of ONE permutation of the units (paper 000)."""
    num_units = (grid[0] // unit) * (grid[1] // unit)
    k = keep_count(num_units, ratio)
    if views * k > num_units:
        warnings.warn(f"orthogonal masking: {views} views of {k} visible units exceed the {num_units} units; "
                      f"the keep-sets overlap as little as possible", stacklevel=2)
    order = _unit_permutations(batch, 1, num_units, generator, device)[:, 0]
    starts = torch.tensor(orthogonal_windows(num_units, k, views), device=order.device)
    positions = starts.reshape(views, 1) + torch.arange(k, device=order.device)  # (N, k)
    return _build(order[:, positions], grid, unit)


def draw_masks(kind: str, batch: int, grid: tuple[int, int], ratio: float, views: int = 1, unit: int = 1,
               generator: torch.Generator | None = None, device=None) -> Masks:
    """Dispatch by name: ``random`` / ``block`` (one view), ``orthogonal`` or ``independent`` (N views)."""
    if kind in ("random", "block"):
        if views != 1:
            raise ValueError(f"{kind} masking draws one view per image, got views={views}")
        return random_masks(batch, grid, ratio, unit, 1, generator, device)
    if kind == "independent":
        return random_masks(batch, grid, ratio, unit, views, generator, device)
    if kind == "orthogonal":
        return orthogonal_masks(batch, grid, ratio, views, unit, generator, device)
    raise ValueError(f"unknown masking {kind!r}; expected random, block, orthogonal or independent")


@dataclass
class MaskConfig:
    ratio: float | None = param(None, "fraction of masking units hidden from the encoder, for every method (None: "
                                      "the method's default: 0.75 for mae, umae, mimae; 0.5 for simmim, "
                                      "mi-simmim; 0.2 for mr-simclr, mr-byol, mr-barlow; 0 for simclr, byol, "
                                      "barlow)", low=0.0, high=0.99)
    unit: int | None = param(None, "masking unit side in pixels, a multiple of model.patch_size that tiles the "
                                   "image (None: the method's default: the patch; twice the patch for simmim and "
                                   "mi-simmim, as SimMIM's 32 px units on 16 px patches; on a Swin, its output "
                                   "stride)", low=1)

    def resolved(self) -> tuple[float, int]:
        """(ratio, unit in pixels) of a validated config, where both are filled."""
        if self.ratio is None or self.unit is None:
            raise ConfigError("mask.ratio and mask.unit are filled in by validation: validate the config first")
        return self.ratio, self.unit

    def resolve(self, cfg: Config) -> None:
        """Fill ``ratio`` and ``unit`` left at None with the method's defaults, once, so that the saved config
        says what the run used."""
        spec = methods()[cfg.method]
        if self.ratio is None:
            self.ratio = spec.mask_ratio
        if self.unit is None:
            self.unit = spec.mask_unit_patches * cfg.model.patch_size
            if cfg.model.backbone == "swin":  # SimMIM's Swin: a masking unit of the last stage's stride (32 px)
                self.unit = max(self.unit, cfg.model.patch_size * 2 ** (len(cfg.model.stage_depths()) - 1))

    def validate(self, cfg: Config) -> None:
        """The unit tiles the image in whole patches; the ratio leaves a unit visible, and hides one from a method
        that learns by predicting hidden units."""
        unit, ratio, p, size = self.unit or 0, self.ratio or 0.0, cfg.model.patch_size, cfg.data.image_size
        if unit % p or (size // p) % (unit // p):
            raise ConfigError(f"mask.unit={unit} must be a multiple of model.patch_size={p} that tiles the {size}px "
                              "image")
        grid_units = (size // unit) ** 2
        visible = int(grid_units * (1 - ratio))
        if visible < 1:
            raise ConfigError(f"mask.ratio={ratio} leaves no visible unit out of {grid_units}")
        if methods()[cfg.method].reconstructs_hidden and visible == grid_units:
            raise ConfigError(f"mask.ratio={ratio} hides none of the {grid_units} masking units, and {cfg.method} "
                              "learns by predicting hidden ones")


register_section("mask", MaskConfig, "masking")
