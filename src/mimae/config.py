"""Typed configuration: the run's sections and their defaults, YAML, overrides and validation.

A run is described by one :class:`Config`. The run's sections (data, model, mask, optim, train, the evaluation
protocols, the hierarchical data) are defined here; each method's own section (``mae``, ``mimae``, ``umae``,
``mrcl``, ``simmim``) is defined beside its objective and registered with :func:`register_section`, as is each
method's default mask ratio and unit (:func:`register_method`). A config is built from the defaults, then a YAML
file (``--config FILE``), then ``--quick`` presets, then ``section.key=value`` overrides from the command line, and
it is validated once, before anything runs: a bad value fails with a message naming the key and what is allowed.

Each field's ``help`` text is what ``mimae pretrain --help`` prints, so the options document themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


def param(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None, default_factory: Any = None) -> Any:
    """A dataclass field with its documentation and the range of allowed values (checked by :func:`validate`)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# name -> (embed_dim, depth, num_heads, decoder_dim, decoder_depth, decoder_heads)
MODEL_SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "mini": (128, 6, 4, 128, 2, 2),
    "tiny": (192, 12, 3, 128, 2, 4),
    "small": (384, 12, 6, 256, 4, 8),
    "base": (768, 12, 12, 512, 8, 16),
    "large": (1024, 24, 16, 512, 8, 16),
}

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "stl10", "imagefolder", "hierarchical")


@dataclass
class DataConfig:
    dataset: str = param("fashion-mnist", "dataset name", choices=DATASETS)
    data_dir: str | None = param(None, "folder holding the dataset (default: $MIMAE_DATA, then the system copy, "
                                       "then torchvision's download)")
    image_size: int = param(32, "side of the square input images, pixels (smaller images are padded)", low=8)
    train_limit: int | None = param(None, "use only the first N training images (None: all)", low=1)
    test_limit: int | None = param(None, "use only the first N test images in evaluations (None: all)", low=1)
    crop_scale_min: float = param(0.2, "smallest area fraction of RandomResizedCrop in pretraining", low=0.01, high=1.0)
    num_workers: int | None = param(None, "DataLoader worker processes (0: load in the training process; None: 0 "
                                          "for in-memory data, else one per core beyond the first, at most 8)", low=0)


@dataclass
class ModelConfig:
    size: str = param("mini", "named ViT size; the explicit dims below override it",
                      choices=tuple(MODEL_SIZES))
    patch_size: int = param(4, "ViT patch side, pixels", low=1)
    embed_dim: int | None = param(None, "encoder width (None: from size)", low=8)
    depth: int | None = param(None, "encoder blocks (None: from size)", low=1)
    num_heads: int | None = param(None, "encoder attention heads (None: from size)", low=1)
    decoder_dim: int | None = param(None, "decoder width (None: from size)", low=8)
    decoder_depth: int | None = param(None, "decoder blocks (None: from size)", low=0)
    decoder_heads: int | None = param(None, "decoder attention heads (None: from size)", low=1)
    mlp_ratio: float = param(4.0, "MLP hidden width / embed width", low=0.5)
    drop_path: float = param(0.0, "stochastic depth rate of the encoder", low=0.0, high=1.0)
    backbone: str = param("vit", "encoder: vit, or swin (timm's Swin Transformer; simmim and mi-simmim only, as "
                                 "paper 000's SimMIM rows: embed_dim and num_heads are its first stage's, doubling "
                                 "per stage)", choices=("vit", "swin"))
    swin_depths: str = param("2,2,2", "blocks per Swin stage, comma-separated (Swin-B: 2,2,18,2)")
    swin_window: int = param(4, "Swin attention window side, tokens (SimMIM's Swin-B at 192 px: 6)", low=1)

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

    def dims(self) -> dict[str, int]:
        """The resolved sizes: the named size with every explicit dim applied."""
        names = ("embed_dim", "depth", "num_heads", "decoder_dim", "decoder_depth", "decoder_heads")
        resolved = dict(zip(names, MODEL_SIZES[self.size]))
        resolved.update({n: getattr(self, n) for n in names if getattr(self, n) is not None})
        return resolved


