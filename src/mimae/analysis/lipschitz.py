"""Empirical Lipschitz estimate of the MAE decoder along training (paper 001, Sec. 3.2 and Appendix B.1).

Paper 001 bounds MAE's loss by an alignment term and checks that the decoder g is smooth on its inputs: for the two
complementary views of an image, x1 (the visible patches) and x2 (the hidden ones),

    ratio = || g(f(x1), p_x2) - g(f(x2), p_x2) ||^2  /  || f(x1) - f(x2) ||^2,

where f(x) is the encoding of a view and g(., p_x2) the decoder's prediction at x2's positions.

The two encodings hold different numbers of tokens at different positions, so the ratio is taken where they have the
same shape: the decoder's input sequence, i.e. the encoder tokens after the decoder's embedding, scattered to their
patch positions with the mask token at every other position, plus [CLS] (V, 1+L, Dd), before the position
embedding (which both views share). g is the rest of the decoder (position embedding, blocks, norm, prediction),
and the numerator sums over the patches of x2 in the prediction space (norm-pix patches). The estimate is reported
per image (mean, median and max over the evaluated test images) for each checkpoint of a run, kept with
``train.keep_checkpoints=true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch

from mimae.analysis.loading import Pretrained, labelled_test_images, load_pretrained, model_input
from mimae.masking import draw_masks
from mimae.models import MAEDecoder
from mimae.plotting import panel_grid, save_figure, write_json
from mimae.runs import epoch_checkpoints, resolve


def decoder_input(decoder: MAEDecoder, latent: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Encoder tokens (V, 1+K, D) of the patches ``keep`` (V, K) -> the decoder's token sequence (V, 1+L, Dd):
    embedded tokens at their positions, the mask token elsewhere, [CLS] first; no position embedding yet."""
    x = decoder.embed(latent)
    v, _, dim = x.shape
    full = decoder.mask_token.to(x.dtype).expand(v, decoder.num_patches, dim)
    full = full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, dim), x[:, 1:])
    return torch.cat([x[:, :1], full], dim=1)


def decoder_output(decoder: MAEDecoder, tokens: torch.Tensor) -> torch.Tensor:
    """The rest of the decoder: sequence (V, 1+L, Dd) -> per-patch predictions (V, L, p*p*C)."""
    x = tokens + decoder.pos_embed
    for block in decoder.blocks:
        x = block(x)
    return decoder.pred(decoder.norm(x))[:, 1:]


def complementary_keep(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch masks (V, L), 1 = hidden, the same count per row -> (visible ids (V, K), hidden ids (V, L-K))."""
    order = mask.argsort(dim=1, stable=True)
    visible = int((mask[0] == 0).sum())
    return order[:, :visible], order[:, visible:]


@torch.no_grad()
def lipschitz_ratios(model: Pretrained, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image ratio (V,) for standardized images (V, C, H, W) and masks (V, L) (1 = hidden, i.e. view x2)."""
    encoder, decoder = model.objective.encoder, cast(MAEDecoder, model.objective.decoder)
    keep1, keep2 = complementary_keep(mask)
    u1 = decoder_input(decoder, encoder(inputs, keep1), keep1)
    u2 = decoder_input(decoder, encoder(inputs, keep2), keep2)
    diff = (decoder_output(decoder, u1) - decoder_output(decoder, u2)).pow(2).sum(dim=-1)  # (V, L)
    return (diff * mask).sum(dim=1) / (u1 - u2).pow(2).flatten(1).sum(dim=1)


def checkpoint_estimate(model: Pretrained, images: torch.Tensor, info, ratio: float | None, batch_size: int,
                        seed: int) -> dict:
    """Ratios over uint8 images (N, C, H, W) at ``ratio`` (default: the training ratio): summary statistics."""
    if not isinstance(getattr(model.objective, "decoder", None), MAEDecoder):
        raise ValueError(f"{model.path}: method {model.cfg.method!r} has no MAE decoder")
    trained_ratio, unit_px = model.cfg.mask.resolved()
    ratio = trained_ratio if ratio is None else ratio
    if ratio <= 0:
        raise ValueError("the Lipschitz estimate needs hidden patches: use a mask ratio above 0")
    generator = torch.Generator().manual_seed(seed)
    unit = unit_px // model.cfg.model.patch_size
    device = next(model.objective.parameters()).device
    ratios = []
    for batch in images.split(batch_size):
        mask = draw_masks("random", len(batch), model.objective.grid, ratio, 1, unit, generator).mask[:, 0]
        ratios.append(lipschitz_ratios(model, model_input(batch, info, device), mask.to(device)).cpu())
    values = torch.cat(ratios)
    return {"checkpoint": str(model.path), "step": model.step, "mask_ratio": ratio, "images": len(values),
            "mean": float(values.mean()), "median": float(values.median()), "max": float(values.max())}


def training_checkpoints(paths: list[str | Path]) -> list[Path]:
    """Run folders expand to their kept ``checkpoint-epoch<N>.pt`` files (in epoch order; the latest
    ``checkpoint.pt`` if none were kept); files stay as they are."""
    files = []
    for path in map(Path, paths):
        kept = epoch_checkpoints(path) if path.is_dir() else []
        files += kept or [resolve(path)]
    return files


def run_lipschitz(checkpoints: list[str | Path], output_dir: str | Path, num_images: int = 1000,
                  ratio: float | None = None, batch_size: int = 256, seed: int = 0, device: str = "cpu",
                  data_dir: str | None = None) -> dict:
    """``mimae analyze lipschitz``: lipschitz.png (the estimate against the training step) and lipschitz.json."""
    rows = []
    for path in training_checkpoints(checkpoints):
        model = load_pretrained(path, device, data_dir)
        images, _, info = labelled_test_images(model.cfg, num_images)
        rows.append({"label": model.label, **checkpoint_estimate(model, images, info, ratio, batch_size, seed)})
    fig, (ax,) = panel_grid(1, panel_size=(6.0, 3.8))
    runs: dict[str, list[dict]] = {}
    for row in rows:
        runs.setdefault(Path(row["checkpoint"]).parent.name, []).append(row)
    for index, (run, points) in enumerate(runs.items()):
        steps = [p["step"] for p in points]
        ax.plot(steps, [p["mean"] for p in points], marker="o", color=f"C{index}", label=f"{run}: mean")
        ax.plot(steps, [p["median"] for p in points], marker="s", linestyle="--", color=f"C{index}",
                label=f"{run}: median")
        ax.plot(steps, [p["max"] for p in points], marker="^", linestyle=":", color=f"C{index}", label=f"{run}: max")
    ax.set_xlabel("training step")
    ax.set_ylabel("||g(f(x1)) - g(f(x2))||² / ||f(x1) - f(x2)||²")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    figure = save_figure(fig, Path(output_dir) / "lipschitz.png",
                         f"Decoder Lipschitz estimate on complementary views ({rows[0]['images']} test images)")
    data = write_json({"seed": seed, "checkpoints": rows}, Path(output_dir) / "lipschitz.json")
    return {"figures": [figure], "json": data, "checkpoints": rows}
