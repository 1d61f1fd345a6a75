"""U-MAE (paper 001, Eq. 9 in the form of the authors' release): MAE plus a uniformity regularizer.

L = L_rec + lambda * mean((f f^T / temperature)^2), f the L2-normalized [CLS] features of the masked views of the
global batch (gathered across processes with a correct backward).
"""

from __future__ import annotations

import torch

from mimae.masking import Masks
from mimae.objectives.base import register
from mimae.objectives.mae import MAE
from mimae.objectives.ssl_losses import uniformity_loss


@register("umae")
class UMAE(MAE):
    """MAE's encoder, decoder and loss, plus ``umae.weight`` times the uniformity of the [CLS] features."""

    def forward(self, images: torch.Tensor, masks: Masks) -> dict[str, torch.Tensor]:
        latent, pred = self.reconstruct(images, masks)
        rec = self.reconstruction_loss(images, masks, pred)
        uniformity = uniformity_loss(latent[:, 0], self.cfg.umae.temperature)
        loss = rec + self.cfg.umae.weight * uniformity
        return {"loss": loss, "rec": rec.detach(), "uniformity": uniformity.detach()}