@dataclass
class MaskConfig:
    ratio: float | None = param(None, "fraction of masking units hidden from the encoder, for every method (None: "
                                      "the method's default: 0.75 for mae, umae, mimae; 0.5 for simmim, "
                                      "mi-simmim; 0.2 for mr-simclr, mr-byol, mr-barlow; 0 for simclr, byol, "
                                      "barlow)", low=0.0, high=0.99)
    unit: int | None = param(None, "masking unit side in pixels, a multiple of model.patch_size that tiles the "
                                   "image (None: the method's default: the patch; twice the patch for simmim and "
                                   "mi-simmim, as SimMIM's 32 px units on 16 px patches; on a Swin, its output "
                                   "stride)", low=1)


@dataclass(frozen=True)
class MethodDefaults:
    """What a pretraining method declares about the run's shared keys (registered with its objective)."""

    mask_ratio: float
    mask_unit_patches: int = 1
    reconstructs_hidden: bool = True  # its loss averages over hidden patches: mask.ratio must hide at least one
    backbones: tuple[str, ...] = ("vit",)  # the model.backbone values it trains


# method name -> its defaults; filled by ``mimae.objectives`` as each objective registers
METHODS: dict[str, MethodDefaults] = {}

# keys that were merged into mask.*: an old run's config is migrated, a new one gets a message
RENAMED_KEYS = {"simmim.mask_ratio": "mask.ratio", "simmim.unit": "mask.unit", "mrcl.mask_ratio": "mask.ratio"}


def register_method(name: str, defaults: MethodDefaults) -> None:
    METHODS[name] = defaults


# section name -> (its dataclass, a one-line description); a method's options live beside its objective, which
# registers them here, so ``section.key=value`` and ``mimae pretrain --help`` know them
SECTIONS: dict[str, tuple[type, str]] = {}


def register_section(name: str, cls: type, description: str) -> None:
    """Make the dataclass ``cls`` the config section ``name`` (``name.key=value``, YAML, help, validation)."""
    SECTIONS[name] = (cls, description)


