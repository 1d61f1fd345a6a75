"""MI-MAE (paper 000, Alg. 1): MAE over N masks per image plus mutual-information terms on the latents.

L = lambda1 * L_rec + gate * (lambda2 * L_max + lambda3 * L_min) + L_approx, where L_rec is MAE's loss averaged over
the N views and the MI terms come from :mod:`mimae.objectives.mi_terms`. The decoder learns from L_rec only, the
encoder from L_rec, L_max and L_min, q_theta from L_approx only.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from mimae.masking import MaskConfig, Masks, draw_masks
from mimae.models import Encoder, ViTEncoder
from mimae.models.vit import gather_tokens
from mimae.objectives.base import RunSpec, ema_update, register
from mimae.objectives.mae import MAE, MAEConfig
from mimae.objectives.mi_terms import MIMAEConfig, MutualInformationTerms, view_count


@register("mimae")
class MIMAE(MAE):
    """MAE encoder and decoder on B*N masked views (one batched forward) with L_max, L_min, L_approx and the gate."""

    default_views = 4  # N for mimae.views=auto

    sections = ("mae", "mimae")

    def __init__(self, spec: RunSpec, mae: MAEConfig, mimae: MIMAEConfig):
        super().__init__(spec, mae)
        self.mi_options = mimae
        self.crops = mimae.crops
        self.mi = MutualInformationTerms.for_encoder(mimae, self.encoder, spec.model.patch_size, spec.in_chans)
        self.target_encoder: Encoder | None = None  # positives=target: an EMA copy that sees the unmasked image
        if mimae.positives == "target":
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)

    @classmethod
    def crops_per_image(cls, **sections: Any) -> int:
        return sections["mimae"].crops

    @classmethod
    def masks_per_crop(cls, mask: MaskConfig, **sections: Any) -> int:
        return view_count(sections["mimae"].views, mask.resolved()[0], cls.default_views)

    @property
    def views_per_image(self) -> int:
        return self.masks_per_crop(self.spec.mask, mimae=self.mi_options)

    def lr_scales(self) -> dict[str, float]:
        return {"mi.approx.": self.mi_options.approx_lr_scale}

    def training_summary(self) -> tuple[dict[str, Any], list[str]]:
        return self.mi.summary()

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        """N masks for each crop of ``batch`` images: keep (batch * crops, N, K), crops of an image adjacent."""
        return draw_masks(self.mi_options.masking, batch * self.crops, self.grid, self.mask_ratio,
                          self.views_per_image, self.unit, generator, device)

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        """images (B, C, H, W), or (B, crops, C, H, W) with ``mimae.crops`` > 1; masks with N views per crop. Returns
        the total loss and the detached terms."""
        if self.crops > 1:
            images = images.flatten(0, 1)  # (B * crops, C, H, W), an image's crops adjacent as their masks are
        b, n = masks.keep.shape[:2]
        latent, mi_tokens = self.encode(images, masks)
        pred = self.decoder(latent, masks.flat()[0])
        rec = self.reconstruction_loss(images, masks, pred)
        z = self.mi.latent(mi_tokens).reshape(b, n, -1)
        target = None
        if self.target_encoder is not None:
            with torch.no_grad():
                target = self.mi.target_latent(self.target_encoder(images))
        inputs = self.mi.approx_inputs(self.encoder, images, masks.keep, self.spec.model.patch_size)
        terms = self.mi(z, inputs, target, self.crops)
        loss = self.mi_options.lambda_rec * rec + terms.pop("loss")
        return {"loss": loss, "rec": rec.detach(), **terms}

    def encode(self, images: torch.Tensor, masks: Masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the B*N views once: (the tokens the decoder reads, after the final norm, (B*N, 1+K, D); the tokens
        the MI terms read: the same, or block ``latent_block``'s output, or the top ``top_blocks`` blocks rerun on
        their detached input)."""
        encoder, options = self.encoder, self.mi_options
        assert isinstance(encoder, ViTEncoder)  # mimae trains a ViT
        x = encoder.with_cls(gather_tokens(encoder.patch_tokens(images), masks.keep))
        split = options.latent_block or (len(encoder.blocks) - options.top_blocks if options.top_blocks else 0)
        if not split:
            latent = encoder.norm(encoder.run_blocks(x))
            return latent, latent
        below = encoder.run_blocks(x, 0, split)
        latent = encoder.norm(encoder.run_blocks(below, split))
        if options.latent_block:
            return latent, below
        return latent, encoder.norm(encoder.run_blocks(below.detach(), split))

    def after_step(self, outputs: dict[str, torch.Tensor], applied: torch.Tensor | None = None) -> None:
        """The gate; with ``positives=target`` the target encoder and projector follow the online ones."""
        self.mi.update_gate(outputs["rec"], applied)
        if self.target_encoder is not None:
            ema_update([(self.encoder, self.target_encoder), *self.mi.ema_pairs()], self.mi_options.target_momentum,
                       applied)
