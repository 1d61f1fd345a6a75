"""The budget curve of one long run: every kept epoch checkpoint scored by the kNN (the in-training bank and the
full bank) and the linear probe at several learning rates, beside the raw pixels under the same protocols (the
pixel probe at each of the same learning rates, so its best is there to read); and fine-tuned
(``finetune-along``), beside epoch 0's fine-tuning: the same ViT from the run's initialization, from scratch.

Each checkpoint's training and test images are encoded once; the kNN on the ``eval.knn_bank_limit`` slice, the kNN
on the full bank and the probe on the ``linear.train_limit`` / ``linear.test_limit`` slice all read those features.
The checkpoints are one run's, on its one cosine schedule: epoch e of a 16-epoch run has not decayed its lr as a
run of e epochs would, so the curve is the budget as the long run passes through it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from mimae.config import Config, ConfigError, parse_floats
from mimae.data import first, image_count, train_test_sets
from mimae.eval.finetune import finetune
from mimae.eval.knn import knn_accuracy, pixel_features
from mimae.eval.linear import frozen_features, linear_probe_features
from mimae.models import Encoder
from mimae.progress import progress as progress_bar
from mimae.run_folder import partial_name, replace_text
from mimae.runs import epoch_checkpoints, epoch_of, load_encoder_weights, read


def chosen_checkpoints(run_dir: str | Path, text: str = "all", key: str = "along.epochs") -> list[tuple[int, Path]]:
    """(epoch, path) of the kept epoch checkpoints of ``run_dir`` that ``text`` names: "all" or a list such as
    "0,1,2,4,8,16" (each must have been kept; ``key`` names the option in the error)."""
    kept = {epoch_of(p): p for p in epoch_checkpoints(run_dir)}
    if not kept:
        raise ConfigError(f"{run_dir} kept no checkpoint-epoch<N>.pt; pretrain it with train.keep_checkpoints=true")
    if str(text) == "all":
        return sorted(kept.items())
    wanted = [int(v) for v in parse_floats(text, key)]
    missing = [e for e in wanted if e not in kept]
    if missing:
        raise ConfigError(f"{key} asks for epoch(s) {missing} the run did not keep; it kept {sorted(kept)}")
    return [(e, kept[e]) for e in wanted]


def scores(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], cfg: Config,
           num_classes: int, probe_lrs: list[float]) -> dict:
    """kNN on the bank slice and on the full bank, and the probe at each lr, of features (N, D) with labels (N,)."""
    (train_x, train_y), (test_x, test_y) = train, test
    e, lin = cfg.eval, cfg.linear
    bank, queries = e.knn_bank_limit or len(train_x), e.knn_query_limit or len(test_x)
    out = {"knn": knn_accuracy(train_x[:bank], train_y[:bank], test_x[:queries], test_y[:queries], e.knn_k,
                               e.knn_temperature, num_classes),
           "knn_full": knn_accuracy(train_x, train_y, test_x, test_y, e.knn_k, e.knn_temperature, num_classes),
           "linear": {}}
    linear: dict[str, float] = {}
    n_train, n_test = lin.train_limit or len(train_x), lin.test_limit or len(test_x)
    for lr in probe_lrs:
        _, accuracy = linear_probe_features(train_x[:n_train], train_y[:n_train], test_x[:n_test],
                                            test_y[:n_test], dataclasses.replace(lin, base_lr=lr), num_classes)
        linear[f"{lr:g}"] = accuracy
    out.update(linear=linear, linear_best=max(linear.values()))
    return out


def along_run(encoder: Encoder, cfg: Config, device: torch.device, run_dir, progress: bool = True) -> dict:
    """Score each chosen kept checkpoint of ``run_dir`` and the raw pixels; the JSON of ``eval_along.json``."""
    chosen = chosen_checkpoints(run_dir, cfg.along.epochs)
    probe_lrs = parse_floats(cfg.along.probe_lrs, "along.probe_lrs")
    start = time.perf_counter()
    # the whole splits (the evaluation drops the pretraining slice), or the data.*_limit given to it
    train_set, test_set, info = train_test_sets(cfg.data)
    pixels = scores(pixel_features(train_set, info, 512), pixel_features(test_set, info, 512), cfg,
                    info.num_classes, probe_lrs)
    points = []
    for epoch, path in progress_bar(chosen, desc="checkpoints" if progress else None):
        checkpoint = read(path)
        load_encoder_weights(encoder, checkpoint)
        encoded = frozen_features(encoder, cfg, device, {"train": None, "test": None}, progress)
        points.append({"epoch": epoch, "step": checkpoint.step,
                       **scores(encoded["train"], encoded["test"], cfg, info.num_classes, probe_lrs)})
    return {"protocol": "along", "dataset": info.name, "train_images": image_count(train_set),
            "test_images": image_count(test_set),
            "knn_bank": cfg.eval.knn_bank_limit, "knn_queries": cfg.eval.knn_query_limit,
            "linear_train": cfg.linear.train_limit, "linear_test": cfg.linear.test_limit, "probe_lrs": probe_lrs,
            "linear_protocol": f"{cfg.linear.optimizer.upper()}, {cfg.linear.epochs} epochs, batch "
                               f"{cfg.linear.batch_size}, cached features",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "seconds": time.perf_counter() - start,
            "pixels": pixels, "along": points, "accuracy": points[-1]["knn_full"]}


def finetune_along_run(encoder: Encoder, cfg: Config, device: torch.device, run_dir: Path,
                       progress: bool = True) -> dict:
    """Fine-tune each kept checkpoint ``along.finetune_epochs`` names with the ``finetune`` section's recipe on the
    first ``finetune.train_limit`` / ``test_limit`` images; the JSON of ``eval_finetune-along.json``.

    Epoch 0 is the run's initialization: its fine-tuning is the from-scratch baseline of the same seed, with the
    same head seed, data order and augmentation as every other checkpoint's. Each finished checkpoint is kept in
    ``finetune-along.partial.json`` (with the recipe it used), so a killed evaluation continues where it stopped.
    """
    chosen = chosen_checkpoints(run_dir, cfg.along.finetune_epochs, "along.finetune_epochs")
    train, test, info = train_test_sets(cfg.data)
    train, test = first(train, cfg.finetune.train_limit), first(test, cfg.finetune.test_limit)
    recipe = dataclasses.asdict(cfg.finetune)
    partial = Path(run_dir) / partial_name("finetune-along")
    saved = json.loads(partial.read_text()) if partial.is_file() else {}
    done = {p["epoch"]: p for p in saved.get("points", [])} if saved.get("finetune") == recipe else {}
    start = time.perf_counter()
    for epoch, path in progress_bar(chosen, desc="fine-tuning checkpoints" if progress else None):
        if epoch in done:
            continue
        checkpoint = read(path)
        load_encoder_weights(encoder, checkpoint)
        _, result = finetune(encoder, train, test, info, cfg, device, progress=progress)
        done[epoch] = {"epoch": epoch, "step": checkpoint.step, "init": "scratch" if epoch == 0 else "pretrained",
                       **result}
        replace_text(partial, json.dumps({"finetune": recipe, "points": list(done.values())}, indent=1))
    points = [done[epoch] for epoch, _ in chosen]
    partial.unlink(missing_ok=True)
    return {"protocol": "finetune-along", "dataset": info.name, "finetune": recipe,
            "train_images": image_count(train), "test_images": image_count(test),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "seconds": time.perf_counter() - start,
            "along": points, "accuracy": points[-1]["accuracy"]}
