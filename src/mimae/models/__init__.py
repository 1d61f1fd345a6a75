"""Networks: the ViT encoder, decoders and small heads."""

from mimae.models.decoders import MAEDecoder
from mimae.models.vit import ViTEncoder

__all__ = ["MAEDecoder", "ViTEncoder"]
