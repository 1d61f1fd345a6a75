"""The evaluation protocols on a checkpoint: what ``mimae eval <protocol>`` runs, each writing a JSON result.

``evaluate(protocol, checkpoint, overrides)`` loads the encoder and the run's config, drops the pretraining data
slice (``data.train_limit`` / ``data.test_limit``: each protocol has its own limits), applies ``section.key=value``
overrides (``linear.epochs=90``, ``robustness.baseline=...``), runs the protocol and writes
``eval_<protocol>.json`` beside the checkpoint (or to ``output``). ``all`` runs kNN, the linear probe (on the same
encoded images) and 1% low-shot fine-tuning, and returns one table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mimae.config import Config, set_value, validate
from mimae.data import first, image_count, train_test_sets
from mimae.data.augment import match_channels, standardize
from mimae.distributed import pick_device
from mimae.eval.along import along_run, chosen_checkpoints, finetune_along_run
from mimae.eval.finetune import finetune
from mimae.eval.knn import feature_batch, knn_eval, knn_result, pixel_knn_eval
from mimae.eval.linear import frozen_features, linear_eval, pixel_linear_eval
from mimae.eval.lowshot import lowshot_train_set
from mimae.eval.robustness import (
    corruption_errors,
    mean_corruption_error,
    parse_names,
    parse_severities,
    relative_mean_corruption_error,
)
from mimae.models import Encoder
from mimae.objectives import build_objective
from mimae.run_folder import eval_name
from mimae.runs import Source, load_encoder, load_encoder_weights, read


def knn_from_features(features: dict, cfg: Config) -> dict:
    """kNN (cosine, ``eval.knn_k``, ``eval.knn_temperature``) on already encoded train/test features."""
    (train_x, train_y), (test_x, test_y) = features["train"], features["test"]
    return knn_result(cfg, "cls", train_x, train_y, test_x, test_y, features["info"])


def knn_run(encoder: Encoder, cfg: Config, device: torch.device, progress: bool = True) -> dict:
    """kNN of the encoder, with the kNN of the pixels on the same bank and queries beside it (``pixels``)."""
    return {**knn_eval(encoder, cfg, device, progress), "pixels": pixel_knn_eval(cfg)}


def finetune_run(encoder: Encoder, cfg: Config, device: torch.device, progress: bool = True):
    """Fine-tune on the first ``finetune.train_limit`` training images: (timm model, result)."""
    train, test, info = train_test_sets(cfg.data)
    return finetune(encoder, first(train, cfg.finetune.train_limit), first(test, cfg.finetune.test_limit), info,
                    cfg, device, progress=progress)


def lowshot_run(encoder: Encoder, cfg: Config, device: torch.device, subset_file: Path,
                progress: bool = True) -> dict:
    """Fine-tune for ``lowshot.epochs`` on the class-balanced ``lowshot.fraction`` of the training labels."""
    low = cfg.lowshot
    train, test, info = train_test_sets(cfg.data)
    subset = lowshot_train_set(train, subset_file, low.fraction, low.seed, info.name)
    _, result = finetune(encoder, subset, first(test, cfg.finetune.test_limit), info, cfg, device,
                         epochs=low.epochs, progress=progress)
    return {**result, "protocol": "lowshot", "fraction": low.fraction, "subset_seed": low.seed,
            "subset_file": str(subset_file), "train_pool_images": image_count(train)}


def robustness_run(encoder: Encoder, cfg: Config, device: torch.device, progress: bool = True) -> dict:
    """Errors under each corruption and severity of the classifier named by ``robustness.classifier``, and the
    mCE against ``robustness.baseline`` when given."""
    rob = cfg.robustness
    names, severities = parse_names(rob.corruptions), parse_severities(rob.severities)
    baseline = json.loads(Path(rob.baseline).read_text()) if rob.baseline else None
    _, test, info = train_test_sets(cfg.data)
    test = first(test, rob.test_limit)
    if rob.classifier == "linear":
        probe, trained = linear_eval(encoder, cfg, device, progress)
        encoder.eval()

        def predict(x: torch.Tensor) -> torch.Tensor:
            return probe(encoder.features(match_channels(standardize(x.to(device), info), encoder.in_chans)))
    else:
        model, trained = finetune_run(encoder, cfg, device, progress)
        model.eval()

        def predict(x: torch.Tensor) -> torch.Tensor:
            return model(standardize(x.to(device), info))
    measured = corruption_errors(predict, test, names, severities, feature_batch(cfg, device), rob.seed, progress)
    result = {"protocol": "robustness", "classifier": rob.classifier, "classifier_result": trained,
              "dataset": info.name, "test_images": image_count(test), "corruptions": names, "severities": severities,
              "seed": rob.seed, **measured,
              "mean_error": sum(sum(e.values()) for e in measured["errors"].values())
              / (len(names) * len(severities))}
    if baseline is not None:
        result.update(baseline=rob.baseline, **mean_corruption_error(measured["errors"], baseline["errors"]),
                      **relative_mean_corruption_error(measured["errors"], measured["clean_error"],
                                                       baseline["errors"], baseline["clean_error"]))
    return result


def linear_along_run(encoder: Encoder, cfg: Config, device: torch.device, run_dir: Path,
                     progress: bool = True) -> dict:
    """The linear probe of every epoch checkpoint the run kept (``train.keep_checkpoints``; epoch 0: the
    initialization), each into ``encoder`` in turn (paper 001 Fig. 5b); the last epoch's accuracy as ``accuracy``."""
    along = []
    for epoch, path in chosen_checkpoints(run_dir):
        load_encoder_weights(encoder, read(path))
        _, result = linear_eval(encoder, cfg, device, progress)
        along.append({"epoch": epoch, "checkpoint": str(path.resolve()),
                      "accuracy": result["accuracy"], "train_images": result["train_images"],
                      "test_images": result["test_images"]})
    return {"protocol": "linear-along", "along": along, "accuracy": along[-1]["accuracy"]}


