"""MAE (He et al., 2022): reconstruct the hidden patches from the visible ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mimae.config import param, register_section
from mimae.masking import Masks
from mimae.models import MAEDecoder
from mimae.models.patches import normalized_pixel_target, patchify
from mimae.objectives.base import Objective, RunSpec, register


@dataclass
class MAEConfig:
    norm_pix: bool = param(True, "regress per-patch normalized pixels (MAE's norm-pix target)")


register_section("mae", MAEConfig, "MAE objective (and the pixel target of every method that reconstructs pixels)")


def masked_patch_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE's loss: per-patch mean squared error, averaged over the hidden patches.

    pred, target (V, L, P); mask (V, L) with 1 = hidden. Returns a scalar (computed in float32).
    """
    per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


def pixel_target(images: torch.Tensor, patch: int, norm_pix: bool) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C) regression target, per-patch normalized when ``norm_pix``."""
    return normalized_pixel_target(images, patch) if norm_pix else patchify(images, patch)


def mae_decoder(spec: RunSpec, grid: tuple[int, int]) -> MAEDecoder:
    """MAE's decoder with the ``model`` section's decoder sizes, predicting each patch's pixels."""
    m = spec.model
    return MAEDecoder(grid, m.embed_dim, m.decoder_dim, m.decoder_depth, m.decoder_heads, spec.patch_pixels,
                      m.mlp_ratio)


@register("mae")
class MAE(Objective):
    """Encoder on visible patches, MAE decoder, norm-pix MSE on the hidden patches."""

    sections: tuple[str, ...] = ("mae",)

    def __init__(self, spec: RunSpec, mae: MAEConfig):
        super().__init__(spec)
        self.options = mae
        self.decoder = mae_decoder(spec, self.grid)

    @property
    def norm_pix(self) -> bool:
        """Whether the predictions are per-patch normalized pixels (else the standardized pixels)."""
        return self.options.norm_pix

    def reconstruct(self, images: torch.Tensor, masks: Masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode each view and decode it. Returns (latent (B*N, 1+K, D), predictions (B*N, L, p*p*C))."""
        keep, _ = masks.flat()
        latent = self.encoder(images, masks.keep if masks.num_views > 1 else masks.keep[:, 0])
        return latent, self.decoder(latent, keep)

    def reconstruction_loss(self, images: torch.Tensor, masks: Masks, pred: torch.Tensor) -> torch.Tensor:
        """The MAE loss averaged over all views (each view's images are the same image)."""
        target = pixel_target(images, self.spec.model.patch_size, self.options.norm_pix)
        target = target.repeat_interleave(masks.num_views, dim=0)
        return masked_patch_mse(pred, target, masks.flat()[1])

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        _, pred = self.reconstruct(images, masks)
        loss = self.reconstruction_loss(images, masks, pred)
        return {"loss": loss, "rec": loss.detach()}
