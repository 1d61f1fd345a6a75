"""The one load path: resume, evaluation, the analyses, export and ``train.init_from`` all read weights here.

:func:`read` accepts

* a mimae run folder or checkpoint file (``checkpoint.pt``, ``checkpoint-epoch<N>.pt``): the whole objective,
  optimizer, generator states and the run's config;
* a timm-layout safetensors file (what ``mimae export`` writes; the JSON beside it, when present, gives the
  architecture and the run's config): the encoder;
* an official MAE release checkpoint (``mae_pretrain_vit_base.pth``: ``{"model": encoder weights in timm's names}``,
  decoder weights, if any, are left out) or a bare timm state dict: the encoder, read with
  ``torch.load(weights_only=True)``.

Files without a mimae config get one built from the weights' shapes (width, depth, patch, image size, MLP ratio;
the head count from the standard sizes, ``width / 64`` otherwise), so ``mimae eval linear --checkpoint
mae_pretrain_vit_base.pth data.dataset=imagefolder data.data_dir=...`` evaluates published weights.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file as load_safetensors

from mimae.checkpoint import CHECKPOINT_NAME, PREVIOUS_NAME, CheckpointError, load_file
from mimae.config import Config, apply_mapping, set_value, validate
from mimae.models import Encoder, build_encoder
from mimae.models.swin import SwinEncoder
from mimae.objectives import Objective, build_objective

# encoder width -> heads of the standard ViT sizes (tiny, small, base, large, huge)
HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
# the encoder's tensors in a checkpoint: a ViT's, a Swin's (under swin.), a timm Swin export's (layers.)
ENCODER_PREFIXES = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.", "swin.", "layers.")


@dataclass
class Source:
    """What one weights file holds. ``kind`` is ``run`` (a mimae checkpoint), ``timm`` (safetensors) or ``mae``
    (an official MAE / timm ``.pth`` state dict); ``checkpoint`` is the whole mimae checkpoint for ``run``."""

    path: Path
    kind: str
    cfg: Config
    in_chans: int
    encoder_state: dict[str, torch.Tensor]
    checkpoint: dict | None = None

    @property
    def state(self) -> dict:
        """The whole mimae checkpoint (a ``run`` source only)."""
        if self.checkpoint is None:
            raise CheckpointError(f"{self.path} is a {self.kind} weights file, not a mimae run's checkpoint")
        return self.checkpoint

    @property
    def step(self) -> int:
        return int(self.checkpoint.get("step", 0)) if self.checkpoint else 0


def migrate(mapping: dict, decoder_width: int | None = None) -> dict:
    """A saved config of an older run made loadable as it trained.

    - ``mimae.complete_masking`` and mi-simmim's ``simmim.mi_views`` become ``mimae.views``.
    - The per-method mask keys (``simmim.mask_ratio``, ``simmim.unit``, ``mrcl.mask_ratio``) move to ``mask.*``
      when they were the run's own and are dropped otherwise.
    - Model dims saved as null (runs before the dims were saved as numbers) come from the named size, except the
      decoder's width, which is ``decoder_width`` when the caller read it off the run's weights (``mini``'s decoder
      was 64 wide before 128).
    """
    mapping = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
    mimae = mapping.setdefault("mimae", {})
    if mimae.pop("complete_masking", False):
        mimae["views"] = "complete"
    mi_views = mapping.get("simmim", {}).pop("mi_views", None)
    if mapping.get("method") == "mi-simmim" and mi_views is not None:
        mimae["views"] = mi_views
    model = mapping.get("model", {})
    for key in [k for k, v in model.items() if v is None]:
        del model[key]
        if key == "decoder_dim" and decoder_width is not None:
            model[key] = decoder_width
    method = mapping.get("method", "mae")
    simmim, mrcl = mapping.get("simmim", {}), mapping.get("mrcl", {})
    legacy: dict[str, Any] = {}
    if "mask_ratio" in simmim or "unit" in simmim:
        legacy = {"mask.ratio": simmim.pop("mask_ratio", 0.5), "mask.unit": simmim.pop("unit", None)}
        if method not in ("simmim", "mi-simmim"):
            legacy = {}
    if "mask_ratio" in mrcl:
        ratio = mrcl.pop("mask_ratio")
        if method in ("simclr", "byol", "barlow", "mr-simclr", "mr-byol", "mr-barlow"):
            legacy = {"mask.ratio": ratio}
    if not mapping.get("simmim"):  # the section is gone: its keys moved to mask.* and mimae.views
        mapping.pop("simmim", None)
    mask = mapping.setdefault("mask", {})
    for key, value in legacy.items():
        mask[key.split(".")[1]] = value
    return mapping


def config_from_dict(mapping: dict, decoder_width: int | None = None) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (for instance from a checkpoint; ``decoder_width``: its
    decoder's, read off its weights, for :func:`migrate`)."""
    cfg = Config()
    apply_mapping(cfg, migrate(mapping, decoder_width))
    return validate(cfg)


def saved_config(path: str | Path) -> Config:
    """A run's ``config.yaml`` as it trained: an older run's keys migrated (:func:`migrate`)."""
    return config_from_dict(yaml.safe_load(Path(path).read_text()) or {})


