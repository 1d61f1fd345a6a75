"""U-MAE (paper 001, Eq. 9 in the form of the authors' release): MAE plus a uniformity regularizer.

L = L_rec + lambda * mean((f f^T / temperature)^2), f the L2-normalized [CLS] features of the masked views of the
global batch (gathered across processes with a correct backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mimae.config import param, register_section
from mimae.masking import Masks
from mimae.objectives.base import RunSpec, register
from mimae.objectives.mae import MAE, MAEConfig
from mimae.objectives.ssl_losses import uniformity_loss


@dataclass
class UMAEConfig:
    weight: float = param(0.01, "lambda: weight of the uniformity term (0.01 as the authors' release; the paper "
                                "text says 0.001)", low=0.0)
    temperature: float = param(1.0, "the uniformity term is mean((f f^T / temperature)^2); 1 is the paper's and "
                                    "the authors' current code (their first upload divided by 0.1)", low=1e-4)


register_section("umae", UMAEConfig, "U-MAE objective")


@register("umae")
class UMAE(MAE):
    """MAE's encoder, decoder and loss, plus ``umae.weight`` times the uniformity of the [CLS] features."""

    sections = ("mae", "umae")

    def __init__(self, spec: RunSpec, mae: MAEConfig, umae: UMAEConfig):
        super().__init__(spec, mae)
        self.uniformity = umae

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        latent, pred = self.reconstruct(images, masks)
        rec = self.reconstruction_loss(images, masks, pred)
        uniformity = uniformity_loss(latent[:, 0], self.uniformity.temperature)
        loss = rec + self.uniformity.weight * uniformity
        return {"loss": loss, "rec": rec.detach(), "uniformity": uniformity.detach()}
