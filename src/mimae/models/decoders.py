"""Decoders that map encoder tokens back to pixels."""

from __future__ import annotations

import torch
from torch import nn

from mimae.models.pos_embed import sincos_2d
from mimae.models.vit import init_weights, transformer_blocks


class MAEDecoder(nn.Module):
    """MAE's decoder: Linear(D, Dd), a mask token at every hidden patch, Dd-wide blocks, Linear(Dd, p*p*C).

    ``grid`` is the patch grid (h, w); ``out_dim`` = patch*patch*channels.
    """

    def __init__(self, grid: tuple[int, int], encoder_dim: int, dim: int, depth: int, num_heads: int,
                 out_dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_patches = grid[0] * grid[1]
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(sincos_2d(dim, *grid).unsqueeze(0), requires_grad=False)
        self.blocks = transformer_blocks(dim, depth, num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, out_dim)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: torch.Tensor, keep_ids: torch.Tensor) -> torch.Tensor:
        """tokens (V, 1+K, D) from the encoder, keep_ids (V, K) -> per-patch predictions (V, L, out_dim)."""
        x = self.embed(tokens)
        v, _, dim = x.shape
        full = self.mask_token.to(x.dtype).expand(v, self.num_patches, dim)
        full = full.scatter(1, keep_ids.unsqueeze(-1).expand(-1, -1, dim), x[:, 1:])
        x = torch.cat([x[:, :1], full], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]
