"""MAE vs MI-MAE (and any MI-MAE variant) at an equal number of (image, mask) samples, for given seeds.

Every run trains into ``<root>/<variant>-seed<k>`` with the same model, data slice, optimizer steps and learning rate:
MAE takes ``--batch`` images per step; an N-view variant takes ``--batch / N`` images (so ``--batch`` views) with
``train.equal_samples=true``, i.e. ``--epochs / N`` passes over the data. Finished runs (``results.json``) are
skipped, unfinished ones resumed, so the script can be stopped and started again. Each run holds
``/tmp/mimae-cpu.lock`` while it trains. ``--linear`` also runs the linear probe (``mimae eval linear``, cached
features; settings with ``--probe linear.key=value``) on every run, once (``eval_linear.json``). Prints and writes
``<root>/<table>.md`` and ``<root>/<table>.json``.

    python benchmarks/compare_mimae_mae.py --seeds 0 1 --epochs 1                      # MAE vs default MI-MAE
    python benchmarks/compare_mimae_mae.py --root runs/screen --seeds 0 --epochs 2 \\
        --variant "paper=mimae --config configs/mimae_paper.yaml" --variant "mae=mae" data.train_limit=20000
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from mimae.config import load_config
from mimae.objectives.base import samples_per_image

DEFAULT_VARIANTS = ("mae=mae", "mimae=mimae")
LOCK = "/tmp/mimae-cpu.lock"
REPORTED_TERMS = ("rec", "max_mi", "min_mi", "approx", "infonce_bound", "club", "gate")


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """``"name=method [--config FILE] [key=value ...]"`` -> (name, method, extra CLI arguments)."""
    head, *extra = shlex.split(text)
    if "=" not in head:
        raise SystemExit(f"variant {text!r}: expected name=method followed by options")
    name, method = head.split("=", 1)
    return name, method, extra


def views_of(method: str, extra: list[str], common: list[str]) -> int:
    """N of a variant (1 for MAE), from its resolved config."""
    if method != "mimae":
        return 1
    config = extra[extra.index("--config") + 1] if "--config" in extra else None
    overrides = dict(item.split("=", 1) for item in common + [e for e in extra if "=" in e and e[0] != "-"])
    cfg = load_config(config, overrides)
    return samples_per_image(cfg)


def run_arguments(method: str, extra: list[str], common: list[str], views: int, batch: int, epochs: int,
                  seed: int, run_dir: Path) -> list[str]:
    if batch % views:
        raise SystemExit(f"--batch {batch} is not divisible by the {views} views of a {method} variant")
    budget = [f"optim.batch_size={batch // views}", f"train.epochs={epochs}", f"train.seed={seed}",
              "train.equal_samples=true"]
    return ["flock", LOCK, sys.executable, "-m", "mimae.cli", "pretrain", "--method", method,
            "--output-dir", str(run_dir), "--resume", "auto", *extra, *common, *budget]


def linear_probe(run_dir: Path, settings: list[str]) -> float:
    """Linear-probe top-1 of a finished run (``eval_linear.json``, computed once with ``settings``)."""
    result = run_dir / "eval_linear.json"
    if not result.is_file():
        subprocess.run(["flock", LOCK, sys.executable, "-m", "mimae.cli", "eval", "linear", "--checkpoint",
                        str(run_dir), *settings], check=True)
    return json.loads(result.read_text())["accuracy"]


def last_train_metrics(run_dir: Path) -> dict:
    """The last logged training line (the loss terms at the end of the run)."""
    last = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            last = record
    return last


def summarize(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    metrics = last_train_metrics(run_dir)
    row = {"knn": results["knn_final"], "steps": results["steps"], "seconds": results.get("train_seconds")}
    row.update({k: metrics[k] for k in REPORTED_TERMS if k in metrics})
    row["gate_step"] = metrics.get("gate_step")
    return row


def markdown(rows: list[dict]) -> str:
    linear = any("linear" in r for r in rows)
    lines = ["| variant | seed | kNN % |" + (" linear % |" if linear else "") + " steps | L_rec | L_max | "
             "L_min (CLUB, nats) | InfoNCE bound (nats) | gate step |",
             "|---|---|---|" + ("---|" if linear else "") + "---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    for r in rows:
        gate = r.get("gate_step")
        gate = "" if gate is None else "closed" if gate < 0 else str(int(gate))
        probe = f" {r['linear']:.2f} |" if linear else ""
        lines.append(f"| {r['variant']} | {r['seed']} | {r['knn']:.2f} |{probe} {r['steps']} | {fmt(r.get('rec'))} | "
                     f"{fmt(r.get('max_mi'))} | {fmt(r.get('club'))} | {fmt(r.get('infonce_bound'))} | {gate} |")
    lines += ["", "| variant | seeds | kNN % mean | min | max |" + (" linear % mean | min | max |" if linear else ""),
              "|---|---|---|---|---|" + ("---|---|---|" if linear else "")]
    for name in dict.fromkeys(r["variant"] for r in rows):
        cells = []
        for metric in ("knn", "linear") if linear else ("knn",):
            accs = [r[metric] for r in rows if r["variant"] == name]
            cells.append(f"{statistics.mean(accs):.2f} | {min(accs):.2f} | {max(accs):.2f}")
        lines.append(f"| {name} | {len(accs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/compare", help="folder of the run folders and the table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=1, help="MAE epochs; N-view variants train epochs / N passes")
    parser.add_argument("--batch", type=int, default=256, help="(image, mask) samples per optimizer step")
    parser.add_argument("--variant", action="append", default=None,
                        help="name=method followed by CLI options, e.g. \"lit=mimae --config configs/x.yaml\" "
                             f"(repeatable; default: {' and '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--linear", action="store_true",
                        help="also run the linear probe (cached features) on every run")
    parser.add_argument("--probe", action="append", default=[], metavar="linear.key=value",
                        help="a setting of that linear probe (repeatable), e.g. --probe linear.train_limit=None")
    parser.add_argument("--table", default="table", help="name of the table files written in --root")
    parser.add_argument("common", nargs="*", metavar="section.key=value", help="overrides for every run")
    args = parser.parse_args(argv)
    root = Path(args.root)
    rows = []
    for text in args.variant or DEFAULT_VARIANTS:
        name, method, extra = parse_variant(text)
        views = views_of(method, extra, args.common)
        for seed in args.seeds:
            run_dir = root / f"{name}-seed{seed}"
            if not (run_dir / "results.json").is_file():
                print(f"== {run_dir}", flush=True)
                subprocess.run(run_arguments(method, extra, args.common, views, args.batch, args.epochs, seed,
                                             run_dir), check=True)
            row = {"variant": name, "seed": seed, "views": views, "run_dir": str(run_dir), **summarize(run_dir)}
            if args.linear:
                row["linear"] = linear_probe(run_dir, args.probe)
            rows.append(row)
    table = markdown(rows)
    print(table)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{args.table}.md").write_text(table + "\n")
    (root / f"{args.table}.json").write_text(json.dumps({"epochs": args.epochs, "batch": args.batch,
                                                 "common": args.common, "probe": args.probe if args.linear else None,
                                                 "rows": rows},
                                                indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
