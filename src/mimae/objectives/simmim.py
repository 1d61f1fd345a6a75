"""SimMIM (Xie et al., 2022): masked patches replaced by a learned mask token in the encoder's input, a linear head
predicting each patch's pixels, L1 on the masked patches. Masks are blocks of ``mask.unit`` pixels (default twice the
patch) at ``mask.ratio`` (default 0.5, as paper 000's SimMIM runs).

MI-SimMIM (paper 000, Tab. 1): SimMIM over N masks per image (``mimae.views``, 2 at ratio 0.5 by default: two
complementary block masks) plus MI-MAE's mutual-information terms (:mod:`mimae.objectives.mi_terms`, configured by
the ``mimae`` section) on the latents of the N views.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mimae.masking import MaskConfig, Masks, draw_masks
from mimae.models.patches import patchify
from mimae.objectives.base import Objective, RunSpec, register
from mimae.objectives.mi_terms import MIMAEConfig, MutualInformationTerms, view_count
from mimae.objectives.mimae import MIMAE


def masked_patch_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SimMIM's loss: mean absolute error over the pixels (and channels) of the masked patches.

    pred, target (B, L, P); mask (B, L) with 1 = masked. Returns a scalar (computed in float32).
    """
    per_patch = (pred.float() - target.float()).abs().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


def coarse_mask(mask: torch.Tensor, grid: tuple[int, int], factor: int) -> torch.Tensor:
    """A patch mask (V, L) on ``grid`` -> the mask of the blocks of ``factor`` x ``factor`` patches (V, L / f^2);
    each block must be masked or visible as a whole (the masking unit a multiple of the block)."""
    if factor == 1:
        return mask
    v = mask.shape[0]
    return mask.reshape(v, grid[0] // factor, factor, grid[1] // factor, factor)[:, :, 0, :, 0].reshape(v, -1)


@register("simmim")
class SimMIM(Objective):
    """Encoder on all tokens (masked ones replaced by a mask token), linear pixel head, L1 on masked pixels.

    On a ViT each output token predicts its patch; on a Swin (``model.backbone=swin``) each token of the last stage
    predicts its block of ``output_stride`` pixels, as SimMIM's one-layer head (a 1x1 convolution and a pixel
    shuffle) does.
    """

    default_mask_ratio = 0.5
    default_mask_unit = 2
    backbones = ("vit", "swin")
    norm_pix = False  # predicts the standardized pixels themselves

    def __init__(self, spec: RunSpec):
        super().__init__(spec)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.encoder.token_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.pixel_head = nn.Linear(self.encoder.embed_dim, self.encoder.output_stride ** 2 * spec.in_chans)

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        return draw_masks("block", batch, self.grid, self.mask_ratio, 1, self.unit, generator, device)

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Patch tokens (V, L, D) with position embeddings, mask (V, L) with 1 = masked -> encoder output
        (V, 1+T, D) after the final norm, the masked tokens replaced by the mask token (plus position)."""
        mask_tokens = (self.mask_token + self.encoder.patch_positions().to(tokens.device)).to(tokens.dtype)
        tokens = torch.where(mask.bool().unsqueeze(-1), mask_tokens, tokens)
        return self.encoder.forward_tokens(tokens)

    def reconstruct(self, images: torch.Tensor, masks: Masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and predict every view of every image. images (B, C, H, W), masks with N views.

        Returns the encoder output (B*N, 1+T, D) and the pixel predictions of every output token
        (B*N, T, s*s*C), s = the encoder's output stride (the patch for a ViT).
        """
        _, mask = masks.flat()
        tokens = self.encoder.patch_tokens(images).repeat_interleave(masks.num_views, dim=0)
        latent = self.encode(tokens, mask)
        return latent, self.pixel_head(latent[:, 1:])

    def reconstruction_loss(self, images: torch.Tensor, masks: Masks, pred: torch.Tensor) -> torch.Tensor:
        """The L1 loss on the masked pixels, averaged over all views."""
        stride = self.encoder.output_stride
        target = patchify(images, stride).repeat_interleave(masks.num_views, dim=0)
        mask = coarse_mask(masks.flat()[1], self.grid, stride // self.spec.model.patch_size)
        return masked_patch_l1(pred, target, mask)

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        _, pred = self.reconstruct(images, masks)
        loss = self.reconstruction_loss(images, masks, pred)
        return {"loss": loss, "rec": loss.detach()}


@register("mi-simmim")
class MISimMIM(SimMIM):
    """SimMIM on N masks per image (one batched forward) plus L_max, L_min, L_approx and the eps_l gate of MI-MAE.

    L = mimae.lambda_rec * L_rec(L1) + gate * (lambda_max * L_max + lambda_min * L_min) + L_approx.
    """

    lr_scales = MIMAE.lr_scales  # q_theta's lr, as MI-MAE's

    sections = ("mimae",)
    backbones = ("vit", "swin")
    default_views = 2  # N for mimae.views=auto: paper 000's MI-SimMIM rows

    def __init__(self, spec: RunSpec, mimae: MIMAEConfig):
        super().__init__(spec)
        self.mi_options = mimae
        self.views = self.masks_per_crop(spec.mask, mimae=mimae)
        self.mi = MutualInformationTerms.for_encoder(mimae, self.encoder, spec.model.patch_size, spec.in_chans)

    @classmethod
    def masks_per_crop(cls, mask: MaskConfig, **sections: Any) -> int:
        return view_count(sections["mimae"].views, mask.resolved()[0], cls.default_views)

    @property
    def views_per_image(self) -> int:
        return self.views

    def after_step(self, outputs: dict[str, torch.Tensor], applied: torch.Tensor | None = None) -> None:
        self.mi.update_gate(outputs["rec"], applied)

    def training_summary(self) -> tuple[dict[str, Any], list[str]]:
        return self.mi.summary()

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        return draw_masks(self.mi_options.masking, batch, self.grid, self.mask_ratio,
                          self.views_per_image, self.unit, generator, device)

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        b, n = masks.keep.shape[:2]
        latent, pred = self.reconstruct(images, masks)
        rec = self.reconstruction_loss(images, masks, pred)
        patchwise = self.encoder.output_stride == self.spec.model.patch_size  # a ViT: one output token per patch
        z = self.mi.latent(latent, visible=1 - masks.flat()[1] if patchwise else None).reshape(b, n, -1)
        terms = self.mi(z, self.mi.approx_inputs(self.encoder, images, masks.keep, self.spec.model.patch_size))
        loss = self.mi_options.lambda_rec * rec + terms.pop("loss")
        return {"loss": loss, "rec": rec.detach(), **terms}
