"""Self-attention maps (paper 003, Fig. 6-7): the [CLS] token's attention and a chosen patch token's attention in
the encoder's last block, averaged over heads, overlaid on the image.

Training runs timm's fused attention (``scaled_dot_product_attention``), which never forms the weights. Inside
:func:`recording_attention` every block computes the explicit softmax instead (``fused_attn = False``) and a forward
hook on ``attn_drop`` (identity in eval mode) records the weights; the block outputs are the same either way.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention, Block

from mimae.analysis.loading import Pretrained, labelled_test_images, load_pretrained, model_input, unit_images
from mimae.config import ConfigError
from mimae.models import ViTEncoder
from mimae.plotting import plt, save_figure, show_image, write_json


@contextlib.contextmanager
def recording_attention(encoder: ViTEncoder):
    """Within the block, ``encoder`` forwards record each block's attention weights into the yielded list:
    one (V, heads, 1+K, 1+K) tensor per block per forward, in order. The fused path is restored on exit."""
    weights: list[torch.Tensor] = []
    attns = [cast(Attention, cast(Block, block).attn) for block in encoder.blocks]
    fused = [attn.fused_attn for attn in attns]
    hooks = [attn.attn_drop.register_forward_hook(lambda _m, _i, out: weights.append(out.detach())) for attn in attns]
    for attn in attns:  # the unfused path exposes the weights (timm declares the switch Final)
        attn.fused_attn = False  # type: ignore[misc]
    try:
        yield weights
    finally:
        for attn, was_fused, hook in zip(attns, fused, hooks):
            attn.fused_attn = was_fused  # type: ignore[misc]
            hook.remove()


@torch.no_grad()
def last_block_attention(encoder: ViTEncoder, inputs: torch.Tensor) -> torch.Tensor:
    """Head-averaged attention of the last block on unmasked images: inputs (B, C, H, W) -> (B, 1+L, 1+L).

    Row q is the distribution of query token q over all tokens (token 0 is [CLS]); each row sums to 1.
    """
    with recording_attention(encoder) as weights:
        encoder(inputs)
    return weights[-1].mean(dim=1)


def token_maps(attention: torch.Tensor, query: int, grid: tuple[int, int]) -> torch.Tensor:
    """Attention of one query token over the patch tokens, as maps: (B, 1+L, 1+L) -> (B, grid_h, grid_w).

    ``query`` 0 is [CLS], 1 + i is patch i (row-major). The attention paid to [CLS] itself is left out, and each map
    is renormalized to sum to 1 over the patches.
    """
    maps = attention[:, query, 1:]
    return (maps / maps.sum(dim=-1, keepdim=True)).reshape(-1, *grid)


def normalized_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Entropy of each map (B, h, w), a distribution over h*w patches, divided by log(h*w): 1 = uniform. (B,)."""
    p = maps.flatten(1)
    return -(p * p.clamp_min(1e-12).log()).sum(dim=1) / math.log(p.shape[1])


def default_token(images: torch.Tensor, patch: int) -> torch.Tensor:
    """For each uint8 image (B, C, H, W), the patch (row-major index) with the most ink: a token on the object."""
    patches = F.avg_pool2d(images.float().mean(dim=1, keepdim=True), patch)
    return patches.flatten(1).argmax(dim=1)


def overlay(ax, image: torch.Tensor, attention_map: torch.Tensor, title: str | None = None) -> None:
    """The image in gray with the (h, w) attention map upsampled over it as a heat map."""
    show_image(ax, image, title)
    h, w = image.shape[-2:]
    ax.imshow(attention_map.cpu().numpy(), cmap="inferno", alpha=0.6, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
              interpolation="bilinear")


def mark_patch(ax, token: int, grid: tuple[int, int], patch: int) -> None:
    """Outline patch ``token`` (row-major) with a red square."""
    row, col = divmod(int(token), grid[1])
    ax.add_patch(plt.Rectangle((col * patch - 0.5, row * patch - 0.5), patch, patch, fill=False, edgecolor="red",
                               linewidth=1.5))


