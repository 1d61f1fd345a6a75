"""The interface every pretraining objective implements, and the name -> class registry.

The training loop only ever does::

    masks = objective.draw_masks(batch_size, generator)   # whatever the objective's forward needs
    out = objective(images, masks)                       # {"loss": scalar, other named terms...}
    out["loss"].backward(); optimizer.step(); objective.after_step(out)

so adding a method means adding one file with a subclass decorated by ``@register("name")``.
"""

from __future__ import annotations

import torch
from torch import nn

from mimae.config import Config, MethodDefaults, register_method
from mimae.masking import Masks, draw_masks
from mimae.models import build_encoder

REGISTRY: dict[str, type[Objective]] = {}


def register(name: str):
    """Class decorator: make an objective available as ``--method name``, with its mask defaults (the class's
    ``default_mask_ratio``, ``default_mask_unit``, ``reconstructs_hidden``) registered in the config."""
    def wrap(cls: type[Objective]) -> type[Objective]:
        REGISTRY[name] = cls
        cls.name = name
        register_method(name, MethodDefaults(cls.default_mask_ratio, cls.default_mask_unit, cls.reconstructs_hidden))
        return cls
    return wrap


class Objective(nn.Module):
    """An encoder plus whatever heads a method trains, and the method's losses.

    Class attributes a subclass may change: ``augmentation`` ("mae" or "simclr"), ``crops`` (augmented views per
    image handed to ``forward``: 1 gives images (B, C, H, W), 2 gives (B, 2, C, H, W)), and the defaults of the
    shared mask keys: ``default_mask_ratio`` (``mask.ratio``), ``default_mask_unit`` (``mask.unit``, in patches)
    and ``reconstructs_hidden`` (the loss needs at least one hidden unit).
    """

    name = "base"
    augmentation = "mae"
    crops = 1
    default_mask_ratio = 0.75
    default_mask_unit = 1
    reconstructs_hidden = True
    unused_parameters = False  # True if some parameters get no gradient in some steps (tells DDP)

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__()
        self.cfg = cfg
        self.in_chans = in_chans
        self.encoder = build_encoder(cfg, in_chans)
        self.grid = self.encoder.grid
        self.unit = cfg.mask.unit // cfg.model.patch_size  # in patches

    @property
    def views_per_image(self) -> int:
        """(image, mask) samples one image gives per step: the N of objectives that mask each image N times."""
        return 1

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        """One random mask per image at ``mask.ratio`` with ``mask.unit``; objectives with views override this."""
        return draw_masks("random", batch, self.grid, self.cfg.mask.ratio, 1, self.unit, generator, device)

    def lr_scales(self) -> dict[str, float]:
        """Parameter-name prefix -> learning-rate multiplier, for heads that must learn faster than the encoder."""
        return {}

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_step(self, outputs: dict[str, torch.Tensor]) -> None:
        """Called once per optimizer step with the step's (last micro-batch) outputs; e.g. EMA updates, gates."""


def objective_class(method: str) -> type[Objective]:
    """The class registered as ``method``; a clear error listing the available names otherwise."""
    if method not in REGISTRY:
        raise ValueError(f"unknown method {method!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[method]


def build_objective(cfg: Config, in_chans: int) -> Objective:
    return objective_class(cfg.method)(cfg, in_chans)