def all_run(encoder: Encoder, cfg: Config, device: torch.device, subset_file: Path,
            progress: bool = True) -> dict:
    """kNN and the cached linear probe on the same encoded images, then 1% low-shot fine-tuning; the linear probe
    of the raw pixels beside them (``pixels``)."""
    limits = {"train": cfg.linear.train_limit, "test": cfg.linear.test_limit}
    features = frozen_features(encoder, cfg, device, limits, progress)
    knn = knn_from_features(features, cfg)
    cfg.linear.reextract = False
    _, linear = linear_eval(encoder, cfg, device, progress, features)
    lowshot = lowshot_run(encoder, cfg, device, subset_file, progress)
    return {"protocol": "all", "knn": knn, "linear": linear, "lowshot": lowshot, "pixels": pixel_linear_eval(cfg)}


def table(result: dict) -> str:
    """A Markdown table of the accuracies in an ``all`` result (or a single protocol's; a ``linear-along`` result's
    per epoch)."""
    if result.get("protocol") == "along":
        lines = ["| checkpoint | kNN (bank slice) | kNN (full bank) | linear, best lr |", "|---|---|---|---|"]
        for name, r in [*((f"epoch {p['epoch']}", p) for p in result["along"]), ("raw pixels", result["pixels"])]:
            lines.append(f"| {name} | {r['knn']:.2f} | {r['knn_full']:.2f} | {r['linear_best']:.2f} |")
        return "\n".join(lines)
    parts = {k: v for k, v in result.items() if isinstance(v, dict) and "train_images" in v}
    if "along" in result:
        parts = {f"linear, epoch {point['epoch']}": point for point in result["along"]}
    elif "accuracy" in result:
        parts = {result["protocol"]: result, **parts}
    lines = ["| protocol | train images | test images | accuracy (%) |", "|---|---|---|---|"]
    for name, r in parts.items():
        label = f"{r['protocol']} on the raw pixels (baseline)" if r.get("feature") == "pixels" else name
        lines.append(f"| {label} | {r['train_images']} | {r['test_images']} | {r['accuracy']:.2f} |")
        if r.get("lr_chosen"):
            chosen = r["lr_chosen"]
            lines.append(f"| {label}, base lr {chosen['base_lr']:g} chosen on {chosen['validation_images']} held-out "
                         f"training images | {r['train_images']} | {r['test_images']} | {chosen['accuracy']:.2f} |")
    return "\n".join(lines)


def configure(cfg: Config, overrides: dict[str, Any]) -> Config:
    for key, value in overrides.items():
        set_value(cfg, key, value)
    return validate(cfg)


