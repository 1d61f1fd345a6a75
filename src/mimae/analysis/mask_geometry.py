"""How the mask ratio moves masked views together (paper 001, Sec. 4.2, Fig. 3).

A masked view is the image in [0, 1] with its hidden patches set to zero (masks drawn as in training, on the patch
grid or the masking unit, at ratio r). Over all unordered pairs of images, the mean L2 distance between their masked
views is taken for pairs of the same class (intra), of different classes (inter) and for all pairs, averaged over a
few mask draws. The relative distance intra / inter is small where masking brings images of one class together
faster than images of different classes; its minimum over r is the "sweet spot" (paper 001 finds about 0.7).

The paper does not say whether the two images of a pair share their mask, so both pairings are measured:
``own``: each image draws its own mask, as in MAE training; ``shared``: one mask for all images of a draw, so a pair
is compared on the same visible patches.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mimae.analysis.loading import labelled_test_images, unit_images
from mimae.config import Config, load_config
from mimae.masking import draw_masks
from mimae.models.patches import unpatchify
from mimae.plotting import legend_below, panel_grid, save_figure, write_json

DEFAULT_RATIOS = tuple(round(0.05 * i, 2) for i in range(20))  # 0.0 ... 0.95


def masked_views(images: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (N, C, H, W) and patch masks (N, L), 1 = hidden -> views (N, C*H*W) with hidden patches zeroed."""
    grid = (images.shape[-2] // patch, images.shape[-1] // patch)
    hidden = unpatchify(mask.unsqueeze(-1).expand(-1, -1, patch * patch), patch, 1, grid)
    return (images * (1 - hidden)).flatten(1)


def pair_distances(views: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean L2 distance over unordered pairs i < j of views (N, F): intra-class, inter-class and all pairs."""
    distances = torch.cdist(views, views)
    upper = torch.ones_like(distances, dtype=torch.bool).triu(diagonal=1)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    return {"intra": float(distances[upper & same].mean()), "inter": float(distances[upper & ~same].mean()),
            "all": float(distances[upper].mean())}


def geometry_at_ratio(images: torch.Tensor, labels: torch.Tensor, ratio: float, patch: int, unit: int,
                      repeats: int, generator: torch.Generator, pairing: str = "own") -> dict[str, float]:
    """Pair distances of masked views at one ratio, averaged over ``repeats`` mask draws; plus intra / inter and
    the standard deviation of intra / inter between draws (how far a dip can be trusted).

    images (N, C, H, W) in [0, 1]; ``unit`` is the masking unit in patches; ``pairing`` "own" (a mask per image) or
    "shared" (one mask per draw for all images).
    """
    grid = (images.shape[-2] // patch, images.shape[-1] // patch)
    draws = []
    for _ in range(repeats):
        count = len(images) if pairing == "own" else 1
        mask = draw_masks("random", count, grid, ratio, 1, unit, generator).mask[:, 0].expand(len(images), -1)
        draws.append(pair_distances(masked_views(images, mask, patch), labels))
    means = {key: sum(d[key] for d in draws) / repeats for key in ("intra", "inter", "all")}
    spread = torch.tensor([d["intra"] / d["inter"] for d in draws]).std() if repeats > 1 else torch.tensor(0.0)
    return {"ratio": ratio, **means, "relative": means["intra"] / means["inter"], "relative_std": float(spread)}


PAIRINGS = {"own": "a mask per image", "shared": "one mask for all images"}


def plot_geometry(curves: dict[str, list[dict]], sweet_spots: dict[str, float], path: Path, title: str) -> Path:
    """Paper 001 Fig. 3: intra, inter, all-pairs and relative distance over the mask ratio, one line per pairing."""
    fig, axes = panel_grid(4, columns=4, panel_size=(3.4, 3.0))
    for index, (pairing, rows) in enumerate(curves.items()):
        ratios = [row["ratio"] for row in rows]
        for ax, key in zip(axes, ("intra", "inter", "all", "relative")):
            ax.plot(ratios, [row[key] for row in rows], marker="o", markersize=3, color=f"C{index}",
                    label=PAIRINGS[pairing])
        axes[3].axvline(sweet_spots[pairing], color=f"C{index}", linestyle=":",
                        label=f"minimum ({pairing}): r = {sweet_spots[pairing]:g}")
    for ax, key, name in zip(axes, ("intra", "inter", "all", "relative"),
                             ("(a) intra-class pairs", "(b) inter-class pairs", "(c) all pairs",
                              "(d) relative: intra / inter")):
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("mask ratio")
        ax.set_ylabel("distance ratio" if key == "relative" else "mean L2 distance")
        ax.grid(alpha=0.3)
    legend_below(fig, axes[3], columns=4)
    return save_figure(fig, path, title)


def run_mask_geometry(output_dir: str | Path, cfg: Config | None = None, ratios: tuple[float, ...] = DEFAULT_RATIOS,
                      num_images: int = 2000, repeats: int = 10, unit: int | None = None, seed: int = 0) -> dict:
    """``mimae analyze mask-geometry``: mask_geometry.png and mask_geometry.json.

    Uses the first ``num_images`` test images of ``cfg``'s dataset at its image and patch size (default config:
    Fashion-MNIST, 32 px, patch 4); ``unit`` is the masking unit in pixels (default: the config's). Ratios that
    would hide every unit of the image are left out.
    """
    cfg = cfg or load_config()
    images, labels, info = labelled_test_images(cfg, num_images)
    patch = cfg.model.patch_size
    unit_px = unit or cfg.mask.resolved()[1]
    units = (cfg.data.image_size // unit_px) ** 2
    ratios = tuple(r for r in ratios if int(units * (1 - r)) >= 1)  # a ratio that hides every unit has no view
    if not ratios:
        raise ValueError(f"no mask ratio keeps a unit of the {units} masking units of {unit_px} px")
    curves, sweet_spots = {}, {}
    for pairing in PAIRINGS:
        generator = torch.Generator().manual_seed(seed)
        curves[pairing] = [geometry_at_ratio(unit_images(images), labels, r, patch, unit_px // patch, repeats,
                                             generator, pairing) for r in ratios]
        sweet_spots[pairing] = min(curves[pairing], key=lambda row: row["relative"])["ratio"]
    figure = plot_geometry(curves, sweet_spots, Path(output_dir) / "mask_geometry.png",
                           f"Masked-view distances on {len(images)} {info.name} test images "
                           f"(patch {patch}, masking unit {unit_px} px)")
    data = write_json({"dataset": info.name, "images": len(images), "patch": patch, "unit": unit_px,
                       "repeats": repeats, "seed": seed, "sweet_spot": sweet_spots, "by_ratio": curves},
                      Path(output_dir) / "mask_geometry.json")
    return {"figures": [figure], "json": data, "sweet_spot": sweet_spots, "by_ratio": curves}
