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
from dataclasses import dataclass

import torch
from torch import nn

from mimae.config import param, register_section
from mimae.masking import Masks, draw_masks
from mimae.models.heads import mlp_head
from mimae.objectives.base import Objective, RunSpec, ema_update, register
from mimae.objectives.mae import MAEConfig, mae_decoder, masked_patch_mse, pixel_target
from mimae.objectives.ssl_losses import barlow_twins_loss, byol_loss, nt_xent

# MRCL (paper 002) weights (alpha on masked patches, lambda on unmasked patches) of the mr- variants.
MRCL_PAPER_WEIGHTS: dict[str, tuple[float, float]] = {"simclr": (8.0, 5.0), "barlow": (7.0, 2.0),
                                                      "byol": (0.01, 0.01)}
MRCL_PAPER_MASK_RATIO = 0.2


@dataclass
class MRCLConfig:
    masked_weight: float | None = param(None, "alpha: weight of the MSE on masked patches (None: mr-simclr 8, "
                                              "mr-barlow 7, mr-byol 0.01; 0 for the plain baselines)", low=0.0)
    unmasked_weight: float | None = param(None, "lambda: weight of the MSE on visible patches (None: mr-simclr 5, "
                                                "mr-barlow 2, mr-byol 0.01; 0 for the plain baselines)", low=0.0)
    proj_hidden: int = param(1024, "hidden width of the projector and of BYOL's predictor", low=1)
    proj_dim: int = param(256, "output width of the projector (and BYOL's predictor)", low=1)
    proj_layers: int = param(3, "Linear layers of the projector (BYOL's predictor has 2)", low=1)
    proj_norm: str = param("bn", "normalization inside the heads (bn: BatchNorm over the global batch, as "
                                 "SimCLR and BYOL at scale; ln; none)", choices=("bn", "ln", "none"))
    temperature: float = param(0.2, "SimCLR NT-Xent temperature", low=1e-4)
    barlow_offdiag: float = param(0.0051, "Barlow Twins weight of the off-diagonal terms", low=0.0)
    ema_momentum: float = param(0.99, "BYOL: momentum of the target network's EMA", low=0.0, high=1.0)

    def resolved(self, family: str, masked_reconstruction: bool) -> tuple[float, float]:
        """(alpha, lambda) of ``family`` (simclr, byol, barlow), plain or mr-, explicit values first."""
        alpha, lam = MRCL_PAPER_WEIGHTS[family] if masked_reconstruction else (0.0, 0.0)
        explicit = (self.masked_weight, self.unmasked_weight)
        alpha, lam = (d if v is None else v for v, d in zip(explicit, (alpha, lam)))
        return alpha, lam


register_section("mrcl", MRCLConfig, "MRCL objectives and the plain SimCLR / BYOL / Barlow Twins baselines")


def reconstruction_split(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, masked_weight: float,
                         unmasked_weight: float) -> dict[str, torch.Tensor]:
    """Eq. 12: {"rec_masked", "rec_visible"} per-patch MSEs and their weighted sum "rec" (terms with weight 0, or
    with no patch, are left out). pred, target (V, L, P); mask (V, L) with 1 = masked."""
    terms = {}
    for name, weight, which in (("rec_masked", masked_weight, mask), ("rec_visible", unmasked_weight, 1 - mask)):
        if weight > 0 and which.sum() > 0:
            terms[name] = masked_patch_mse(pred, target, which)
    weights = {"rec_masked": masked_weight, "rec_visible": unmasked_weight}
    terms["rec"] = sum((weights[name] * value for name, value in terms.items()), pred.new_zeros(()))
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

    sections = ("mrcl", "mae")

    def __init__(self, spec: RunSpec, mrcl: MRCLConfig, mae: MAEConfig):
        super().__init__(spec)
        self.options, self.norm_pix = mrcl, mae.norm_pix
        self.masked_weight, self.unmasked_weight = mrcl.resolved(self.family, self.masked_reconstruction)
        self.decoder = None
        if self.masked_weight > 0 or self.unmasked_weight > 0:
            self.decoder = mae_decoder(spec, self.grid)

    def head(self, in_dim: int, layers: int, last_norm: bool) -> nn.Sequential:
        m = self.options
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
            target = pixel_target(views, self.spec.model.patch_size, self.norm_pix)
            terms = reconstruction_split(self.decoder(latent, keep), target, mask, self.masked_weight,
                                         self.unmasked_weight)
            loss = loss + terms["rec"]
            out.update({name: value.detach() for name, value in terms.items()})
        out["loss"] = loss
        return out


class SimCLRFamily(MRCL):
    """SimCLR: projector (BatchNorm at the output, as MoCo v3's ViT) and NT-Xent over the global batch."""

    family = "simclr"

    def __init__(self, spec: RunSpec, mrcl: MRCLConfig, mae: MAEConfig):
        super().__init__(spec, mrcl, mae)
        self.projector = self.head(self.encoder.embed_dim, mrcl.proj_layers, last_norm=True)

    def contrastive_loss(self, views, keep, cls):
        z = self.projector(cls.flatten(0, 1)).reshape(cls.shape[0], 2, -1)
        return nt_xent(z[:, 0], z[:, 1], self.options.temperature)


class BarlowFamily(MRCL):
    """Barlow Twins: projector and the cross-correlation loss over the global batch."""

    family = "barlow"

    def __init__(self, spec: RunSpec, mrcl: MRCLConfig, mae: MAEConfig):
        super().__init__(spec, mrcl, mae)
        self.projector = self.head(self.encoder.embed_dim, mrcl.proj_layers, last_norm=False)

    def contrastive_loss(self, views, keep, cls):
        z = self.projector(cls.flatten(0, 1)).reshape(cls.shape[0], 2, -1)
        return barlow_twins_loss(z[:, 0], z[:, 1], self.options.barlow_offdiag)


class BYOLFamily(MRCL):
    """BYOL: online projector + predictor regress the other view's target projection; the target encoder and
    projector are an EMA of the online ones (``mrcl.ema_momentum``), see the same masked views and get no gradient.
    """

    family = "byol"

    def __init__(self, spec: RunSpec, mrcl: MRCLConfig, mae: MAEConfig):
        super().__init__(spec, mrcl, mae)
        self.projector = self.head(self.encoder.embed_dim, mrcl.proj_layers, last_norm=False)
        self.predictor = self.head(mrcl.proj_dim, 2, last_norm=False)
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

    def after_step(self, outputs: dict[str, torch.Tensor], applied: torch.Tensor | None = None) -> None:
        """The target encoder and projector follow the online ones (``mrcl.ema_momentum``)."""
        ema_update(self.online_pairs(), self.options.ema_momentum, applied)


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