def plot_attention(models: list[Pretrained], images: torch.Tensor, cls_maps: list[torch.Tensor],
                   chosen_maps: list[torch.Tensor], tokens: torch.Tensor, path: Path) -> Path:
    """Columns are images; rows: the image, then per checkpoint its [CLS] map and its chosen-token map."""
    count, rows = len(images), 1 + 2 * len(models)
    fig, axes = plt.subplots(rows, count, figsize=(1.05 * count + 1.6, 1.1 * rows), squeeze=False)
    patch = models[0].cfg.model.patch_size
    grid = models[0].objective.grid
    for c in range(count):
        image = unit_images(images[c])
        show_image(axes[0][c], image)
        for m in range(len(models)):
            overlay(axes[1 + 2 * m][c], image, cls_maps[m][c])
            overlay(axes[2 + 2 * m][c], image, chosen_maps[m][c])
            mark_patch(axes[2 + 2 * m][c], int(tokens[c]), grid, patch)
    labels = ["image"] + [f"{model.name}\n{kind}" for model in models
                          for kind in ("[CLS]", "red-square token")]
    for ax, label in zip(axes[:, 0], labels):
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return save_figure(fig, path, "Last-block attention, mean over heads (color scale per map)")


def run_attention(checkpoints: list[str | Path], output_dir: str | Path, num_images: int = 6,
                  token: int | None = None, entropy_images: int = 1000, batch_size: int = 256,
                  device: str = "cpu", data_dir: str | None = None) -> dict:
    """``mimae analyze attention``: attention.png and attention.json.

    The figure shows the first ``num_images`` test images; ``token`` is the chosen patch (row-major index; default:
    each image's brightest patch). The JSON holds the plotted maps and, over the first ``entropy_images`` test
    images, the mean normalized entropy of the [CLS] map (1 = uniform attention, lower = more focused).
    """
    output_dir = Path(output_dir)
    models = [load_pretrained(path, device, data_dir) for path in checkpoints]
    encoders = []
    for model in models:
        if not isinstance(model.objective.encoder, ViTEncoder):
            raise ConfigError(f"{model.path}: attention maps read a ViT's [CLS] attention; this run's backbone is "
                              f"{model.cfg.model.backbone}")
        encoders.append(model.objective.encoder)
    images, labels, info = labelled_test_images(models[0].cfg, max(num_images, entropy_images))
    shown = images[:num_images]
    patch = models[0].cfg.model.patch_size
    tokens = default_token(shown, patch) if token is None else torch.full((len(shown),), token)
    cls_maps, chosen_maps, summaries = [], [], []
    for model, encoder in zip(models, encoders):
        grid = model.objective.grid
        attention = last_block_attention(encoder, model_input(shown, info, device)).cpu()
        cls_maps.append(token_maps(attention, 0, grid))
        chosen_maps.append(torch.stack([token_maps(attention[i:i + 1], 1 + int(t), grid)[0]
                                        for i, t in enumerate(tokens)]))
        entropies = torch.cat([
            normalized_entropy(token_maps(last_block_attention(encoder, model_input(batch, info, device)).cpu(),
                                          0, grid))
            for batch in images[:entropy_images].split(batch_size)])
        summaries.append({"checkpoint": str(model.path), "label": model.label,
                          "cls_entropy_mean": float(entropies.mean()), "cls_entropy_std": float(entropies.std()),
                          "entropy_images": len(entropies), "cls_maps": cls_maps[-1], "token_maps": chosen_maps[-1]})
    figure = plot_attention(models, shown, cls_maps, chosen_maps, tokens, output_dir / "attention.png")
    data = write_json({"tokens": tokens, "labels": labels[:num_images], "checkpoints": summaries},
                      output_dir / "attention.json")
    return {"figures": [figure], "json": data,
            "checkpoints": [{k: v for k, v in s.items() if not k.endswith("_maps")} for s in summaries]}
