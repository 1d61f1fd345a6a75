"""The ``model`` section: the encoder's and decoder's sizes, beside the networks they size.

Every dimension is a number from the start (the ``mini`` size's by default); ``model.size=NAME`` sets the six of
them at once, and a dimension given explicitly overrides that one, in whatever order the two were given. A saved
``config.yaml`` therefore states the model that trained, and nothing downstream resolves a size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

from mimae.config import ConfigError, param, register_section

if TYPE_CHECKING:
    from mimae.config import Config


class ModelSize(NamedTuple):
    embed_dim: int
    depth: int
    num_heads: int
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int


MODEL_SIZES: dict[str, ModelSize] = {
    "mini": ModelSize(128, 6, 4, 128, 2, 2),
    "tiny": ModelSize(192, 12, 3, 128, 2, 4),
    "small": ModelSize(384, 12, 6, 256, 4, 8),
    "base": ModelSize(768, 12, 12, 512, 8, 16),
    "large": ModelSize(1024, 24, 16, 512, 8, 16),
}
DEFAULT = MODEL_SIZES["mini"]



@dataclass
class ModelConfig:
    presets = ("size",)  # keys applied before the section's others (mimae.config.load_config)

    size: str = param("mini", "named ViT size: sets the six dims below; a dim given explicitly overrides it",
                      choices=tuple(MODEL_SIZES))
    patch_size: int = param(4, "ViT patch side, pixels", low=1)
    embed_dim: int = param(DEFAULT.embed_dim, "encoder width", low=8)
    depth: int = param(DEFAULT.depth, "encoder blocks", low=1)
    num_heads: int = param(DEFAULT.num_heads, "encoder attention heads", low=1)
    decoder_dim: int = param(DEFAULT.decoder_dim, "decoder width", low=8)
    decoder_depth: int = param(DEFAULT.decoder_depth, "decoder blocks", low=0)
    decoder_heads: int = param(DEFAULT.decoder_heads, "decoder attention heads", low=1)
    mlp_ratio: float = param(4.0, "MLP hidden width / embed width", low=0.5)
    drop_path: float = param(0.0, "stochastic depth rate of the encoder", low=0.0, high=1.0)
    backbone: str = param("vit", "encoder: vit, or swin (timm's Swin Transformer; simmim and mi-simmim only, as "
                                 "paper 000's SimMIM rows: embed_dim and num_heads are its first stage's, doubling "
                                 "per stage)", choices=("vit", "swin"))
    swin_depths: str = param("2,2,2", "blocks per Swin stage, comma-separated (Swin-B: 2,2,18,2)")
    swin_window: int = param(4, "Swin attention window side, tokens (SimMIM's Swin-B at 192 px: 6)", low=1)

    def after_set(self, key: str) -> None:
        """``model.size=NAME`` sets the six dims of that size."""
        if key == "size":
            if self.size not in MODEL_SIZES:
                raise ConfigError(f"model.size={self.size!r} is not one of {list(MODEL_SIZES)}")
            for name, value in MODEL_SIZES[self.size]._asdict().items():
                setattr(self, name, value)

    def stage_depths(self) -> tuple[int, ...]:
        """``swin_depths`` as numbers: "2,2,18,2" -> (2, 2, 18, 2)."""
        try:
            depths = tuple(int(d) for d in self.swin_depths.split(","))
        except ValueError:
            depths = ()
        if not depths or min(depths) < 1:
            raise ConfigError(f"model.swin_depths={self.swin_depths!r} is not a comma-separated list of block "
                              "counts such as 2,2,18,2")
        return depths

    def encoder(self) -> tuple[tuple[str, object], ...]:
        """The encoder that fine-tuning trains, as (key, value) pairs: every field but the decoder's, the size's name
        (its dims are fields) and, on a ViT, the Swin's. Runs with equal ones start from the same initialization at a
        seed, so they share one fine-tuning from scratch, their baseline."""
        skip = ("size", "decoder_", *(() if self.backbone == "swin" else ("swin_",)))
        return tuple((f.name, getattr(self, f.name)) for f in fields(self) if not f.name.startswith(skip))

    def dims(self) -> dict[str, int]:
        """The six sizes by name (as benchmarks record them)."""
        return {name: getattr(self, name) for name in ModelSize._fields}

    def validate(self, cfg: Config) -> None:
        """The rules between keys: heads divide widths, the method trains this backbone, a Swin's stride tiles."""
        from mimae.config import methods
        p = self.patch_size
        if cfg.data.image_size % p:
            raise ConfigError(f"data.image_size={cfg.data.image_size} is not a multiple of model.patch_size={p}")
        if self.backbone not in methods()[cfg.method].backbones:
            raise ConfigError(f"model.backbone={self.backbone} is not one {cfg.method} trains; it takes "
                              f"{', '.join(methods()[cfg.method].backbones)}")
        if self.backbone == "swin":
            stride = p * 2 ** (len(self.stage_depths()) - 1)
            if cfg.data.image_size % stride or (cfg.mask.unit or 0) % stride:
                raise ConfigError(f"a Swin of {len(self.stage_depths())} stages on {p} px patches has an output "
                                  f"stride of {stride} px: data.image_size={cfg.data.image_size} and mask.unit="
                                  f"{cfg.mask.unit} must be multiples of it")
        for width, heads in (("embed_dim", "num_heads"), ("decoder_dim", "decoder_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ConfigError(f"model.{width}={getattr(self, width)} is not divisible by "
                                  f"model.{heads}={getattr(self, heads)}")


register_section("model", ModelConfig, "model")
