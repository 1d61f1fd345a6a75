"""The Swin encoder of SimMIM and MI-SimMIM (paper 000, Tab. 1: Swin-B), timm's ``SwinTransformer`` behind the
encoder interface of :class:`mimae.models.vit.ViTEncoder`.

SimMIM replaces the embeddings of masked patches by a mask token before the first stage; every patch then goes
through the stages (a Swin cannot drop tokens), and the last stage's tokens, at ``output_stride`` pixels, predict
their pixels. Swin has no [CLS] token: token 0 of the output is the mean of the last stage's tokens after the final
norm, which is timm's own image read-out (``global_pool="avg"``), so the evaluations read it as they read a ViT's
[CLS]. The timm model is ``self.swin``: its state dict is timm's, and it fine-tunes as it is.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from timm.layers import PatchEmbed
from timm.models.swin_transformer import SwinTransformer
from torch import nn


class SwinEncoder(nn.Module):
    """Swin over all patches of (B, C, H, W) images: ``embed_dim`` wide after the patch embedding, doubling per
    stage; ``depths`` blocks per stage with ``num_heads`` heads in the first, doubling too; windows of ``window``
    tokens a side."""

    def __init__(self, img_size: int = 32, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 64,
                 depths: tuple[int, ...] = (2, 2, 2), num_heads: int = 2, window: int = 4, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__()
        # timm's SwinTransformer arguments of this architecture (the export and the fine-tuning model rebuild it)
        self.timm_args: dict[str, Any] = {
            "img_size": img_size, "patch_size": patch_size, "in_chans": in_chans, "embed_dim": embed_dim,
            "depths": tuple(depths), "num_heads": tuple(num_heads * 2 ** i for i in range(len(depths))),
                          "window_size": window, "mlp_ratio": mlp_ratio}
        self.swin = SwinTransformer(**self.timm_args, num_classes=0, drop_path_rate=drop_path)
        self.patch_size, self.in_chans = patch_size, in_chans
        self.token_dim = embed_dim  # width of the patch embeddings (and of SimMIM's mask token)
        self.embed_dim = self.swin.num_features  # width of the output tokens
        rows, cols = cast(PatchEmbed, self.swin.patch_embed).grid_size
        self.grid: tuple[int, int] = (int(rows), int(cols))
        self.num_patches = self.grid[0] * self.grid[1]
        self.output_stride = patch_size * 2 ** (len(depths) - 1)
        if img_size % self.output_stride:
            raise ValueError(f"a Swin of {len(depths)} stages on {patch_size} px patches has an output stride of "
                             f"{self.output_stride} px, which does not tile {img_size} px images")

    def patch_positions(self) -> torch.Tensor:
        """What a mask token adds to stand for its position: nothing, Swin's positions are in its attention."""
        return torch.zeros(())

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, token_dim) patch embeddings in row-major order."""
        return self.swin.patch_embed(images).flatten(1, 2)

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every patch's embedding (V, L, token_dim) -> (V, 1+T, D): the mean token, then the T tokens of the last
        stage after the final norm."""
        x = tokens.reshape(tokens.shape[0], *self.grid, tokens.shape[-1])
        x = self.swin.norm(self.swin.layers(x)).flatten(1, 2)
        return torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)

    def forward(self, images: torch.Tensor, keep_ids: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, C, H, W) -> (B, 1+T, D); a Swin sees every patch (``keep_ids`` must be None)."""
        if keep_ids is not None:
            raise ValueError("a Swin encoder cannot drop patches: mask them with a mask token (simmim, mi-simmim)")
        return self.forward_tokens(self.patch_tokens(images))

    @torch.no_grad()
    def features(self, images: torch.Tensor, pool: str = "cls") -> torch.Tensor:
        """Frozen-feature read-out on unmasked images: (B, D), the mean of the last stage's tokens (either pool)."""
        return self.forward(images)[:, 0]
