"""Networks: the ViT encoder, decoders and small heads."""

from mimae.models.decoders import MAEDecoder
from mimae.models.vit import Encoder, ViTEncoder, build_encoder

__all__ = ["Encoder", "MAEDecoder", "ViTEncoder", "build_encoder"]
