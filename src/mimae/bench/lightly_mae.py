"""The same MAE step written with ``lightly`` (its MaskedVisionTransformerTIMM and MAEDecoderTIMM, as in lightly's
MAE example), for a side-by-side with :class:`mimae.bench.step.StepBench`: the same encoder and decoder sizes,
batch, mask ratio, images, dtype and threads; lightly's plain MSE on the hidden patches (the side-by-side sets
``mae.norm_pix=false`` on this project's side too) and torch's AdamW as a lightly user would create it.
``lightly`` is a benchmark-only extra: ``pip install 'mimae[bench]'``."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from mimae.bench.machine import timed
from mimae.config import Config, ConfigError
from mimae.precision import autocast


def import_lightly():
    try:
        from lightly.models import utils
        from lightly.models.modules import MAEDecoderTIMM, MaskedVisionTransformerTIMM
    except ImportError:
        raise ConfigError("the side-by-side with lightly needs lightly: pip install 'mimae[bench]'") from None
    return utils, MAEDecoderTIMM, MaskedVisionTransformerTIMM


class LightlyMAE(nn.Module):
    """lightly's MAE example model with ``cfg``'s encoder and decoder sizes."""

    def __init__(self, cfg: Config, channels: int):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer
        self.utils, decoder_cls, encoder_cls = import_lightly()
        m = cfg.model
        vit = VisionTransformer(img_size=cfg.data.image_size, patch_size=m.patch_size, in_chans=channels,
                                embed_dim=m.embed_dim, depth=m.depth, num_heads=m.num_heads,
                                mlp_ratio=cfg.model.mlp_ratio, qkv_bias=True, num_classes=0)
        self.mask_ratio = cfg.mask.ratio
        self.patch_size = cfg.model.patch_size
        self.backbone = encoder_cls(vit=vit)
        self.sequence_length = self.backbone.sequence_length
        with warnings.catch_warnings():  # lightly 1.6 deprecates MAEDecoderTIMM, the decoder of its MAE example
            warnings.simplefilter("ignore", FutureWarning)
            self.decoder = decoder_cls(num_patches=vit.patch_embed.num_patches, patch_size=self.patch_size,
                                       in_chans=channels, embed_dim=m.embed_dim,
                                       decoder_embed_dim=m.decoder_dim, decoder_depth=m.decoder_depth,
                                       decoder_num_heads=m.decoder_heads, mlp_ratio=m.mlp_ratio)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        u = self.utils
        idx_keep, idx_mask = u.random_token_mask(size=(images.shape[0], self.sequence_length),
                                                 mask_ratio=self.mask_ratio, device=images.device)
        encoded = self.backbone.encode(images=images, idx_keep=idx_keep)
        decode = self.decoder.embed(encoded)
        tokens = u.repeat_token(self.decoder.mask_token, (images.shape[0], self.sequence_length))
        tokens = u.set_at_index(tokens, idx_keep, decode.type_as(tokens))
        pred = self.decoder.predict(u.get_at_index(self.decoder.decode(tokens), idx_mask))
        target = u.get_at_index(u.patchify(images, self.patch_size), idx_mask - 1)
        return nn.functional.mse_loss(pred.float(), target.float())


class LightlyStepBench:
    """:class:`~mimae.bench.step.StepBench`'s ``run`` / ``samples_per_step`` for :class:`LightlyMAE` on the given
    standardized images (B, C, H, W)."""

    def __init__(self, cfg: Config, device: torch.device, images: torch.Tensor, dtype: torch.dtype | None):
        torch.manual_seed(0)
        self.device, self.dtype, self.images = device, dtype, images
        self.model = LightlyMAE(cfg, images.shape[1]).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1.5e-4, weight_decay=cfg.optim.weight_decay)
        self.samples_per_step = len(images)

    def step(self) -> None:
        with autocast(self.device, self.dtype):
            loss = self.model(self.images)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def run(self, steps: int) -> float:
        return timed(self.step, steps, self.device)