def resolve(path: str | Path) -> Path:
    """A run folder or a weights file -> the file, as an absolute path (what result files record); a one-line error
    naming what is missing."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path.resolve()


def config_for_encoder(state: dict[str, torch.Tensor], base: Config | None = None,
                       num_heads: int | None = None) -> tuple[Config, int]:
    """A config whose encoder has the architecture of ``state`` (timm names), and its input channel count. The
    weights do not say how many heads split the width: ``num_heads``, else the standard size's, else width / 64."""
    cfg = base or Config()
    try:
        proj = state["patch_embed.proj.weight"]  # (D, C, p, p)
        tokens = state["pos_embed"].shape[1]
    except KeyError as exc:
        raise CheckpointError(f"the weights have no {exc.args[0]!r}: not a ViT in timm's layout") from None
    width, in_chans, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    grid = math.isqrt(tokens - 1)
    if grid * grid != tokens - 1:
        raise CheckpointError(f"pos_embed has {tokens} tokens: not [CLS] plus a square grid of patches")
    values = {"model.patch_size": patch, "model.embed_dim": width, "model.depth": depth,
              "model.num_heads": num_heads or HEADS_BY_WIDTH.get(width, max(1, width // 64)),
              "model.mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / width,
              "data.image_size": grid * patch}
    for key, value in values.items():
        set_value(cfg, key, value)
    return cfg, in_chans


def encoder_weights(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """The encoder's tensors of a state dict, ``prefix`` stripped; decoder, mask token and heads left out."""
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return {k: v for k, v in picked.items() if k.startswith(ENCODER_PREFIXES)}


def _read_run(path: Path, checkpoint: dict) -> Source:
    token = checkpoint["model"].get("decoder.mask_token")  # an old run's config may not state its decoder's width
    cfg = config_from_dict(checkpoint["config"], None if token is None else int(token.shape[-1]))
    return Source(path, "run", cfg, int(checkpoint["in_chans"]), encoder_weights(checkpoint["model"], "encoder."),
                  checkpoint)


def _read_timm(path: Path) -> Source:
    state = load_safetensors(str(path))
    meta = path.with_suffix(".json")
    described = json.loads(meta.read_text()) if meta.is_file() else {}
    saved = described.get("mimae_config")
    if saved and saved.get("model", {}).get("backbone") == "swin":  # the run's config describes the Swin exactly
        cfg, in_chans = config_from_dict(saved), int(state["patch_embed.proj.weight"].shape[1])
    else:
        cfg, in_chans = config_for_encoder(state, config_from_dict(saved) if saved else None,
                                           described.get("model_args", {}).get("num_heads"))
    return Source(path, "timm", validate(cfg), in_chans, encoder_weights(state))


def _read_state_dict(path: Path, content: dict) -> Source:
    state = content.get("model", content)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds neither a mimae checkpoint nor a state dict of tensors")
    weights = encoder_weights(state)
    cfg, in_chans = config_for_encoder(weights)
    return Source(path, "mae", validate(cfg), in_chans, weights)


def read(path: str | Path) -> Source:
    """Read any accepted weights file (see the module docstring) without running code from it."""
    file = resolve(path)
    if file.suffix == ".safetensors":
        return _read_timm(file)
    content = load_file(file)
    if not isinstance(content, dict):
        raise CheckpointError(f"{file} holds a {type(content).__name__}, not a checkpoint")
    if "config" in content and "model" in content:
        return _read_run(file, content)
    return _read_state_dict(file, content)


def epoch_of(path: Path) -> int:
    """The epoch in ``checkpoint-epoch<N>.pt``."""
    match = re.fullmatch(r"checkpoint-epoch(\d+)\.pt", path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a checkpoint-epoch<N>.pt file")
    return int(match.group(1))


def epoch_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``checkpoint-epoch<N>.pt`` files a run kept (``train.keep_checkpoints``), in epoch order."""
    return sorted(Path(run_dir).glob("checkpoint-epoch*.pt"), key=epoch_of)


def latest_checkpoint(run_dir: str | Path) -> Source | None:
    """The newest readable mimae checkpoint of a run folder: ``checkpoint.pt``, else ``checkpoint.prev.pt``, else
    the kept ``checkpoint-epoch<N>.pt`` of the highest N. An unreadable one is skipped with a warning naming it;
    None when the folder holds none."""
    run_dir = Path(run_dir)
    for path in [run_dir / CHECKPOINT_NAME, run_dir / PREVIOUS_NAME, *reversed(epoch_checkpoints(run_dir))]:
        if not path.is_file():
            continue
        try:
            source = read(path)
        except (CheckpointError, KeyError, ValueError) as exc:
            warnings.warn(f"skipping the unreadable checkpoint {path}: {exc}", stacklevel=2)
            continue
        if source.kind == "run":
            return source
    return None


def load_encoder_weights(encoder: Encoder, source: Source) -> None:
    """Copy ``source``'s encoder weights into ``encoder``; one line naming the file if they do not fit."""
    state = source.encoder_state
    if isinstance(encoder, SwinEncoder) and not any(k.startswith("swin.") for k in state):
        state = {f"swin.{k}": v for k, v in state.items()}  # a timm export of a Swin: timm's own names
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"the encoder weights of {source.path} do not fit this encoder: {detail}") from None


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[Encoder, Config, Source]:
    """The encoder of any accepted weights file, in eval mode on ``device``, with its config and source."""
    source = read(path)
    encoder = build_encoder(source.cfg.model, source.cfg.data.image_size, source.in_chans)
    load_encoder_weights(encoder, source)
    return encoder.to(device).eval(), source.cfg, source


def load_objective(path: str | Path, device: str | torch.device = "cpu") -> tuple[Objective, Source]:
    """The whole pretrained objective (encoder, decoder, heads) of a mimae checkpoint, in eval mode."""
    source = read(path)
    if source.kind != "run":
        raise CheckpointError(f"{source.path} holds an encoder only; this needs a mimae run folder or checkpoint "
                              f"(decoder and heads included)")
    objective = build_objective(source.cfg, source.in_chans)
    objective.load_state_dict(source.state["model"])
    return objective.to(device).eval(), source