@dataclass
class Target:
    """What a protocol evaluates: the encoder, the evaluation's config, the device, where the weights came from."""

    encoder: Encoder
    cfg: Config
    device: torch.device
    source: Source
    progress: bool

    def scratch(self) -> Encoder:
        """The same ViT untrained: the initialization a pretraining run at this seed starts from."""
        return build_objective(self.cfg, self.source.in_chans, self.cfg.train.seed).encoder.to(self.device)

    @property
    def subset_file(self) -> Path:
        """The low-shot subset's indices: ``lowshot.subset_file``, else beside the weights."""
        return Path(self.cfg.lowshot.subset_file or self.source.path.parent / "lowshot_subset.json").resolve()


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol: its one-line help (``mimae eval --help``), its short label on comparison pages, and
    what it runs. Its result is ``eval_<name>.json`` (:func:`mimae.run_folder.eval_name`)."""

    help: str
    label: str
    run: Callable[[Target], dict]


PROTOCOLS: dict[str, Protocol] = {
    "knn": Protocol("weighted kNN (cosine, k=20, T=0.07) on the frozen [CLS] feature", "kNN (eval)",
                    lambda t: knn_run(t.encoder, t.cfg, t.device, t.progress)),
    "linear": Protocol("linear probe on the frozen [CLS] feature (MAE protocol; cached features by default)",
                       "linear probe",
                       lambda t: {**linear_eval(t.encoder, t.cfg, t.device, t.progress)[1],
                                  "pixels": pixel_linear_eval(t.cfg)}),
    "finetune": Protocol("end-to-end fine-tuning (MAE protocol: layer decay, drop path, mixup/cutmix, RandAugment)",
                         "fine-tune", lambda t: finetune_run(t.encoder, t.cfg, t.device, t.progress)[1]),
    "lowshot": Protocol("fine-tuning on a seeded class-balanced 1% of the training labels (saved for reuse)",
                        "1% fine-tune", lambda t: lowshot_run(t.encoder, t.cfg, t.device, t.subset_file, t.progress)),
    "finetune-scratch": Protocol("the same fine-tuning of the same ViT from its random initialization at the run's "
                                 "seed (the baseline fine-tuning a pretrained encoder has to beat)",
                                 "fine-tune, from scratch",
                                 lambda t: {**finetune_run(t.scratch(), t.cfg, t.device, t.progress)[1],
                                            "init": "scratch"}),
    "lowshot-scratch": Protocol("the 1% low-shot fine-tuning from the random initialization at the run's seed",
                                "1% fine-tune, from scratch",
                                lambda t: {**lowshot_run(t.scratch(), t.cfg, t.device, t.subset_file, t.progress),
                                           "init": "scratch"}),
    "robustness": Protocol("error under the 15 ImageNet-C corruptions x 5 severities, mCE against a baseline",
                           "robustness", lambda t: robustness_run(t.encoder, t.cfg, t.device, t.progress)),
    "linear-along": Protocol("linear probe of every kept epoch checkpoint of a run (train.keep_checkpoints=true)",
                             "linear probe along training",
                             lambda t: linear_along_run(t.encoder, t.cfg, t.device, t.source.path.parent,
                                                        t.progress)),
    "along": Protocol("the budget curve: kNN (bank slice and full bank) and the linear probe at several lrs of every "
                      "kept epoch checkpoint, beside the raw pixels (along.epochs, along.probe_lrs)", "budget curve",
                      lambda t: along_run(t.encoder, t.cfg, t.device, t.source.path.parent, t.progress)),
    "finetune-along": Protocol("fine-tuning of kept epoch checkpoints of a run (along.finetune_epochs; epoch 0, the "
                               "initialization, is the from-scratch baseline)", "fine-tune along training",
                               lambda t: finetune_along_run(t.encoder, t.cfg, t.device, t.source.path.parent,
                                                            t.progress)),
    "all": Protocol("kNN + linear probe + 1% low-shot fine-tuning, one table", "kNN, linear, 1% fine-tune",
                    lambda t: all_run(t.encoder, t.cfg, t.device, t.subset_file, t.progress)),
}


def evaluate(protocol: str, checkpoint: str | Path, overrides: dict[str, Any] | None = None,
             output: str | Path | None = None, device: str = "auto", progress: bool = True) -> dict:
    """Run ``protocol`` on any weights file :mod:`mimae.runs` reads (a run folder or checkpoint, a timm
    safetensors export, an official MAE checkpoint) and write its JSON result; returns the result with its
    ``output`` path."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    dev = pick_device(device)
    encoder, cfg, source = load_encoder(checkpoint, dev)
    # The pretraining slice is not the evaluation's: each protocol takes its own slice of the full splits.
    cfg.data.train_limit = cfg.data.test_limit = None
    target = Target(encoder, configure(cfg, overrides or {}), dev, source, progress)
    result = {"checkpoint": str(source.path.resolve()), "weights": source.kind, "overrides": overrides or {},
              **PROTOCOLS[protocol].run(target)}
    output = (Path(output) if output else source.path.parent / eval_name(protocol)).resolve()
    output.write_text(json.dumps(result, indent=2))
    result["output"] = str(output)
    return result