@dataclass
class OptimConfig:
    batch_size: int = param(64, "images per process per micro-batch", low=1)
    accum_steps: int = param(1, "micro-batches accumulated per optimizer step", low=1)
    base_lr: float = param(3e-3, "learning rate per 256 (view, mask) samples; lr = base_lr * samples per step / 256, "
                                 "samples = images x crops x masks per image (3e-3: lr "
                                 "7.5e-4 at the default batch of 64, docs/default_recipe.md)", low=0.0)
    min_lr: float = param(0.0, "learning rate at the end of the cosine schedule", low=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay (none on biases, norms and tokens)", low=0.0)
    beta1: float = param(0.9, "AdamW beta1", low=0.0, high=1.0)
    beta2: float = param(0.95, "AdamW beta2", low=0.0, high=1.0)
    warmup_epochs: float = param(0.5, "linear warmup length, epochs (applied per iteration)", low=0.0)
    clip_grad: float | None = param(None, "clip the gradient norm to this value (None: no clipping)", low=0.0)


@dataclass
class TrainConfig:
    epochs: int = param(2, "pretraining epochs", low=1)
    equal_samples: bool = param(False, "count the budget in (view, mask) samples, as paper 000: optim.batch_size "
                                       "is samples per micro-batch, so a method with N samples per image (MI-MAE's "
                                       "N masks, the 2 crops of SimCLR and MRCL) takes batch_size / N images per "
                                       "step, and every method takes the same steps at the same peak lr for the "
                                       "same epochs (mimae.budget)")
    seed: int = param(0, "seed of weights, data order, augmentation and masks", low=0)
    precision: str = param("auto", "autocast precision; auto: bf16 on GPUs that support it (else fp16 with a "
                                   "gradient scaler), and on CPUs with native bf16 (AVX512-BF16/AMX), else fp32",
                           choices=("auto", "bf16", "fp16", "fp32"))
    device: str = param("auto", "auto, cpu, cuda or cuda:N")
    threads: int | None = param(None, "torch CPU threads (None: torch's default)", low=1)
    compile: bool = param(False, "torch.compile the model (costs start-up time; no gain on CPU)")
    log_every: int = param(20, "optimizer steps between metric lines", low=1)
    eval_every: int = param(0, "epochs between kNN evaluations (0: only at start and end)", low=0)
    save_every: int = param(1, "epochs between checkpoints", low=1)
    save_every_steps: int = param(0, "also write a checkpoint every N optimizer steps (0: only at the epochs above)",
                                  low=0)
    save_every_minutes: float = param(0.0, "also write a checkpoint when this many minutes have passed since the "
                                           "last one, checked at each log line (0: off)", low=0.0)
    max_bad_steps: int = param(5, "consecutive steps with a non-finite loss that are skipped (not applied to the "
                                  "weights) before the run stops, keeping its last good checkpoint (counted on the "
                                  "device, checked at each log line)", low=1)
    keep_checkpoints: bool = param(False, "also keep a copy of each epoch's checkpoint as checkpoint-epoch<N>.pt "
                                          "(epoch 0: the initialization), e.g. for analyses along training")
    knn_at_init: bool = param(True, "also evaluate the encoder at initialization")
    init_from: str | None = param(None, "start the encoder from these weights instead of a random initialization: "
                                        "a run folder or checkpoint, a timm safetensors export, or an official MAE "
                                        "checkpoint such as mae_pretrain_vit_base.pth (the architecture must match)")


@dataclass
class EvalConfig:
    knn_k: int = param(20, "neighbours of the kNN classifier", low=1)
    knn_temperature: float = param(0.07, "temperature of the kNN vote weights", low=1e-4)
    batch_size: int | None = param(None, "images per forward pass when extracting features (None: 128 on a CPU, "
                                         "where a smaller batch stays in cache and runs faster, 512 on a GPU)", low=1)
    knn_bank_limit: int | None = param(10000, "training images used as the kNN bank (None: all); full-resolution "
                                              "encoding is ~4x dearer than masked training, so the in-training "
                                              "check uses a slice", low=1)
    knn_query_limit: int | None = param(5000, "test images classified by kNN (None: all)", low=1)


@dataclass
class LinearConfig:
    epochs: int = param(90, "linear-probe epochs (MAE: 90)", low=1)
    warmup_epochs: float = param(10.0, "linear warmup of the probe, epochs (MAE: 10)", low=0.0)
    batch_size: int = param(256, "probe batch size (MAE: 16384 on ImageNet; lr scales with it)", low=1)
    base_lr: float = param(6.4, "probe learning rate per 256 images; 6.4 at the default batch of 256 is the lr "
                                "MAE's probe runs at (0.1 per 256 at its batch of 16,384), which LARS needs on "
                                "small data", low=0.0)
    optimizer: str = param("lars", "LARS (MAE's probe) or SGD with momentum 0.9", choices=("lars", "sgd"))
    weight_decay: float = param(0.0, "probe weight decay (MAE: 0)", low=0.0)
    reextract: bool = param(False, "re-encode the training images every epoch with RandomResizedCrop + flip, as "
                                   "MAE's probe does (one encoder pass per image per epoch); default: encode the "
                                   "un-augmented images once and train on the cached features")
    crop_scale_min: float = param(0.08, "smallest crop area fraction when reextract=true", low=0.01, high=1.0)
    train_limit: int | None = param(10000, "training images the probe learns from (None: all)", low=1)
    test_limit: int | None = param(5000, "test images it is scored on (None: all)", low=1)
    seed: int = param(0, "seed of the probe's initialization, data order and augmentation", low=0)


@dataclass
class AlongConfig:
    epochs: str = param("all", "the kept epoch checkpoints `mimae eval along` scores: all, or a list such as "
                               "0,1,2,4,8,16")
    probe_lrs: str = param("0.1,0.3,1,3,6.4", "the linear probe's base_lr values (per 256) tried on every checkpoint "
                                              "and on the raw pixels; each accuracy is kept and the best is read off")


@dataclass
class FinetuneConfig:
    epochs: int = param(100, "fine-tuning epochs (paper 000 / MAE: 100)", low=1)
    warmup_epochs: float = param(5.0, "linear warmup, epochs (MAE: 5)", low=0.0)
    batch_size: int = param(128, "images per step (lr scales with it)", low=2)
    base_lr: float = param(1e-3, "learning rate per 256 images (paper 000: 1e-3)", low=0.0)
    min_lr: float = param(1e-6, "learning rate at the end of the cosine schedule", low=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay (none on biases, norms and tokens)", low=0.0)
    layer_decay: float = param(0.75, "layer-wise lr decay: block i of d gets lr * layer_decay^(d - i)",
                               low=0.0, high=1.0)
    drop_path: float = param(0.1, "stochastic depth rate of the encoder while fine-tuning", low=0.0, high=1.0)
    mixup: float = param(0.8, "mixup alpha (0: off)", low=0.0)
    cutmix: float = param(1.0, "cutmix alpha (0: off)", low=0.0)
    label_smoothing: float = param(0.1, "label smoothing", low=0.0, high=1.0)
    rand_augment: str = param("rand-m9-mstd0.5-inc1-mmax9", "timm RandAugment policy, empty for none (MAE: "
                              "rand-m9-mstd0.5-inc1; mmax9 keeps posterize at >= 1 bit, as Pillow now requires)")
    reprob: float = param(0.25, "random-erasing probability", low=0.0, high=1.0)
    crop_scale_min: float = param(0.08, "smallest RandomResizedCrop area fraction", low=0.01, high=1.0)
    train_limit: int | None = param(None, "training images (None: all)", low=1)
    test_limit: int | None = param(None, "test images it is scored on (None: all)", low=1)
    seed: int = param(0, "seed of the head, data order, augmentation and drop path", low=0)


@dataclass
class LowShotConfig:
    fraction: float = param(0.01, "fraction of the training labels kept, per class (paper 000: 1%)",
                            low=1e-5, high=1.0)
    seed: int = param(0, "seed of the class-balanced subset", low=0)
    subset_file: str | None = param(None, "JSON file with the subset's indices: read if it exists, else written "
                                          "(default: lowshot_subset.json beside the checkpoint)")
    epochs: int = param(50, "fine-tuning epochs on the subset (the fine-tune section gives the rest)", low=1)


@dataclass
class RobustnessConfig:
    classifier: str = param("linear", "classifier scored on the corrupted images: the linear probe (linear "
                                      "section) or a fine-tuned model (finetune section; paper 000 Tab. 5)",
                            choices=("linear", "finetune"))
    corruptions: str = param("all", "comma-separated corruption names, or all (the 15 of ImageNet-C)")
    severities: str = param("1,2,3,4,5", "comma-separated severities in 1..5")
    test_limit: int | None = param(1000, "test images corrupted (None: all)", low=1)
    baseline: str | None = param(None, "robustness JSON of the baseline model the corruption errors are divided "
                                       "by (mCE); None: report errors only")
    seed: int = param(0, "seed of the random corruptions", low=0)


@dataclass
class HierarchyConfig:
    """The synthetic hierarchical latent model of paper 003 (``mimae hierarchy``, dataset ``hierarchical``).

    A tree over the pixel grid: the root, then ``branching`` x ``branching`` children per node for ``depth`` latent
    levels, then observable pixel blocks. Each node is an invertible mix of its parent and fresh noise, so its
    dimension is the parent's plus ``dim_growth`` noise dimensions; the blocks hold ``channels`` x side x side values.
    """

    image_size: int = param(32, "side of the generated images, pixels", low=2)
    channels: int = param(3, "colour channels of the generated images", low=1)
    depth: int = param(4, "latent levels, root included", low=1)
    branching: int = param(2, "children per node along each axis (2: a quadtree)", low=2)
    root_dim: int = param(4, "dimension of the root latent (the label is read from its first two coordinates)",
                          low=2)
    dim_growth: int = param(2, "exogenous noise dimensions added at each latent level below the root", low=1)
    noise: float = param(1.0, "standard deviation of the exogenous noise (the root is standard normal)", low=0.0)
    nonlinearity: float = param(0.5, "strength a of the invertible map x + a*tanh(x) after each linear mix", low=0.0)
    sign_gate: bool = param(True, "after each mix, multiply all coordinates but the first by the first one's sign "
                                  "(invertible; hides each parent from linear read-outs of its children)")
    num_classes: int = param(8, "labels: equal angular sectors of the root's first two coordinates", low=2)
    train_size: int = param(20000, "generated training images", low=1)
    test_size: int = param(5000, "generated test images", low=1)
    seed: int = param(0, "seed of the mixing functions and of the samples", low=0)

    def block_size(self) -> int:
        """Side, in pixels, of the observable blocks below the lowest latent level."""
        return self.image_size // self.branching ** self.depth

    def check(self) -> None:
        """Fail with a message naming the keys when the geometry or the dimensions do not fit together."""
        leaves = self.branching ** self.depth
        if self.image_size % leaves:
            raise ConfigError(f"hierarchy.image_size={self.image_size} is not divisible by hierarchy.branching"
                              f"**hierarchy.depth={leaves}")
        lowest = self.root_dim + (self.depth - 1) * self.dim_growth
        block_dim = self.channels * self.block_size() ** 2
        if lowest > block_dim:
            raise ConfigError(f"the lowest latent level has {lowest} dimensions (hierarchy.root_dim + "
                              f"(hierarchy.depth - 1) * hierarchy.dim_growth) but the pixel blocks below it only "
                              f"{block_dim}; an invertible mix needs at least as many")


@dataclass
class Config:
    method: str = param("mae", "pretraining objective")
    data: DataConfig = param(None, "data", default_factory=DataConfig)
    model: ModelConfig = param(None, "model", default_factory=ModelConfig)
    mask: MaskConfig = param(None, "masking", default_factory=MaskConfig)
    optim: OptimConfig = param(None, "optimizer", default_factory=OptimConfig)
    train: TrainConfig = param(None, "training loop", default_factory=TrainConfig)
    eval: EvalConfig = param(None, "evaluation", default_factory=EvalConfig)
    linear: LinearConfig = param(None, "linear probe", default_factory=LinearConfig)
    finetune: FinetuneConfig = param(None, "fine-tuning", default_factory=FinetuneConfig)
    along: AlongConfig = param(None, "the budget curve: scores of a run's kept epoch checkpoints",
                               default_factory=AlongConfig)
    lowshot: LowShotConfig = param(None, "low-shot fine-tuning", default_factory=LowShotConfig)
    robustness: RobustnessConfig = param(None, "corruption robustness", default_factory=RobustnessConfig)
    hierarchy: HierarchyConfig = param(None, "synthetic hierarchical latent model (paper 003)",
                                       default_factory=HierarchyConfig)
    sections: dict[str, Any] = param(None, "the methods' own sections (mae, mimae, umae, mrcl, simmim), each "
                                           "registered beside its objective", default_factory=lambda: {
                                               name: cls() for name, (cls, _) in SECTIONS.items()})

    def __getattr__(self, name: str) -> Any:
        """``cfg.mimae`` and the other method sections, which their objectives register."""
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"the config has no section {name!r}")

    def to_dict(self) -> dict:
        """Plain containers, the method sections beside the run's (as in ``config.yaml``)."""
        out = dataclasses.asdict(self)
        out.update(out.pop("sections"))
        return out


# `--quick`: a minutes-long run on a slice of the data with a small model, for trying things out.
QUICK_OVERRIDES: dict[str, Any] = {
    "data.train_limit": 6000,
    "data.test_limit": 2000,
    "eval.knn_bank_limit": 6000,
    "eval.knn_query_limit": 2000,
    "model.embed_dim": 96,
    "model.depth": 4,
    "model.num_heads": 3,
    "model.decoder_dim": 64,
    "model.decoder_depth": 1,
    "model.decoder_heads": 2,
    "optim.batch_size": 128,
    "optim.base_lr": 5e-4,
    "train.epochs": 3,
    "train.log_every": 10,
}


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_value(text: str) -> Any:
    """Turn a command-line value into a Python value the way YAML would (``1e-3``, ``true``, ``null``...)."""
    return yaml.safe_load(text) if text else None


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Coerce ``value`` to ``annotation`` (int, float, bool, str, or X | None), or fail naming ``key``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        annotation = args[0]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation in (int, float) and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        return str(value)
    raise ConfigError(f"{key}: unsupported type {annotation}")


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set ``section.key`` (or a top-level key such as ``method``) with type coercion."""
    if key in RENAMED_KEYS:
        raise ConfigError(f"{key} is now {RENAMED_KEYS[key]}: one mask ratio and one masking unit for every method")
    parts = key.split(".")
    target: Any = cfg
    for part in parts[:-1]:
        if not dataclasses.is_dataclass(target) or part not in _children(target):
            raise ConfigError(f"unknown config section {part!r} in {key!r}; sections: {section_names()}")
        target = getattr(target, part)
    name = parts[-1]
    hints = _section_types(type(target))
    if name not in hints or name == "sections" or dataclasses.is_dataclass(getattr(target, name)):
        known = ", ".join(f.name for f in dataclasses.fields(target))
        raise ConfigError(f"unknown config key {key!r}; known keys here: {known}")
    setattr(target, name, _coerce(key, value, hints[name]))


def _children(obj: Any) -> list[str]:
    """The keys under a config object: its fields, and for the run's config the method sections too."""
    names = [f.name for f in dataclasses.fields(obj) if f.name != "sections"]
    return names + list(obj.sections) if isinstance(obj, Config) else names


def section_names() -> list[str]:
    return [n for n in _children(Config()) if n != "method"]


def apply_mapping(cfg: Config, mapping: dict, prefix: str = "") -> None:
    """Apply a nested mapping (as read from YAML) onto ``cfg``."""
    for key, value in mapping.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            apply_mapping(cfg, value, prefix=f"{full}.")
        else:
            set_value(cfg, full, value)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.base_lr=1e-3", "model.size=tiny"]`` -> ``{"optim.base_lr": 0.001, "model.size": "tiny"}``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        key, text = item.split("=", 1)
        out[key.strip()] = _parse_value(text.strip())
    return out


def iter_fields(obj: Any, prefix: str = ""):
    """Yield ``(dotted_key, value, field)`` for every leaf option of a config object."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "sections" and isinstance(obj, Config):
            for name, section in value.items():
                yield from iter_fields(section, f"{prefix}{name}.")
        elif dataclasses.is_dataclass(value):
            yield from iter_fields(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value, f


def resolve_method_defaults(cfg: Config) -> None:
    """Fill ``mask.ratio`` and ``mask.unit`` left at None with the method's defaults, once, so that the saved config
    says what the run used."""
    if cfg.method not in METHODS:
        raise ConfigError(f"method={cfg.method!r} is not one of {sorted(METHODS)}")
    spec = METHODS[cfg.method]
    if cfg.mask.ratio is None:
        cfg.mask.ratio = spec.mask_ratio
    if cfg.mask.unit is None:
        cfg.mask.unit = spec.mask_unit_patches * cfg.model.patch_size
        if cfg.model.backbone == "swin":  # SimMIM's Swin: a masking unit of the last stage's stride (32 px)
            cfg.mask.unit = max(cfg.mask.unit, cfg.model.patch_size * 2 ** (len(cfg.model.stage_depths()) - 1))


def validate(cfg: Config) -> Config:
    """Resolve the method's defaults, then check every value against its declared range and the cross-field
    rules; raise :class:`ConfigError` naming the key."""
    resolve_method_defaults(cfg)
    for key, value, f in iter_fields(cfg):
        meta = f.metadata
        if value is None:
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{key}={value!r} is not one of {list(meta['choices'])}")
        if meta.get("low") is not None and value < meta["low"]:
            raise ConfigError(f"{key}={value!r} is below the allowed minimum {meta['low']}")
        if meta.get("high") is not None and value > meta["high"]:
            raise ConfigError(f"{key}={value!r} is above the allowed maximum {meta['high']}")
    dims = cfg.model.dims()
    p = cfg.model.patch_size
    if cfg.data.image_size % p:
        raise ConfigError(f"data.image_size={cfg.data.image_size} is not a multiple of model.patch_size={p}")
    if cfg.model.backbone not in METHODS[cfg.method].backbones:
        raise ConfigError(f"model.backbone={cfg.model.backbone} is not one {cfg.method} trains; it takes "
                          f"{', '.join(METHODS[cfg.method].backbones)}")
    if cfg.model.backbone == "swin":
        stride = p * 2 ** (len(cfg.model.stage_depths()) - 1)
        if cfg.data.image_size % stride or cfg.mask.unit % stride:
            raise ConfigError(f"a Swin of {len(cfg.model.stage_depths())} stages on {p} px patches has an output "
                              f"stride of {stride} px: data.image_size={cfg.data.image_size} and mask.unit="
                              f"{cfg.mask.unit} must be multiples of it")
    for width, heads in (("embed_dim", "num_heads"), ("decoder_dim", "decoder_heads")):
        if dims[width] % dims[heads]:
            raise ConfigError(f"model.{width}={dims[width]} is not divisible by model.{heads}={dims[heads]}")
    unit = cfg.mask.unit
    if unit % p or (cfg.data.image_size // p) % (unit // p):
        raise ConfigError(f"mask.unit={unit} must be a multiple of model.patch_size={p} that tiles the "
                          f"{cfg.data.image_size}px image")
    grid_units = (cfg.data.image_size // unit) ** 2
    visible = int(grid_units * (1 - cfg.mask.ratio))
    if visible < 1:
        raise ConfigError(f"mask.ratio={cfg.mask.ratio} leaves no visible unit out of {grid_units}")
    if METHODS[cfg.method].reconstructs_hidden and visible == grid_units:
        raise ConfigError(f"mask.ratio={cfg.mask.ratio} hides none of the {grid_units} masking units, and "
                          f"{cfg.method} learns by predicting hidden ones")
    cfg.hierarchy.check()
    return cfg


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"base_lr": 1e-3}}`` -> ``{"optim.base_lr": 1e-3}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def requested_values(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                     quick: bool = False) -> dict[str, Any]:
    """Every key a user set, in order of precedence: the YAML file, then the quick preset, then the overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path) as fh:
            mapping = yaml.safe_load(fh) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        values.update(flatten(mapping))
    if quick:
        values.update(QUICK_OVERRIDES)
    values.update(overrides or {})
    return values


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                quick: bool = False) -> Config:
    """Defaults, then the YAML file, then the quick preset, then the overrides; validated."""
    cfg = Config()
    for key, value in requested_values(path, overrides, quick).items():
        set_value(cfg, key, value)
    return validate(cfg)


