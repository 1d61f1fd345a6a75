"""Typed configuration: the run's sections and their defaults, YAML, overrides and validation.

A run is described by one :class:`Config`: the method, the training loop's section (``train``), and every other
section, defined beside its owner and registered with :func:`register_section`: ``data`` in mimae.data, ``model`` in
mimae.models, ``mask`` in mimae.masking, ``optim`` in mimae.optim, the evaluation protocols' in mimae.eval,
``hierarchy`` in mimae.hierarchy, each method's own (``mae``, ``mimae``, ...) beside its objective, which also
registers the method's defaults (:func:`register_method`). Which modules register is explicit: the
``mimae.sections`` entry points, loaded when a config is first built, whatever was imported before.

A config is built from the defaults, then a YAML file (``--config FILE``), then ``--quick`` presets, then
``section.key=value`` overrides from the command line, and it is validated once, before anything runs: a bad value
fails with a message naming the key and what is allowed.

Each field's ``help`` text is what ``mimae pretrain --help`` prints, so the options document themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mimae.data.config import DataConfig
    from mimae.eval.config import AlongConfig, EvalConfig, FinetuneConfig, LinearConfig, LowShotConfig, RobustnessConfig
    from mimae.hierarchy.config import HierarchyConfig
    from mimae.masking import MaskConfig
    from mimae.models.config import ModelConfig
    from mimae.optim import OptimConfig


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


def param(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None, default_factory: Any = None) -> Any:
    """A dataclass field with its documentation and the range of allowed values (checked by :func:`validate`)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class MethodDefaults:
    """What a pretraining method declares about the run's shared keys (registered with its objective)."""

    mask_ratio: float
    mask_unit_patches: int = 1
    reconstructs_hidden: bool = True  # its loss averages over hidden patches: mask.ratio must hide at least one
    backbones: tuple[str, ...] = ("vit",)  # the model.backbone values it trains


# keys that were merged into mask.*: an old run's config is migrated, a new one gets a message
RENAMED_KEYS = {"simmim.mask_ratio": "mask.ratio (one mask ratio for every method)",
                "simmim.unit": "mask.unit (one masking unit for every method)",
                "mrcl.mask_ratio": "mask.ratio (one mask ratio for every method)",
                "mimae.complete_masking": "mimae.views=complete (one key for the views per image)",
                "simmim.mi_views": "mimae.views (one key for the views per image)"}

# the registries: method name -> its defaults, section name -> (its dataclass, a one-line description). Each owner
# registers at import; the owners are the installed distributions' ``mimae.sections`` entry points (mimae's own in
# its pyproject.toml, a plugin's in its own), imported once, when a config is first built
_METHODS: dict[str, MethodDefaults] = {}
_SECTIONS: dict[str, tuple[type, str]] = {}
_REGISTERED: list[str] = []  # the entry points loaded


def register_method(name: str, defaults: MethodDefaults) -> None:
    _METHODS[name] = defaults


def register_section(name: str, cls: type, description: str) -> None:
    """Make the dataclass ``cls`` the config section ``name`` (``name.key=value``, YAML, help, validation). A
    section may define ``validate(cfg)`` (its rules between keys, given the whole config) and ``after_set(key)``
    (what setting one of its keys implies)."""
    _SECTIONS[name] = (cls, description)


def load_registrations() -> None:
    """Import every ``mimae.sections`` entry point, once: each registers its sections and methods."""
    if _REGISTERED:
        return
    points = entry_points(group="mimae.sections")
    if not points:
        raise ConfigError("no mimae.sections entry points: mimae is not installed (pip install -e . in a checkout)")
    for point in points:
        _REGISTERED.append(point.name)
        point.load()


def methods() -> dict[str, MethodDefaults]:
    """Every registered method's defaults, by name."""
    load_registrations()
    return _METHODS


