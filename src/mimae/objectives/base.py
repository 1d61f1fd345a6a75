"""The interface every pretraining objective implements, and the name -> class registry.

The training loop only ever does::

    masks = objective.draw_masks(batch_size, generator)   # whatever the objective's forward needs
    out = objective(images, masks)                       # {"loss": scalar, other named terms...}
    out["loss"].backward(); optimizer.step(); objective.after_step(out, applied)

so adding a method means adding one file with a subclass decorated by ``@register("name")``, and, if it has
options, a dataclass registered as its config section (:func:`mimae.config.register_section`) that it receives.

An objective never sees the whole run config: :func:`build_objective` hands it a :class:`RunSpec` (the model and
mask sections, the image size and channels) and the sections it names in ``sections``, as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mimae.config import Config, MethodDefaults, register_method
from mimae.masking import MaskConfig, Masks, draw_masks
from mimae.models import build_encoder
from mimae.models.config import ModelConfig


@dataclass(frozen=True)
class RunSpec:
    """What every objective reads of the run: the model section, the input images, the (resolved) mask section."""

    model: ModelConfig
    image_size: int
    in_chans: int
    mask: MaskConfig

    @property
    def patch_pixels(self) -> int:
        """Values in one patch of one image: patch * patch * channels (the width of a pixel prediction)."""
        return self.model.patch_size ** 2 * self.in_chans

REGISTRY: dict[str, type[Objective]] = {}


def register(name: str):
    """Class decorator: make an objective available as ``--method name``, with its mask defaults (the class's
    ``default_mask_ratio``, ``default_mask_unit``, ``reconstructs_hidden``) registered in the config."""
    def wrap(cls: type[Objective]) -> type[Objective]:
        REGISTRY[name] = cls
        cls.name = name
        register_method(name, MethodDefaults(cls.default_mask_ratio, cls.default_mask_unit, cls.reconstructs_hidden,
                                             cls.backbones))
        return cls
    return wrap


class Objective(nn.Module):
    """An encoder plus whatever heads a method trains, and the method's losses.

    Class attributes a subclass may change: ``augmentation`` ("mae" or "simclr"), ``crops`` (augmented views per
    image handed to ``forward``: 1 gives images (B, C, H, W), 2 gives (B, 2, C, H, W); a method whose count is a
    config key overrides :meth:`crops_per_image` and sets ``self.crops``), and the defaults of the
    shared mask keys: ``default_mask_ratio`` (``mask.ratio``), ``default_mask_unit`` (``mask.unit``, in patches)
    and ``reconstructs_hidden`` (the loss needs at least one hidden unit).
    """

    name = "base"
    augmentation = "mae"
    crops = 1
    default_mask_ratio = 0.75
    default_mask_unit = 1
    reconstructs_hidden = True
    backbones: tuple[str, ...] = ("vit",)  # the model.backbone values it trains
    sections: tuple[str, ...] = ()  # the config sections __init__ receives, by name
    unused_parameters = False  # True if some parameters get no gradient in some steps (tells DDP)

    def __init__(self, spec: RunSpec):
        super().__init__()
        self.spec = spec
        self.encoder = build_encoder(spec.model, spec.image_size, spec.in_chans)
        self.grid: tuple[int, int] = self.encoder.grid
        self.mask_ratio, unit = spec.mask.resolved()
        self.unit = unit // spec.model.patch_size  # in patches

    @classmethod
    def crops_per_image(cls, **sections: Any) -> int:
        """Augmented crops per image handed to ``forward``, from the method's own ``sections``: ``crops``."""
        return cls.crops

    @classmethod
    def masks_per_crop(cls, mask: MaskConfig, **sections: Any) -> int:
        """Masks drawn per crop, from the run's (resolved) mask section and the method's own ``sections``: the N of
        objectives that mask each image N times, else 1."""
        return 1

    @property
    def views_per_image(self) -> int:
        """(image, mask) samples one image gives per step: the N of objectives that mask each image N times."""
        return 1

    @property
    def samples_per_image(self) -> int:
        """(view, mask) samples one image gives per step, what ``train.equal_samples`` counts: augmented crops x
        masks per crop (MAE 1, MI-MAE N, SimCLR and MRCL 2)."""
        return self.crops * self.views_per_image

    def draw_masks(self, batch: int, generator: torch.Generator | None = None, device=None) -> Masks:
        """One random mask per image at ``mask.ratio`` with ``mask.unit``; objectives with views override this."""
        return draw_masks("random", batch, self.grid, self.mask_ratio, 1, self.unit, generator, device)

    def lr_scales(self) -> dict[str, float]:
        """Parameter-name prefix -> learning-rate multiplier, for heads that must learn faster than the encoder."""
        return {}

    def __call__(self, images: torch.Tensor, masks: Masks | None = None, *,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The named losses of a batch: ``forward(images, masks)``, the masks drawn here (from ``generator``) when
        not given, as a user's own training loop calls it."""
        if masks is None:
            masks = self.draw_masks(len(images), generator, images.device)
        return super().__call__(images, masks)

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_summary(self) -> tuple[dict[str, Any], list[str]]:
        """At the end of training (read on the host once): what ``results.json`` records of the objective's own
        state (MI-MAE's gate) and the lines the run tells its user (an option that never took effect)."""
        return {}, []

    def after_step(self, outputs: dict[str, torch.Tensor], applied: torch.Tensor | None = None) -> None:
        """Called once per optimizer step with the step's (last micro-batch) outputs; e.g. EMA updates, gates.
        ``applied`` is a 0-d bool tensor on the device (None: True); a step not applied (its loss was not finite,
        the weights did not move) must change nothing here either, without reading the flag on the host."""


@torch.no_grad()
def ema_update(pairs: list[tuple[nn.Module, nn.Module]], momentum: float, applied: torch.Tensor | None) -> None:
    """target <- m * target + (1 - m) * online for each (online, target) pair's parameters; buffers (BatchNorm
    statistics) are copied. Nothing moves after a step that was not applied (``applied`` a False 0-d bool tensor),
    without reading it on the host."""
    for online, target in pairs:
        for po, pt in zip(online.parameters(), target.parameters()):
            weight = 1 - momentum if applied is None else applied.to(pt.dtype) * (1 - momentum)
            pt.lerp_(po.detach(), weight)
        for bo, bt in zip(online.buffers(), target.buffers()):
            bt.copy_(bo if applied is None else torch.where(applied, bo, bt))


def objective_class(method: str) -> type[Objective]:
    """The class registered as ``method``; a clear error listing the available names otherwise."""
    if method not in REGISTRY:
        raise ValueError(f"unknown method {method!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[method]


def own_sections(cfg: Config) -> dict[str, Any]:
    """The config sections the method of ``cfg`` receives, by name."""
    return {name: getattr(cfg, name) for name in objective_class(cfg.method).sections}


def crops_per_image(cfg: Config) -> int:
    """Augmented crops per image the method of ``cfg`` trains on, without building the model."""
    return objective_class(cfg.method).crops_per_image(**own_sections(cfg))


def samples_per_image(cfg: Config) -> int:
    """(view, mask) samples one image gives per step under ``cfg`` (crops x masks), without building the model."""
    return crops_per_image(cfg) * objective_class(cfg.method).masks_per_crop(cfg.mask, **own_sections(cfg))


def build_objective(cfg: Config, in_chans: int, seed: int | None = None) -> Objective:
    """The objective of ``cfg.method`` for ``in_chans``-channel images, given its run spec and its own sections.
    With ``seed`` torch's generator is seeded first: the weights a pretraining run at ``train.seed = seed`` starts
    from (the encoder is built first, so it is the same for every method at a seed)."""
    cls = objective_class(cfg.method)
    if seed is not None:
        torch.manual_seed(seed)
    spec = RunSpec(cfg.model, cfg.data.image_size, in_chans, cfg.mask)
    return cls(spec, **{name: getattr(cfg, name) for name in cls.sections})
