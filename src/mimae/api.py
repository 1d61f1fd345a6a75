"""The jobs of the ``mimae`` command as Python functions: load an encoder, build an objective for your own loop,
pretrain, evaluate. Exported from :mod:`mimae` (``mimae.load_encoder`` and so on); see docs/api.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

from mimae.config import Config, ConfigError, load_config, requested_values, sections
from mimae.export import to_timm
from mimae.objectives import Objective, build_objective
from mimae.objectives.base import objective_class
from mimae.runs import load_encoder as load_mimae_encoder


def load_encoder(path: str | Path, device: str | torch.device = "cpu", num_classes: int = 0,
                 global_pool: str = "token") -> VisionTransformer | SwinTransformer:
    """A timm model holding the pretrained encoder of ``path``: a run folder, a checkpoint, a ``mimae export``
    file or an official MAE checkpoint (the one load path of the command line).

    A ``VisionTransformer`` (a ``SwinTransformer`` for a Swin run), in eval mode on ``device``:
    ``model.forward_features(x)`` gives the tokens (B, 1+L, D) and ``model(x)`` the [CLS] feature (B, D) with
    ``global_pool="token"``, or the mean of the patch tokens through a fresh norm with ``"avg"`` (MAE's
    fine-tuning). ``num_classes > 0`` adds a freshly initialized head. ``x`` is standardized as the run's data
    was (see :func:`mimae.data.normalize`).
    """
    encoder, _, _ = load_mimae_encoder(path)
    return to_timm(encoder, num_classes, global_pool).to(device).eval()


def objective(method: str, image_size: int = 224, in_chans: int = 3, model: dict[str, Any] | None = None,
              mask: dict[str, Any] | None = None, seed: int | None = None, **options: Any) -> Objective:
    """The pretraining objective ``method`` (``"mae"``, ``"mimae"``, ``"umae"``, ``"simmim"``, ...) as a module for
    your own training loop: an encoder, the method's heads and its losses.

    ``model``: keys of the model section (``{"size": "small", "patch_size": 16}``; default the library's ViT);
    ``mask``: of the mask section (``{"ratio": 0.75}``); ``options``: the method's own section
    (``lambda_max=0.3, views=4`` for MI-MAE), checked by name and type; ``seed`` seeds the initial weights.

    ``out = obj(images)`` draws the method's masks and returns named losses: images (B, C, H, W) standardized
    floats ((B, 2, C, H, W) for two-crop methods such as ``simclr``), ``out["loss"]`` the scalar to backpropagate;
    ``obj(images, generator=g)`` draws the masks from ``g``. After each optimizer step call
    ``obj.after_step(out)`` (MI-MAE's gate, EMA targets).
    """
    cls = objective_class(method)
    overrides: dict[str, Any] = {"method": method, "data.image_size": image_size}
    for section, values in (("model", model), ("mask", mask)):
        overrides.update({f"{section}.{key}": value for key, value in (values or {}).items()})
    for key, value in options.items():
        overrides[f"{option_section(cls, key)}.{key}"] = value
    return build_objective(load_config(overrides=overrides), in_chans, seed).train()


def option_section(cls: type[Objective], key: str) -> str:
    """The section of ``cls`` (one of its ``sections``) that has the option ``key``; one line naming the valid
    options otherwise."""
    names = {section: {f.name for f in fields(sections()[section][0])} for section in cls.sections}
    owners = [section for section, keys in names.items() if key in keys]
    if len(owners) != 1:
        valid = sorted(set().union(*names.values()))
        why = "is in several of its sections: " + ", ".join(owners) if owners else "is not one of its options"
        raise ConfigError(f"{key!r} {why} (method {cls.name}: {', '.join(valid) or 'no options'}; the model and "
                          f"mask keys go in model= and mask=)")
    return owners[0]


def pretrain(config: Config | dict[str, Any] | str | Path, output_dir: str | Path, resume: bool | str = False,
             overwrite: bool = False) -> dict:
    """Pretrain as ``mimae pretrain`` does, into ``output_dir``; returns what its results.json holds.

    ``config``: a :class:`mimae.config.Config`, a dict of dotted overrides of the defaults
    (``{"method": "mimae", "train.epochs": 10}``), or a YAML file. ``resume``: True continues the run in
    ``output_dir`` with its own config, ``"auto"`` continues it if there is one.
    """
    from mimae.workflow import pretrain as run_pretraining
    from mimae.workflow import run_config
    if isinstance(config, Config):
        cfg, source = config, None
        if resume:
            cfg, source = run_config(output_dir, {}, resume)
            cfg = config if source is None else cfg
    else:
        requested = requested_values(config) if isinstance(config, (str, Path)) else dict(config)
        cfg, source = run_config(output_dir, requested, resume)
    # no source: a new run, or "auto" over a folder without a checkpoint (which starts over what is there)
    return run_pretraining(cfg, output_dir, resume=source or resume, overwrite=overwrite)


def evaluate(protocol: str, checkpoint: str | Path, overrides: dict[str, Any] | None = None,
             output: str | Path | None = None, device: str = "auto", progress: bool = False) -> dict:
    """Run the evaluation ``protocol`` (``"knn"``, ``"linear"``, ``"finetune"``, ``"lowshot"``,
    ``"finetune-scratch"``, ``"robustness"``, ...) on any weights file, as ``mimae eval`` does; writes its JSON
    (``output``, default ``eval_<protocol>.json`` beside the checkpoint) and returns what it holds, with
    ``output`` the file's path. ``overrides``: dotted keys of the evaluation sections (``{"eval.knn_k": 20}``)."""
    from mimae.eval.suite import evaluate as run_evaluation
    return run_evaluation(protocol, checkpoint, overrides, output, device, progress)


def mask_mi(checkpoints: str | Path | Sequence[str | Path], output_dir: str | Path, images: int = 2000,
            views: int = 4, fit_steps: int = 300, seed: int = 0, with_init: bool = False, device: str = "cpu",
            data_dir: str | None = None) -> dict:
    """The mask-invariant information of each encoder, as ``mimae analyze mask-mi`` measures it (docs/mimae.md):
    ``images`` test images, each cut into ``views`` orthogonally masked views encoded alone; estimators fitted on
    the first half of the images (``fit_steps`` Adam steps, seeded by ``seed``, which also draws the masks) and
    scored on the second. ``with_init``: each run's initialization (the same ViT and seed, untrained) after it.
    ``device``: ``"cpu"``, ``"auto"``, ``"cuda"`` or ``"cuda:N"``.

    Writes mask_mi.png and mask_mi.json into ``output_dir``; returns ``{"figures", "json", "checkpoints"}``, one
    dict per encoder in ``checkpoints`` with ``infonce`` (nats the sibling views' latents share, a held-out lower
    bound) beside its ``infonce_ceiling``, ``retrieval`` (top-1 sibling retrieval) beside ``retrieval_chance``,
    ``club`` (nats of the view's input beyond that) and ``cosine_siblings`` / ``cosine_others``.
    """
    from mimae.analysis.mask_mi import Fitting, run_mask_mi
    from mimae.distributed import pick_device
    if views < 2 or images < 8 or fit_steps < 1:
        raise ConfigError(f"mask_mi needs views >= 2, images >= 8 and fit_steps >= 1, got {views}, {images} and "
                          f"{fit_steps}")
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    return run_mask_mi(paths, output_dir, images, views, Fitting(steps=fit_steps, seed=seed), seed,
                       device=str(pick_device(device)), data_dir=data_dir, with_init=with_init)


def latent_rank(checkpoints: str | Path | Sequence[str | Path], output_dir: str | Path, images: int = 2000,
                with_init: bool = False, device: str = "cpu", data_dir: str | None = None) -> dict:
    """How many directions each encoder's latents use, as ``mimae analyze rank`` measures it (docs/analyses.md): the
    [CLS] latents of ``images`` unmasked test images. ``with_init``: each run's initialization (the same ViT and
    seed, untrained) after it. ``device``: ``"cpu"``, ``"auto"``, ``"cuda"`` or ``"cuda:N"``.

    Writes rank.png and rank.json into ``output_dir``; returns ``{"figures", "json", "checkpoints"}``, one dict per
    encoder in ``checkpoints`` with ``effective_rank`` (of the centered latents, of ``dims``), ``unit_std`` (the std
    of the unit latents; 0 when collapsed) beside ``unit_std_even`` (1/sqrt(dims)) and ``cosine_others``.
    """
    from mimae.analysis.latent_rank import run_latent_rank
    from mimae.distributed import pick_device
    if images < 2:
        raise ConfigError(f"latent_rank needs images >= 2, got {images}")
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    return run_latent_rank(paths, output_dir, images, device=str(pick_device(device)), data_dir=data_dir,
                           with_init=with_init)
