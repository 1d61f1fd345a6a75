"""MRCL (paper 002, Eq. 12 and 16): SimCLR, BYOL or Barlow Twins on two augmented views, each randomly masked at
ratio r, plus a decoder reconstructing each whole view with alpha * MSE(masked patches) + lambda * MSE(visible
patches).

One family: ``mr-simclr``, ``mr-byol``, ``mr-barlow`` use the paper's r and weights; ``simclr``, ``byol``, ``barlow``
are the same code with r = 0 and alpha = lambda = 0, and then no decoder is built. Every value can be set in the
``mrcl`` section, the mask ratio with ``mask.ratio``. The pooled feature of a view is its [CLS] token (the one kNN
reads out).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mimae.config import MRCL_PAPER_MASK_RATIO, Config
from mimae.masking import Masks, draw_masks
from mimae.models import MAEDecoder
from mimae.models.heads import mlp_head
from mimae.objectives.base import Objective, register
from mimae.objectives.mae import masked_patch_mse, pixel_target
from mimae.objectives.ssl_losses import barlow_twins_loss, byol_loss, nt_xent


def reconstruction_split(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, masked_weight: float,
                         unmasked_weight: float) -> dict[str, torch.Tensor]:
    """Eq. 12: {"rec_masked", "rec_visible"} per-patch MSEs and their weighted sum "rec" (terms with weight 0, or
    with no patch, are left out). pred, target (V, L, P); mask (V, L) with 1 = masked."""
    terms = {}
    for name, weight, which in (("rec_masked", masked_weight, mask), ("rec_visible", unmasked_weight, 1 - mask)):
        if weight > 0 and which.sum() > 0:
            terms[name] = masked_patch_mse(pred, target, which)
    weights = {"rec_masked": masked_weight, "rec_visible": unmasked_weight}
    terms["rec"] = sum(weights[name] * value for name, value in terms.items())
    return terms


class MRCL(Objective):
    """Two masked views -> encoder -> [CLS] -> the family's joint-embedding loss (+ reconstruction if weighted).

    Subclasses set ``family`` and implement :meth:`contrastive_loss`; ``masked_reconstruction`` picks the paper's
    mr- defaults over the plain baseline's.
    """

    augmentation = "simclr"
    crops = 2
    family = ""
    masked_reconstruction = False
    default_mask_ratio = 0.0  # the plain baselines; the mr- classes mask at the paper's r
    reconstructs_hidden = False

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__(cfg, in_chans)
        self.mask_ratio = cfg.mask.ratio
        self.masked_weight, self.unmasked_weight = cfg.mrcl.resolved(self.family, self.masked_reconstruction)
        dims = cfg.model.dims()
        p = cfg.model.patch_size
        self.decoder = None
        if self.masked_weight > 0 or self.unmasked_weight > 0:
            self.decoder = MAEDecoder(self.grid, dims["embed_dim"], dims["decoder_dim"], dims["decoder_depth"],
                                      dims["decoder_heads"], p * p * in_chans, cfg.model.mlp_ratio)

    def head(self, in_dim: int, layers: int, last_norm: bool) -> nn.Sequential:
        m = self.cfg.mrcl
        norm = None if m.proj_norm == "none" else m.proj_norm
        return mlp_head(in_dim, m.proj_hidden, m.proj_dim, layers, norm, last_norm and norm == "bn")

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        """Two independent random masks per image, one per augmented view (all patches visible at ratio 0)."""
        return draw_masks("independent", batch, self.grid, self.mask_ratio, 2, self.unit, generator, device)

    def contrastive_loss(self, views: torch.Tensor, keep: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """views (2B, C, H, W) image-major, keep (2B, K), cls (B, 2, D) online [CLS] features -> scalar."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        """images (B, 2, C, H, W): two augmented views per image; masks with 2 views per image."""
        b = images.shape[0]
        views = images.flatten(0, 1)
        keep, mask = masks.flat()
        latent = self.encoder(views, keep)
        contrast = self.contrastive_loss(views, keep, latent[:, 0].reshape(b, 2, -1))
        out = {"contrast": contrast.detach()}
        loss = contrast
        if self.decoder is not None:
            target = pixel_target(views, self.cfg.model.patch_size, self.cfg.mae.norm_pix)
            terms = reconstruction_split(self.decoder(latent, keep), target, mask, self.masked_weight,
                                         self.unmasked_weight)
            loss = loss + terms["rec"]
            out.update({name: value.detach() for name, value in terms.items()})
        out["loss"] = loss
        return out


class SimCLRFamily(MRCL):
    """SimCLR: projector (BatchNorm at the output, as MoCo v3's ViT) and NT-Xent over the global batch."""

    family = "simclr"

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__(cfg, in_chans)
        self.projector = self.head(self.encoder.embed_dim, cfg.mrcl.proj_layers, last_norm=True)

    def contrastive_loss(self, views, keep, cls):
        z = self.projector(cls.flatten(0, 1)).reshape(cls.shape[0], 2, -1)
        return nt_xent(z[:, 0], z[:, 1], self.cfg.mrcl.temperature)


class BarlowFamily(MRCL):
    """Barlow Twins: projector and the cross-correlation loss over the global batch."""

    family = "barlow"

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__(cfg, in_chans)
        self.projector = self.head(self.encoder.embed_dim, cfg.mrcl.proj_layers, last_norm=False)

    def contrastive_loss(self, views, keep, cls):
        z = self.projector(cls.flatten(0, 1)).reshape(cls.shape[0], 2, -1)
        return barlow_twins_loss(z[:, 0], z[:, 1], self.cfg.mrcl.barlow_offdiag)


class BYOLFamily(MRCL):
    """BYOL: online projector + predictor regress the other view's target projection; the target encoder and
    projector are an EMA of the online ones (``mrcl.ema_momentum``), see the same masked views and get no gradient.
    """

    family = "byol"

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__(cfg, in_chans)
        self.projector = self.head(self.encoder.embed_dim, cfg.mrcl.proj_layers, last_norm=False)
        self.predictor = self.head(cfg.mrcl.proj_dim, 2, last_norm=False)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def online_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]

    def contrastive_loss(self, views, keep, cls):
        b = cls.shape[0]
        p = self.predictor(self.projector(cls.flatten(0, 1))).reshape(b, 2, -1)
        with torch.no_grad():
            t = self.target_projector(self.target_encoder(views, keep)[:, 0]).reshape(b, 2, -1)
        return byol_loss(p[:, 0], t[:, 1]) + byol_loss(p[:, 1], t[:, 0])

    @torch.no_grad()
    def after_step(self, outputs: dict[str, torch.Tensor]) -> None:
        """target <- m * target + (1 - m) * online, for parameters; buffers (BatchNorm statistics) are copied."""
        m = self.cfg.mrcl.ema_momentum
        for online, target in self.online_pairs():
            for po, pt in zip(online.parameters(), target.parameters()):
                pt.lerp_(po.detach(), 1 - m)
            for bo, bt in zip(online.buffers(), target.buffers()):
                bt.copy_(bo)


@register("simclr")
class SimCLR(SimCLRFamily):
    """Plain SimCLR (r = 0, no decoder)."""


@register("mr-simclr")
class MRSimCLR(SimCLRFamily):
    masked_reconstruction = True
    default_mask_ratio = MRCL_PAPER_MASK_RATIO


@register("barlow")
class BarlowTwins(BarlowFamily):
    """Plain Barlow Twins (r = 0, no decoder)."""


@register("mr-barlow")
class MRBarlowTwins(BarlowFamily):
    masked_reconstruction = True
    default_mask_ratio = MRCL_PAPER_MASK_RATIO


@register("byol")
class BYOL(BYOLFamily):
    """Plain BYOL (r = 0, no decoder)."""


@register("mr-byol")
class MRBYOL(BYOLFamily):
    masked_reconstruction = True
    default_mask_ratio = MRCL_PAPER_MASK_RATIO
