"""What the default pretraining recipe gains or loses from each of its factors, at the budget of ``make demo``.

Every variant is the default MAE run (``mimae pretrain --method mae``: 2 epochs of Fashion-MNIST, 119,808 (image,
mask) samples) with one change; each trains into ``<root>/<variant>-seed<k>`` and is scored by the full-bank kNN
(``mimae eval knn --full``: all 60,000 training images as the bank, all 10,000 test images as queries, [CLS]).
Finished runs are skipped and interrupted ones resumed, so the script can be stopped and started again. Each run
holds ``--lock`` (``/tmp/mimae-cpu.lock``) while it trains, so that two copies of the script take turns; two copies
with their own locks and ``--threads 1`` run side by side. Prints the table and writes ``--out`` (JSON, every
run's numbers and the machine).

    python -m benchmarks.default_recipe --seeds 0 1
    python -m benchmarks.default_recipe --variant "lr3e-3=optim.base_lr=3e-3 optim.batch_size=64" --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import torch

LOCK = "/tmp/mimae-cpu.lock"
# name -> the overrides that make the variant (all on top of the demo's command)
VARIANTS = {
    "default": [],
    "crop0.5": ["data.crop_scale_min=0.5"],
    "lr2x": ["optim.base_lr=2e-3"],
    "batch64": ["optim.batch_size=64"],
    "decoder128": ["model.decoder_dim=128"],
    "no-normpix": ["mae.norm_pix=false"],
    "warmup0": ["optim.warmup_epochs=0"],
}


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``"name=key=value key=value"`` -> (name, overrides)."""
    name, _, rest = text.partition("=")
    if not name or not rest:
        raise SystemExit(f"--variant {text!r}: expected name=section.key=value [section.key=value ...]")
    return name, shlex.split(rest)


def train_and_score(run_dir: Path, overrides: list[str], seed: int, lock: str, threads: int | None) -> dict:
    """Pretrain (or finish) the run and score it once with the full-bank kNN; its numbers."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    threads_arg = [f"train.threads={threads}"] if threads else []
    if not (run_dir / "results.json").is_file():
        print(f"== {run_dir}", flush=True)
        subprocess.run(["flock", lock, sys.executable, "-m", "mimae.cli", "pretrain", "--method", "mae",
                        "--output-dir", str(run_dir), "--resume", "auto", *overrides, f"train.seed={seed}",
                        *threads_arg], check=True, env=env)
    full = run_dir / "eval_knn_full.json"
    if not full.is_file():
        subprocess.run(["flock", lock, sys.executable, "-m", "mimae.cli", "eval", "knn", "--full", "--checkpoint",
                        str(run_dir), "--output", str(full)], check=True, env=env)
    results = json.loads((run_dir / "results.json").read_text())
    return {"knn_full": json.loads(full.read_text())["accuracy"], "knn_final": results["knn_final"],
            "steps": results["steps"], "train_seconds": results.get("train_seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/recipe", help="folder of the run folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variant", action="append", default=None,
                        help="name=section.key=value ... (repeatable; default: the built-in factor list)")
    parser.add_argument("--out", default="docs/results/default_recipe.json", help="JSON written at the end")
    parser.add_argument("--lock", default=LOCK, help="file each run holds while it trains")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each run (default: torch's)")
    parser.add_argument("--only-finished", action="store_true",
                        help="train nothing: tabulate the runs already scored (a variant without any is left out)")
    args = parser.parse_args(argv)
    variants = dict(parse_variant(v) for v in args.variant) if args.variant else VARIANTS
    rows = []
    for seed in args.seeds:  # every variant at the first seed before any at the second
        for name, overrides in variants.items():
            run_dir = Path(args.root) / f"{name}-seed{seed}"
            if args.only_finished and not (run_dir / "eval_knn_full.json").is_file():
                continue
            row = train_and_score(run_dir, overrides, seed, args.lock, args.threads)
            rows.append({"variant": name, "overrides": overrides, "seed": seed, **row})
            print(f"{name} seed {seed}: full-bank kNN {row['knn_full']:.2f}%", flush=True)
    print("| variant | overrides | seeds | full-bank kNN % mean | std | min | max | steps | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, overrides in variants.items():
        mine = [r for r in rows if r["variant"] == name]
        if not mine:
            continue
        accs = [r["knn_full"] for r in mine]
        seconds = statistics.mean(r["train_seconds"] or 0 for r in mine)
        std = f"{statistics.stdev(accs):.2f}" if len(accs) > 1 else "-"
        print(f"| {name} | {' '.join(overrides) or '(the defaults)'} | {len(accs)} | {statistics.mean(accs):.2f} | "
              f"{std} | {min(accs):.2f} | {max(accs):.2f} | {mine[0]['steps']} | {seconds:.0f} |")
    machine = {"cpu": platform.processor() or platform.machine(), "capability": torch.backends.cpu.get_cpu_capability(),
               "threads": torch.get_num_threads(), "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, "runs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
