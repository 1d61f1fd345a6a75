"""Reconstructions (paper 003, Fig. 5): image grids, and SSIM / FSIM / PSNR / MSE against the original.

The decoder predicts every patch. With MAE's norm-pix target a prediction is a standardized patch, so it is mapped
back to pixels with the TRUE mean and standard deviation of that patch in the original image (as MAE's official
visualization does), then the dataset standardization is undone and the result clipped to [0, 1].

Two images are compared with the original:

* ``decoded``: the decoder's output at every patch. Evaluated without masking (ratio 0) this is paper 003's Fig. 5
  setting ("reconstruction evaluation using the validation set without masking").
* ``pasted``: the visible patches of the original with the decoder's output at the hidden ones (what an inpainting
  looks like); defined only when some patch is hidden.

SSIM, FSIM and PSNR come from ``piq`` on [0, 1] images (SSIM: 11x11 Gaussian window, sigma 1.5; FSIM: the
luminance-only FSIM for one channel, FSIMc for RGB); MSE is the mean squared pixel error on the [0, 1] scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import piq
import torch

from mimae.analysis.loading import Pretrained, labelled_test_images, load_pretrained, model_input, unit_images
from mimae.data import DataInfo
from mimae.masking import Masks, draw_masks
from mimae.models import Encoder
from mimae.models.patches import patchify, unpatchify
from mimae.plotting import legend_below, panel_grid, plt, save_figure, show_image, write_json

METRICS = ("ssim", "fsim", "psnr", "mse")
DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 0.9)
HIDDEN_GRAY = 0.5  # how hidden patches are drawn in the "masked" row


@dataclass
class Reconstruction:
    """Images in [0, 1], each (B, C, H, W); ``hidden`` (B, 1, H, W) is 1 on the pixels of hidden patches."""

    original: torch.Tensor
    masked: torch.Tensor
    decoded: torch.Tensor
    pasted: torch.Tensor
    hidden: torch.Tensor


def unstandardize(images: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """Undo the dataset standardization: (B, C, H, W) -> the [0, 1] pixel scale (not clipped)."""
    mean = torch.tensor(info.mean, device=images.device).reshape(-1, 1, 1)
    std = torch.tensor(info.std, device=images.device).reshape(-1, 1, 1)
    return images * std + mean


def predictions_to_pixels(pred: torch.Tensor, inputs: torch.Tensor, patch: int, norm_pix: bool,
                          info: DataInfo) -> torch.Tensor:
    """Decoder predictions (B, L, p*p*C) -> images (B, C, H, W) in [0, 1].

    ``inputs`` (B, C, H, W) are the standardized images the model saw; with ``norm_pix`` each predicted patch is
    rescaled with the mean and standard deviation of the same patch of ``inputs`` (eps 1e-6, as the target).
    """
    if norm_pix:
        target = patchify(inputs, patch)
        mean = target.mean(dim=-1, keepdim=True)
        std = (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
        pred = pred * std + mean
    grid = (inputs.shape[-2] // patch, inputs.shape[-1] // patch)
    return unstandardize(unpatchify(pred, patch, inputs.shape[1], grid), info).clamp(0, 1)


def hidden_pixels(mask: torch.Tensor, patch: int, grid: tuple[int, int]) -> torch.Tensor:
    """Patch mask (B, L), 1 = hidden -> pixel mask (B, 1, grid_h * patch, grid_w * patch)."""
    ones = mask.unsqueeze(-1).expand(-1, -1, patch * patch)
    return unpatchify(ones, patch, 1, grid)


@runtime_checkable
class Reconstructing(Protocol):
    """An objective with a pixel decoder (MAE, U-MAE, MI-MAE, SimMIM, MRCL with its reconstruction term)."""

    encoder: Encoder
    grid: tuple[int, int]

    @property
    def norm_pix(self) -> bool: ...

    def reconstruct(self, images: torch.Tensor, masks: Masks) -> tuple[torch.Tensor, torch.Tensor]: ...


@torch.no_grad()
def reconstruct(model: Pretrained, images: torch.Tensor, info: DataInfo, masks: Masks) -> Reconstruction:
    """Run encoder and decoder on uint8 images (B, C, H, W) with one mask view per image."""
    objective = model.objective
    if not isinstance(objective, Reconstructing):
        raise ValueError(f"{model.path}: method {model.cfg.method!r} has no pixel decoder to reconstruct with")
    device = next(objective.parameters()).device
    inputs = model_input(images, info, device)
    masks = masks.to(device)
    _, pred = objective.reconstruct(inputs, masks)
    patch = model.cfg.model.patch_size
    stride = objective.encoder.output_stride  # the pixels each prediction covers (a Swin's last stage: a block)
    decoded = predictions_to_pixels(pred.float(), inputs, stride, objective.norm_pix, info).cpu()
    original = unit_images(images)
    hidden = hidden_pixels(masks.mask[:, 0].cpu(), patch, objective.grid)
    return Reconstruction(original=original, masked=original * (1 - hidden) + HIDDEN_GRAY * hidden,
                          decoded=decoded, pasted=original * (1 - hidden) + decoded * hidden, hidden=hidden)


def image_quality(images: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image SSIM, FSIM, PSNR (dB) and MSE of ``images`` against ``reference``, both (B, C, H, W) in [0, 1].

    Returns a dict of (B,) tensors. PSNR of identical images is capped by piq's epsilon (80 dB). SSIM's Gaussian
    window is 11 px, or the largest odd size that fits images smaller than that (``data.image_size`` may be 8).
    """
    x, y = images.float().clamp(0, 1), reference.float().clamp(0, 1)
    side = min(x.shape[-2:])
    window = min(11, side if side % 2 else side - 1)
    return {
        "ssim": piq.ssim(x, y, data_range=1.0, reduction="none", kernel_size=window),
        "fsim": piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=x.shape[1] == 3),
        "psnr": piq.psnr(x, y, data_range=1.0, reduction="none"),
        "mse": (x - y).pow(2).flatten(1).mean(dim=1),
    }