# what a resumed run may change: how long it trains, how often it logs, evaluates and saves, where it runs and
# reads its data from, and the evaluation protocols; the rest would make it another run
SAFE_ON_RESUME = ("train.epochs", "train.log_every", "train.eval_every", "train.save_every", "train.save_every_steps",
                  "train.save_every_minutes", "train.keep_checkpoints", "train.knn_at_init", "train.max_bad_steps",
                  "train.device", "train.threads", "data.data_dir", "data.num_workers", "eval.", "linear.", "along.",
                  "finetune.", "lowshot.", "robustness.")


def resume_config(saved: Config, requested: dict[str, Any]) -> Config:
    """The config of a resumed run: the run's own, with the requested values that are safe to change applied.

    A requested value equal to the saved one is accepted whatever the key (so the command that started the run
    resumes it); a different value of any other key is refused, naming each such key with both values.
    """
    cfg = copy.deepcopy(saved)
    refused = []
    for key, value in requested.items():
        probe = copy.deepcopy(saved)
        set_value(probe, key, value)
        before, after = _get(saved, key), _get(probe, key)
        if before == after:
            continue
        if key.startswith(SAFE_ON_RESUME):
            set_value(cfg, key, value)
        else:
            refused.append(f"{key} ({before!r} -> {after!r})")
    if refused:
        raise ConfigError(f"--resume continues the run with its own config; these options differ from it and would "
                          f"make another run: {', '.join(refused)} (use a new --output-dir, or --overwrite to start "
                          f"over here)")
    return validate(cfg)


def _get(cfg: Config, key: str) -> Any:
    target: Any = cfg
    for part in key.split("."):
        target = getattr(target, part)
    return target


def migrate(mapping: dict) -> dict:
    """A saved config with the per-method mask keys of older runs (``simmim.mask_ratio``, ``simmim.unit``,
    ``mrcl.mask_ratio``) moved to ``mask.*`` when they were the run's own, dropped otherwise."""
    mapping = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
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
    mask = mapping.setdefault("mask", {})
    for key, value in legacy.items():
        mask[key.split(".")[1]] = value
    return mapping


def config_from_dict(mapping: dict) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (for instance from a checkpoint)."""
    cfg = Config()
    apply_mapping(cfg, migrate(mapping))
    return validate(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    with open(path, "w") as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)


def describe_options() -> str:
    """One line per option: key, default and help (used by the command-line ``--help``)."""
    lines = []
    for key, value, f in iter_fields(Config()):
        meta = f.metadata
        allowed = ""
        if meta.get("choices"):
            allowed = f" {{{', '.join(map(str, meta['choices']))}}}"
        lines.append(f"  {key}={value!r}{allowed}  {meta.get('help', '')}")
    return "\n".join(lines)
