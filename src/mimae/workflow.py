"""Pretraining as a command runs it: the config (new, or the run's own on resume), the trainer with its kNN monitor,
then the run's report.

The engine (:mod:`mimae.engine`) trains and checkpoints and knows nothing of evaluations or reports; this layer
hands it the kNN monitor and writes the report when the run finished.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from mimae.config import HOW_IT_RUNS, Config, ConfigError, load_config, set_value, validate
from mimae.engine import Trainer, resume_source
from mimae.eval.knn import knn_eval, pixel_knn_eval
from mimae.models import Encoder
from mimae.report.run import write_run_report
from mimae.runs import Source


class KnnMonitor:
    """The kNN accuracy (%) of the [CLS] feature along training, and of the raw pixels on the same bank and queries
    (``eval.knn_*``)."""

    name, label, baseline_label = "knn", "kNN", "raw pixels, the same bank and queries"

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def accuracy(self, encoder: Encoder, device: torch.device) -> float:
        return knn_eval(encoder, self.cfg, device)["accuracy"]

    def baseline(self) -> float:
        return pixel_knn_eval(self.cfg)["accuracy"]


# what a resumed run may change: where it runs and how often it writes (HOW_IT_RUNS), how long it trains, what it
# keeps and evaluates on the way, and the evaluation protocols; the rest would make it another run
SAFE_ON_RESUME = (*HOW_IT_RUNS, "train.epochs", "train.eval_every", "train.keep_checkpoints", "train.knn_at_init",
                  "eval.", "linear.", "along.", "finetune.", "lowshot.", "robustness.")


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


def run_config(run_dir: str | Path, requested: dict[str, Any], resume: bool | str) -> tuple[Config, Source | None]:
    """The config a ``pretrain`` command runs with, and the checkpoint it resumes from (read once; hand it to
    :func:`pretrain`).

    ``resume`` False: the requested config (defaults, YAML, --quick, overrides). True: the run's own config from
    its newest readable checkpoint, with the requested changes that are safe mid-run; no checkpoint is an error.
    ``"auto"``: True when the folder holds a checkpoint, else False.
    """
    source = resume_source(run_dir, resume)
    if source is not None:
        return resume_config(source.cfg, requested), source
    return load_config(overrides=requested), None


def pretrain(cfg: Config, run_dir: str | Path, resume: bool | str | Source = False, tensorboard: bool = False,
             overwrite: bool = False) -> dict:
    """Pretrain ``cfg.method`` into ``run_dir`` (resuming from its newest checkpoint if asked), with the kNN
    monitor; a run that finished gets its report. Returns the results (with ``report``, the page's path)."""
    trainer = Trainer(cfg, run_dir, resume, tensorboard, overwrite, monitor=KnnMonitor(cfg))
    results = trainer.run()
    if trainer.dist.is_main and "stopped_at" not in results:
        results["report"] = str(write_run_report(run_dir)["html"])
    return results
