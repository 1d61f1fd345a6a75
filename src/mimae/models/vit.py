"""The ViT encoder: timm's pre-norm blocks over the visible patch tokens plus a [CLS] token.

Module names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.i``,
``norm``), so the encoder's state dict loads into timm as it is (see ``mimae.checkpoint``).
"""

from __future__ import annotations

import functools

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from mimae.models.config import ModelConfig
from mimae.models.pos_embed import sincos_2d
from mimae.models.swin import SwinEncoder


def init_weights(module: nn.Module) -> None:
    """MAE's initialization: xavier-uniform linears with zero bias, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def transformer_blocks(dim: int, depth: int, heads: int, mlp_ratio: float, drop_path: float = 0.0) -> nn.ModuleList:
    """``depth`` timm pre-norm blocks (SDPA attention, qkv bias, LayerNorm eps 1e-6), drop path rising linearly."""
    rates = torch.linspace(0, drop_path, depth).tolist() if depth else []
    return nn.ModuleList(
        Block(dim, heads, mlp_ratio, qkv_bias=True, drop_path=rate,
              norm_layer=functools.partial(nn.LayerNorm, eps=1e-6))  # type: ignore[arg-type]  # timm takes a partial
        for rate in rates
    )


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Pick tokens per view. tokens (B, L, D); ids (B, K) or (B, N, K) -> (B, K, D) or (B*N, K, D).

    With N views per image the image's tokens are shared, so the patch embedding runs once per image.
    """
    b, length, dim = tokens.shape
    if ids.dim() == 2:
        return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, dim))
    n, k = ids.shape[1:]
    picked = torch.gather(tokens.unsqueeze(1).expand(b, n, length, dim), 2, ids.unsqueeze(-1).expand(-1, -1, -1, dim))
    return picked.reshape(b * n, k, dim)


class ViTEncoder(nn.Module):
    """Vision Transformer encoder that runs on visible tokens only.

    Args: ``img_size`` and ``patch_size`` in pixels, ``in_chans`` (1 for grayscale, 3 for RGB), width ``embed_dim``,
    ``depth`` blocks of ``num_heads`` heads.
    """

    def __init__(self, img_size: int = 32, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.embed_dim = self.token_dim = embed_dim
        self.output_stride = patch_size  # one output token per patch
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        rows, cols = self.patch_embed.grid_size
        self.grid: tuple[int, int] = (int(rows), int(cols))
        self.num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(sincos_2d(embed_dim, *self.grid).unsqueeze(0), requires_grad=False)
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(init_weights)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)

    def patch_positions(self) -> torch.Tensor:
        """(1, L, D): the position embedding of each patch (what a mask token adds to stand for its position)."""
        return self.pos_embed[:, 1:]

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, D): patch embeddings plus position embeddings, no [CLS]."""
        return self.patch_embed(images) + self.pos_embed[:, 1:]

    def with_cls(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend the [CLS] token (with its position). tokens (V, K, D) -> (V, 1+K, D)."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1)

    def run_blocks(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Blocks ``start`` to ``stop`` (exclusive; None: the last) on tokens (V, 1+K, D), no final norm."""
        for block in self.blocks[start:stop]:
            x = block(x)
        return x

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend [CLS], run the blocks and the final norm. tokens (V, K, D) -> (V, 1+K, D)."""
        return self.norm(self.run_blocks(self.with_cls(tokens)))

    def forward(self, images: torch.Tensor, keep_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the visible patches.

        images (B, C, H, W); keep_ids None (all patches), (B, K) or (B, N, K) indices of visible patches.
        Returns (V, 1+K, D) tokens after the final norm, V = B or B*N; token 0 is [CLS].
        """
        tokens = self.patch_tokens(images)
        if keep_ids is not None:
            tokens = gather_tokens(tokens, keep_ids)
        return self.forward_tokens(tokens)

    @torch.no_grad()
    def features(self, images: torch.Tensor, pool: str = "cls") -> torch.Tensor:
        """Frozen-feature read-out on unmasked images: (B, D), the [CLS] token or the mean of patch tokens."""
        tokens = self.forward(images)
        return tokens[:, 0] if pool == "cls" else tokens[:, 1:].mean(dim=1)


Encoder = ViTEncoder | SwinEncoder  # what build_encoder returns; both have .grid, .features(images, pool), ...


def build_encoder(model: ModelConfig, image_size: int, in_chans: int) -> Encoder:
    """The encoder a ``model`` section describes for ``image_size`` px inputs of ``in_chans`` channels, freshly
    initialized: a ViT, or a Swin for ``model.backbone=swin``."""
    if model.backbone == "swin":
        return SwinEncoder(image_size, model.patch_size, in_chans, model.embed_dim, model.stage_depths(),
                           model.num_heads, model.swin_window, model.mlp_ratio, model.drop_path)
    return ViTEncoder(image_size, model.patch_size, in_chans, model.embed_dim, model.depth, model.num_heads,
                      model.mlp_ratio, model.drop_path)
