"""Export a pretrained encoder to timm's ``vit_*`` layout, and build timm models from our encoder.

The encoder's module names already follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed`` with its [CLS] row, ``blocks.i.*``, ``norm``), so the export is the encoder's state dict written as
safetensors, plus a JSON file with the model's name, the timm registry entry, every model argument, the input
configuration (size, channels, mean, std) and the one ``timm.create_model`` line that builds it, e.g.::

    model = timm.create_model('vit_tiny_patch16_224', pretrained=True, num_classes=0, img_size=32, patch_size=4,
                              in_chans=1, embed_dim=128, depth=6, num_heads=4, mlp_ratio=4.0,
                              pretrained_cfg_overlay=dict(file='encoder.safetensors', input_size=(1, 32, 32),
                                                          mean=(0.286,), std=(0.353,), ...))

(``num_classes=0`` gives the [CLS] feature; any other value adds a fresh head) or, without the registry,
``timm.models.VisionTransformer(**config["model_args"], num_classes=0).load_state_dict(weights)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from mimae.data import load_dataset
from mimae.models import Encoder
from mimae.models.swin import SwinEncoder
from mimae.runs import load_encoder

# (embed_dim, depth, num_heads) -> timm's name for that size (patch and image size are model arguments).
TIMM_NAMES = {
    (192, 12, 3): "vit_tiny_patch16_224",
    (384, 12, 6): "vit_small_patch16_224",
    (768, 12, 12): "vit_base_patch16_224",
    (1024, 24, 16): "vit_large_patch16_224",
}
SWIN_ENTRY = "swin_base_patch4_window7_224"  # a Swin's registry entry; its model_args give every dimension


def timm_model_args(encoder: Encoder) -> dict:
    """The ``VisionTransformer`` (or ``SwinTransformer``) keyword arguments that rebuild ``encoder``'s architecture
    in timm."""
    if isinstance(encoder, SwinEncoder):
        return {**encoder.timm_args, "depths": list(encoder.timm_args["depths"]),
                "num_heads": list(encoder.timm_args["num_heads"])}
    block = cast(Block, encoder.blocks[0])
    return {
        "img_size": encoder.patch_embed.img_size[0],
        "patch_size": encoder.patch_size,
        "in_chans": encoder.in_chans,
        "embed_dim": encoder.embed_dim,
        "depth": len(encoder.blocks),
        "num_heads": block.attn.num_heads,
        "mlp_ratio": cast(nn.Linear, block.mlp.fc1).out_features / encoder.embed_dim,
    }


def timm_architecture(args: dict) -> str:
    """The timm registry entry ``timm.create_model`` is called with: the registered ViT of the same width, depth
    and heads, else the tiny one; ``model_args`` give every dimension explicitly, so the entry only picks the
    constructor."""
    if "depths" in args:
        return SWIN_ENTRY
    return TIMM_NAMES.get((args["embed_dim"], args["depth"], args["num_heads"]), "vit_tiny_patch16_224")


def model_name(args: dict) -> str:
    """What the model is: timm's name when it is exactly a registered model (patch 16, 224 px, RGB), else e.g.
    ``vit_128w_6d_4h_patch4_32px_1ch`` (a Swin: ``swin_64w_2-2-2d_2h_win4_patch4_32px_1ch``)."""
    if "depths" in args:
        depths = "-".join(map(str, args["depths"]))
        return (f"swin_{args['embed_dim']}w_{depths}d_{args['num_heads'][0]}h_win{args['window_size']}_patch"
                f"{args['patch_size']}_{args['img_size']}px_{args['in_chans']}ch")
    registered = TIMM_NAMES.get((args["embed_dim"], args["depth"], args["num_heads"]))
    if registered and (args["patch_size"], args["img_size"], args["in_chans"], args["mlp_ratio"]) == (16, 224, 3, 4):
        return registered
    mlp = "" if args["mlp_ratio"] == 4 else f"_mlp{args['mlp_ratio']:g}"
    return (f"vit_{args['embed_dim']}w_{args['depth']}d_{args['num_heads']}h{mlp}_patch{args['patch_size']}_"
            f"{args['img_size']}px_{args['in_chans']}ch")


def create_model_call(arch: str, args: dict, pretrained_cfg: dict, file: str) -> str:
    """The ``timm.create_model`` line that builds the exported encoder, input config included."""
    model_args = ", ".join(f"{k}={v!r}" for k, v in args.items())
    overlay = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in
                        {"file": file, **pretrained_cfg}.items())
    return f"timm.create_model({arch!r}, pretrained=True, num_classes=0, {model_args}, " \
           f"pretrained_cfg_overlay=dict({overlay}))"


def to_timm(encoder: Encoder, num_classes: int = 0, global_pool: str = "token",
            drop_path_rate: float = 0.0) -> VisionTransformer | SwinTransformer:
    """A timm ``VisionTransformer`` (a ``SwinTransformer`` for a Swin encoder) holding ``encoder``'s weights.

    ``global_pool="token"`` reads the [CLS] token after the final norm (the encoder's features);
    ``global_pool="avg"`` is MAE's fine-tuning head: mean of the patch tokens, then a fresh ``fc_norm`` (the
    pretrained final norm is not used). A Swin always reads the mean of its last stage after its final norm (its
    features). A head of ``num_classes`` outputs is freshly initialized (none for 0).
    """
    model: VisionTransformer | SwinTransformer
    if isinstance(encoder, SwinEncoder):
        model = SwinTransformer(**encoder.timm_args, num_classes=num_classes, drop_path_rate=drop_path_rate)
        state = encoder.swin.state_dict()
    else:
        pool: Any = global_pool  # timm checks the name
        model = VisionTransformer(**timm_model_args(encoder), num_classes=num_classes, global_pool=pool,
                                  drop_path_rate=drop_path_rate)
        state = {k: v for k, v in encoder.state_dict().items() if global_pool == "token" or not k.startswith("norm.")}
    result = model.load_state_dict(state, strict=False)
    fresh = {k for k in model.state_dict() if k.startswith(("head.", "fc_norm."))}
    if result.unexpected_keys or set(result.missing_keys) - fresh:
        raise RuntimeError(f"encoder does not fit timm's model: missing {result.missing_keys}, "
                           f"unexpected {result.unexpected_keys}")
    return model


def export_timm(encoder: Encoder, output: str | Path, mean: tuple[float, ...], std: tuple[float, ...],
                source: str = "", run_config: dict | None = None) -> tuple[Path, Path]:
    """Write ``output`` (.safetensors, timm layout) and its config ``output`` with suffix .json; returns both.
    ``run_config`` (the run's resolved config) is kept in the JSON so that mimae reads the file back exactly."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ValueError(f"--output {output} must end in .safetensors")
    output.parent.mkdir(parents=True, exist_ok=True)
    args = timm_model_args(encoder)
    arch, name = timm_architecture(args), model_name(args)
    state = encoder.swin.state_dict() if isinstance(encoder, SwinEncoder) else encoder.state_dict()
    weights = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(weights, str(output), metadata={"format": "pt", "name": name, "architecture": arch, "source": source})
    output.chmod(0o644)
    pretrained_cfg = {"input_size": [args["in_chans"], args["img_size"], args["img_size"]],
                      "mean": [round(m, 6) for m in mean], "std": [round(s, 6) for s in std],
                      "interpolation": "bicubic", "crop_pct": 1.0, "num_classes": 0}
    config = {
        "name": name,
        "architecture": arch,
        "model_args": args,
        "num_features": encoder.embed_dim,
        "global_pool": "avg" if isinstance(encoder, SwinEncoder) else "token",
        "pretrained_cfg": pretrained_cfg,
        "source": source,
        "mimae_config": run_config,
        "usage": create_model_call(arch, args, pretrained_cfg, output.name),
    }
    config_path = output.with_suffix(".json")
    config_path.write_text(json.dumps(config, indent=2))
    config_path.chmod(0o644)
    return output, config_path


def load_timm(path: str | Path, num_classes: int = 0, **kwargs) -> nn.Module:
    """Create the timm model of an exported file through timm's registry (``pretrained_cfg_overlay``)."""
    path = Path(path)
    config = json.loads(path.with_suffix(".json").read_text())
    args = {**config["model_args"], **kwargs}
    return timm.create_model(config["architecture"], pretrained=True, num_classes=num_classes,
                             pretrained_cfg_overlay=dict(file=str(path), **config["pretrained_cfg"]), **args)


def export_checkpoint(checkpoint: str | Path, output: str | Path) -> tuple[Path, Path]:
    """``mimae export --format timm``: the encoder of any weights file :mod:`mimae.runs` reads."""
    encoder, cfg, source = load_encoder(checkpoint)
    info = load_dataset(cfg.data.dataset, cfg.data.data_dir)[2]
    return export_timm(encoder, output, info.mean, info.std, source=str(source.path), run_config=cfg.to_dict())


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an exported file (safetensors: nothing is unpickled)."""
    return load_file(str(path))
