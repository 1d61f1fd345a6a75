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

from mimae.config import Config
from mimae.masking import Masks, draw_masks
from mimae.models import ViTEncoder

REGISTRY: dict[str, type[Objective]] = {}


def register(name: str):
    """Class decorator: make an objective available as ``--method name``."""
    def wrap(cls: type[Objective]) -> type[Objective]:
        REGISTRY[name] = cls
        cls.name = name
        return cls
    return wrap


def build_encoder(cfg: Config, in_chans: int) -> ViTEncoder:
    dims = cfg.model.dims()
    return ViTEncoder(cfg.data.image_size, cfg.model.patch_size, in_chans, dims["embed_dim"], dims["depth"],
                      dims["num_heads"], cfg.model.mlp_ratio, cfg.model.drop_path)


class Objective(nn.Module):
    """An encoder plus whatever heads a method trains, and the method's losses.

    Class attributes a subclass may change: ``augmentation`` ("mae" or "simclr") and ``crops`` (augmented views per
    image handed to ``forward``: 1 gives images (B, C, H, W), 2 gives (B, 2, C, H, W)).
    """

    name = "base"
    augmentation = "mae"
    crops = 1
    unused_parameters = False  # True if some parameters get no gradient in some steps (tells DDP)

    def __init__(self, cfg: Config, in_chans: int):
        super().__init__()
        self.cfg = cfg
        self.in_chans = in_chans
        self.encoder = build_encoder(cfg, in_chans)
        self.grid = self.encoder.grid
        self.unit = (cfg.mask.unit or cfg.model.patch_size) // cfg.model.patch_size

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