def sections() -> dict[str, tuple[type, str]]:
    """Every registered section: name -> (its dataclass, a one-line description)."""
    load_registrations()
    return _SECTIONS


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
class Config:
    """The run's core sections, and every registered section (data, model, the evaluation protocols, the hierarchy,
    the methods' own) under ``sections``, read as attributes: ``cfg.model``, ``cfg.mimae``."""

    method: str = param("mae", "pretraining objective")
    train: TrainConfig = param(None, "training loop", default_factory=TrainConfig)
    sections: dict[str, Any] = param(None, "the registered sections, each defined beside its owner",
                                     default_factory=lambda: {name: cls() for name, (cls, _) in sections().items()})

    if TYPE_CHECKING:  # the sections registered by mimae itself, typed for the checker
        @property
        def data(self) -> DataConfig: ...
        @property
        def mask(self) -> MaskConfig: ...
        @property
        def optim(self) -> OptimConfig: ...
        @property
        def model(self) -> ModelConfig: ...
        @property
        def eval(self) -> EvalConfig: ...
        @property
        def linear(self) -> LinearConfig: ...
        @property
        def finetune(self) -> FinetuneConfig: ...
        @property
        def along(self) -> AlongConfig: ...
        @property
        def lowshot(self) -> LowShotConfig: ...
        @property
        def robustness(self) -> RobustnessConfig: ...
        @property
        def hierarchy(self) -> HierarchyConfig: ...

    def __getattr__(self, name: str) -> Any:
        """``cfg.model``, ``cfg.mimae`` and the other registered sections."""
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"the config has no section {name!r}")

    def to_dict(self) -> dict:
        """Plain containers, the registered sections beside the core ones (as in ``config.yaml``)."""
        out = dataclasses.asdict(self)
        out.update(out.pop("sections"))
        return out




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
        raise ConfigError(f"{key} is now {RENAMED_KEYS[key]}")
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
    if hasattr(target, "after_set"):
        target.after_set(name)


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


def parse_floats(text: str, key: str) -> list[float]:
    """An option's comma-separated numbers: ``"0.1,1,6.4"`` -> ``[0.1, 1.0, 6.4]``; a one-line error naming ``key``."""
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a comma-separated list of numbers") from None


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


# where a run runs and how often it writes: options that never make it another run
HOW_IT_RUNS = ("train.device", "train.threads", "data.data_dir", "data.num_workers", "train.log_every",
               "train.save_every", "train.save_every_steps", "train.save_every_minutes", "train.max_bad_steps")


def run_differences(a: Config, b: Config) -> list[str]:
    """Each key, with both values, in which two configs make different runs (the options of ``HOW_IT_RUNS``
    aside): ``["optim.base_lr (0.001 vs 0.002)"]``; empty for the same run."""
    theirs = {key: value for key, value, _ in iter_fields(b)}
    return [f"{key} ({value!r} vs {theirs.get(key)!r})" for key, value, _ in iter_fields(a)
            if key not in HOW_IT_RUNS and theirs.get(key) != value]


def validate(cfg: Config) -> Config:
    """Resolve what sections leave to the method (the mask's ratio and unit), then check every value against its
    declared range and each section's rules between keys; raise :class:`ConfigError` naming the key."""
    if cfg.method not in methods():
        raise ConfigError(f"method={cfg.method!r} is not one of {sorted(methods())}")
    for section in cfg.sections.values():
        if hasattr(section, "resolve"):
            section.resolve(cfg)
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
    for section in cfg.sections.values():
        if hasattr(section, "validate"):
            section.validate(cfg)
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


def requested_values(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every key a user set, in order of precedence: the YAML file, then the overrides (a preset of
    :mod:`mimae.presets` first among them)."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path) as fh:
            mapping = yaml.safe_load(fh) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        values.update(flatten(mapping))
    values.update(overrides or {})
    return values


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file, then the overrides; validated."""
    cfg = Config()
    for key, value in presets_first(requested_values(path, overrides)):
        set_value(cfg, key, value)
    return validate(cfg)


def presets_first(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """``values`` with the sections' preset keys first (``model.size``, which sets the six dims), so that a key
    given explicitly overrides what a preset set, whatever their order."""
    presets = {f"{name}.{key}" for name, (cls, _) in sections().items() for key in getattr(cls, "presets", ())}
    return sorted(values.items(), key=lambda item: item[0] not in presets)


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