def model_masks(model: Pretrained, batch: int, ratio: float, unit: int | None,
                generator: torch.Generator) -> Masks:
    """One random mask per image at ``ratio``; ``unit`` in pixels (None: the checkpoint's own masking unit)."""
    unit_px = unit or model.cfg.mask.resolved()[1]
    return draw_masks("random", batch, model.objective.grid, ratio, 1, unit_px // model.cfg.model.patch_size,
                      generator)


def quality_at_ratio(model: Pretrained, images: torch.Tensor, info: DataInfo, ratio: float, unit: int | None,
                     batch_size: int, seed: int) -> dict:
    """Mean metrics over uint8 images (N, C, H, W) at one evaluation mask ratio: {"decoded": {...}, "pasted": ...}."""
    generator = torch.Generator().manual_seed(seed)
    sums = {"decoded": dict.fromkeys(METRICS, 0.0), "pasted": dict.fromkeys(METRICS, 0.0)}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        rec = reconstruct(model, batch, info, model_masks(model, len(batch), ratio, unit, generator))
        for kind in sums:
            for name, values in image_quality(getattr(rec, kind), rec.original).items():
                sums[kind][name] += float(values.sum())
    means = {kind: {name: total / len(images) for name, total in values.items()} for kind, values in sums.items()}
    return {"ratio": ratio, "decoded": means["decoded"], "pasted": means["pasted"] if ratio > 0 else None}


GRID_TITLE = "Original / masked input / decoder output / visible patches pasted back"


