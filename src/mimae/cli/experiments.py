"""``mimae sweep``: argument parsing for grids of runs over config keys and seeds."""

from __future__ import annotations

import argparse

EPILOG = """\
Examples:
  mimae sweep --root runs/lr --grid optim.base_lr=5e-4,1e-3,2e-3 --seeds 0 1 2 --eval knn-full,linear
  mimae sweep --root runs/ratio --method mimae --grid mask.ratio=0.5,0.75,0.9 --parallel 2 train.epochs=1
Run the same command again to finish an interrupted sweep: finished points are skipped, interrupted ones resume.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="a grid of pretraining runs over config keys x seeds, resumable",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sweep.add_argument("--root", required=True, help="folder of the runs (one per point) and of sweep.json")
    sweep.add_argument("--method", default=None, help="pretraining method of every point (default: the config's)")
    sweep.add_argument("--config", default=None, help="YAML config of every point")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a key and its values (repeatable: the grid is every combination)")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed of each repetition")
    sweep.add_argument("--eval", default="", dest="evaluations", type=lambda text: [e for e in text.split(",") if e],
                       help="evaluations after each run, comma-separated: knn, knn-full, linear, lowshot")
    sweep.add_argument("--parallel", type=int, default=1, help="runs at a time (each gets cores / N threads)")
    sweep.add_argument("overrides", nargs="*", metavar="section.key=value", help="overrides for every point")
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mimae.config import ConfigError, load_config, parse_overrides
    from mimae.experiments.sweep import grid_points, parse_grid, run_sweep
    if args.parallel < 1:
        raise ConfigError(f"--parallel {args.parallel}: at least 1")
    grid = parse_grid(args.grid)
    base = (["--method", args.method] if args.method else []) + (["--config", args.config] if args.config else [])
    overrides = parse_overrides(args.overrides)
    for values in [dict(zip(grid, v)) for v in zip(*grid.values())] or [{}]:  # check a point before running any
        load_config(args.config, {**overrides, **values, **({"method": args.method} if args.method else {})})
    sweep = run_sweep(args.root, grid_points(grid, args.seeds, args.overrides), base, args.evaluations,
                      args.parallel)
    return 1 if any("failed" in p for p in sweep["points"]) else 0
