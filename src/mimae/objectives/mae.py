"""MAE (He et al., 2022): reconstruct the hidden patches from the visible ones."""

from __future__ import annotations

import torch

from mimae.config import Config
from mimae.masking import Masks
from mimae.models import MAEDecoder
from mimae.models.patches import normalized_pixel_target, patchify
from mimae.objectives.base import Objective, register


def masked_patch_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE's loss: per-patch mean squared error, averaged over the hidden patches.

    pred, target (V, L, P); mask (V, L) with 1 = hidden. Returns a scalar (computed in float32).
    """
    per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


def pixel_target(images: torch.Tensor, patch: int, norm_pix: bool) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C) regression target, per-patch normalized when ``norm_pix``."""
    return normalized_pixel_target(images, patch) if norm_pix else patchify(images, patch)


@register("mae")
class MAE(Objective):
    """Encoder on visible patches, MAE decoder, norm-pix MSE on the hidden patches."""

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__(cfg, in_chans)
        dims = cfg.model.dims()
        p = cfg.model.patch_size
        self.decoder = MAEDecoder(self.grid, dims["embed_dim"], dims["decoder_dim"], dims["decoder_depth"],
                                  dims["decoder_heads"], p * p * in_chans, cfg.model.mlp_ratio)

    def reconstruct(self, images: torch.Tensor, masks: Masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode each view and decode it. Returns (latent (B*N, 1+K, D), predictions (B*N, L, p*p*C))."""
        keep, _ = masks.flat()
        latent = self.encoder(images, masks.keep if masks.num_views > 1 else masks.keep[:, 0])
        return latent, self.decoder(latent, keep)

    def reconstruction_loss(self, images: torch.Tensor, masks: Masks, pred: torch.Tensor) -> torch.Tensor:
        """The MAE loss averaged over all views (each view's images are the same image)."""
        target = pixel_target(images, self.cfg.model.patch_size, self.cfg.mae.norm_pix)
        target = target.repeat_interleave(masks.num_views, dim=0)
        return masked_patch_mse(pred, target, masks.flat()[1])

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        _, pred = self.reconstruct(images, masks)
        loss = self.reconstruction_loss(images, masks, pred)
        return {"loss": loss, "rec": loss.detach()}