def grid_rows(model: Pretrained, images: torch.Tensor, info: DataInfo, ratio: float | None = None,
              unit: int | None = None, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The rows of a reconstruction grid for uint8 images (B, C, H, W): original, masked at ``ratio`` (None: the
    ratio the model was trained with), decoded, and the visible patches pasted back over the decoded ones."""
    ratio = model.cfg.mask.resolved()[0] if ratio is None else ratio
    rec = reconstruct(model, images, info, model_masks(model, len(images), ratio, unit,
                                                       torch.Generator().manual_seed(seed)))
    return [("original", rec.original), (f"{model.name}\nmasked {ratio:g}", rec.masked),
            (f"{model.name}\ndecoded", rec.decoded), (f"{model.name}\npasted", rec.pasted)]


def plot_grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str) -> Path:
    """One row per (label, images (B, C, H, W)); columns are the images."""
    count = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), count, figsize=(1.05 * count + 1.6, 1.1 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(count):
            show_image(axes[r][c], images[c])
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return save_figure(fig, path, title)


def plot_quality(results: list[dict], path: Path, num_images: int) -> Path:
    """SSIM, FSIM, PSNR and -MSE over evaluation mask ratios; one color per checkpoint, solid decoded, dashed pasted."""
    fig, axes = panel_grid(len(METRICS), columns=4, panel_size=(3.6, 3.0))
    for index, result in enumerate(results):
        color = f"C{index}"
        for kind, style in (("decoded", "-"), ("pasted", "--")):
            points = [(row["ratio"], row[kind]) for row in result["by_ratio"] if row[kind] is not None]
            for ax, name in zip(axes, METRICS):
                sign = -1.0 if name == "mse" else 1.0
                ax.plot([p[0] for p in points], [sign * p[1][name] for p in points], style, marker="o", color=color,
                        label=f"{result['label']}: {kind}")
    for ax, name in zip(axes, METRICS):
        ax.set_xlabel("evaluation mask ratio")
        ax.set_ylabel("-MSE" if name == "mse" else name.upper() + (" (dB)" if name == "psnr" else ""))
        ax.grid(alpha=0.3)
    legend_below(fig, axes[0])
    return save_figure(fig, path, f"Reconstruction vs original ({num_images} test images; higher is better)")


def run_reconstruct(checkpoints: list[str | Path], output_dir: str | Path, ratios: tuple[float, ...] = DEFAULT_RATIOS,
                    unit: int | None = None, eval_images: int = 1000, grid_images: int = 8,
                    grid_ratio: float | None = None, batch_size: int = 256, seed: int = 0,
                    device: str = "cpu", data_dir: str | None = None) -> dict:
    """``mimae analyze reconstruct``: the grid (reconstruct_grid.png) and the metrics (reconstruct_metrics.png/.json).

    The grid masks each checkpoint's images at ``grid_ratio`` (default: the ratio it was trained with); the metrics
    are averaged over the first ``eval_images`` test images at each evaluation ratio in ``ratios``.
    """
    output_dir = Path(output_dir)
    results: list[dict] = []
    rows: list[tuple[str, torch.Tensor]] = []
    for path in checkpoints:
        model = load_pretrained(path, device, data_dir)
        images, _, info = labelled_test_images(model.cfg, max(eval_images, grid_images))
        model_rows = grid_rows(model, images[:grid_images], info, grid_ratio, unit, seed)
        rows += model_rows[1:] if rows else model_rows
        by_ratio = [quality_at_ratio(model, images[:eval_images], info, r, unit, batch_size, seed) for r in ratios]
        results.append({"checkpoint": str(model.path), "label": model.label, "method": model.cfg.method,
                        "train_mask_ratio": model.cfg.mask.ratio,
                        "train_mask_unit": model.cfg.mask.unit,
                        "eval_mask_unit": unit or model.cfg.mask.unit,
                        "images": min(eval_images, len(images)), "by_ratio": by_ratio})
    grid = plot_grid(rows, output_dir / "reconstruct_grid.png", GRID_TITLE)
    figure = plot_quality(results, output_dir / "reconstruct_metrics.png", int(results[0]["images"]))
    data = write_json({"metrics": list(METRICS), "seed": seed, "checkpoints": results},
                      output_dir / "reconstruct_metrics.json")
    return {"figures": [grid, figure], "json": data, "checkpoints": results}
