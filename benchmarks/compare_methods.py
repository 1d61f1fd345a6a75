"""Each method against its baseline at the same budget: MAE vs U-MAE, SimCLR vs MR-SimCLR, Barlow Twins vs
MR-Barlow Twins (any registered methods can be given), for given seeds, scored by kNN accuracy.

Every run trains into ``<root>/<method>-seed<k>`` with the same model, data slice, batch, epochs (so the same number
of training images) and learning rate; only ``--method`` and ``train.seed`` change. Finished runs (``results.json``)
are skipped and unfinished ones resumed, so the script can be stopped and started again. Each run holds
``/tmp/mimae-cpu.lock`` while it trains. Prints and writes ``<root>/table.md`` and ``<root>/table.json``.

    python benchmarks/compare_methods.py                                    # the budget below, seeds 0 and 1
    python benchmarks/compare_methods.py --pairs mae:umae --seeds 0 train.epochs=10
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from mimae.config import load_config, parse_overrides
from mimae.distributed import pick_device
from mimae.eval.knn import knn_eval
from mimae.objectives import build_objective

LOCK = "/tmp/mimae-cpu.lock"
DEFAULT_PAIRS = ("mae:umae", "simclr:mr-simclr", "barlow:mr-barlow")
# The budget of the reported table: a 96-wide, 4-block ViT (patch 4, 32x32), 3 epochs over the first 3,000
# Fashion-MNIST training images, batch 128; kNN on the [CLS] token with 5,000 bank and 2,000 query images.
BUDGET = (
    "data.train_limit=3000", "model.embed_dim=96", "model.depth=4", "model.num_heads=3", "model.decoder_dim=64",
    "model.decoder_depth=1", "model.decoder_heads=2", "optim.batch_size=128", "optim.base_lr=5e-4",
    "train.epochs=3", "train.knn_at_init=false", "train.log_every=10", "eval.knn_bank_limit=5000",
    "eval.knn_query_limit=2000",
)
REPORTED_TERMS = ("loss", "rec", "uniformity", "contrast", "rec_masked", "rec_visible", "images_per_s")


def last_train_metrics(run_dir: Path) -> dict:
    """The last training line of ``metrics.jsonl`` (the one with a loss)."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next((line for line in reversed(lines) if "loss" in line), {})


def train(method: str, seed: int, run_dir: Path, overrides: list[str]) -> dict:
    """Train (or resume, or skip) one run; returns its results with the last logged training terms."""
    if not (run_dir / "results.json").is_file():
        command = ["flock", LOCK, sys.executable, "-m", "mimae.cli", "pretrain", "--method", method,
                   "--output-dir", str(run_dir), "--resume", "auto", *overrides, f"train.seed={seed}"]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    results = json.loads((run_dir / "results.json").read_text())
    last = last_train_metrics(run_dir)
    results.update({f"last_{k}": last[k] for k in REPORTED_TERMS if k in last})
    return results


def init_knn(seed: int, path: Path, overrides: list[str]) -> float:
    """kNN accuracy of the encoder at initialization (the same for every method of a seed: the encoder is the
    first module an objective builds after ``torch.manual_seed(train.seed)``), cached in ``path``."""
    if not path.is_file():
        cfg = load_config(overrides={**parse_overrides(overrides), "train.seed": seed})
        torch.manual_seed(seed)
        encoder = build_objective(cfg, 1).encoder
        with open(LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = knn_eval(encoder, cfg, pick_device(cfg.train.device), progress=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
    return json.loads(path.read_text())["accuracy"]


def markdown(rows: list[dict], pairs: list[tuple[str, str]], seeds: list[int], init: dict[int, float]) -> str:
    """One line per method: kNN per seed, mean, difference to its pair's baseline, training seconds; first the
    untrained encoder."""
    by_key = {(r["method"], r["seed"]): r for r in rows}
    head = "| method | " + " | ".join(f"kNN seed {s} (%)" for s in seeds) + \
        " | mean (%) | vs baseline (points) | train s / run | last loss terms (seed 0) |"
    lines = [head, "|" + "---|" * (len(seeds) + 5),
             "| (initialization) | " + " | ".join(f"{init[s]:.2f}" for s in seeds) +
             f" | {statistics.mean(init.values()):.2f} | | 0 | |"]
    for baseline, method in pairs:
        base_mean = statistics.mean(by_key[(baseline, s)]["knn_final"] for s in seeds)
        for name in (baseline, method):
            accs = [by_key[(name, s)]["knn_final"] for s in seeds]
            mean = statistics.mean(accs)
            delta = "" if name == baseline else f"{mean - base_mean:+.2f}"
            seconds = statistics.mean(by_key[(name, s)]["train_seconds"] for s in seeds)
            first = by_key[(name, seeds[0])]
            terms = ", ".join(f"{k[5:]}={first[k]:.3g}" for k in sorted(first) if k.startswith("last_")
                              and k != "last_images_per_s")
            lines.append(f"| {name} | " + " | ".join(f"{a:.2f}" for a in accs) +
                         f" | {mean:.2f} | {delta} | {seconds:.0f} | {terms} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/methods", help="folder of the run folders and the table")
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), help="baseline:method pairs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("overrides", nargs="*", help="key=value applied after the budget to every run")
    args = parser.parse_args()
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"--pairs {args.pairs}: expected baseline:method")
    overrides = [*BUDGET, *args.overrides]
    root = Path(args.root)
    rows = []
    for seed in args.seeds:
        for baseline, method in pairs:
            for name in (baseline, method):
                rows.append({"method": name, "seed": seed, **train(name, seed, root / f"{name}-seed{seed}", overrides)})
    init = {seed: init_knn(seed, root / f"init-seed{seed}.json", overrides) for seed in args.seeds}
    table = markdown(rows, pairs, args.seeds, init)
    print(table)
    root.mkdir(parents=True, exist_ok=True)
    (root / "table.md").write_text(f"Budget: {' '.join(overrides)}\n\n{table}\n")
    (root / "table.json").write_text(json.dumps({"overrides": overrides, "init_knn": init, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
