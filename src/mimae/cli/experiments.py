"""``mimae sweep`` and ``mimae experiment``: argument parsing for grids of runs and the papers' named experiments."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
Examples:
  mimae sweep --root runs/lr --grid optim.base_lr=5e-4,1e-3,2e-3 --seeds 0 1 2 --eval knn-full,linear
  mimae sweep --root runs/ratio --method mimae --grid mask.ratio=0.5,0.75,0.9 --parallel 2 train.epochs=1
Run the same command again to finish an interrupted sweep: finished points are skipped, interrupted ones resume.
On a cluster: add --launcher slurm (--nodes, --gpus-per-node, --partition, --account, --time); each run is a job
that requeues itself on preemption and resumes; `mimae sweep --status ROOT` shows them.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="a grid of pretraining runs over config keys x seeds, resumable",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sweep.add_argument("--root", default=None, help="folder of the runs (one per point) and of sweep.json (required)")
    sweep.add_argument("--method", default=None, help="pretraining method of every point (default: the config's)")
    sweep.add_argument("--config", default=None, help="YAML config of every point")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a key and its values (repeatable: the grid is every combination)")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed of each repetition")
    sweep.add_argument("--eval", default="", dest="evaluations", type=lambda text: [e for e in text.split(",") if e],
                       help="evaluations after each run, comma-separated: knn, knn-full, linear, lowshot, finetune, "
                            "finetune-scratch, lowshot-scratch, robustness, linear-along and along (need "
                            "train.keep_checkpoints=true), reconstruct")
    sweep.add_argument("--parallel", type=int, default=1, help="runs at a time (each gets cores / N threads)")
    sweep.add_argument("--status", default=None, metavar="ROOT",
                       help="show each point of the sweep at ROOT: done, or its job's state; runs nothing")
    add_launcher_args(sweep)
    sweep.add_argument("overrides", nargs="*", metavar="section.key=value", help="overrides for every point")
    sweep.set_defaults(func=cmd_sweep)
    add_experiment_parser(sub)


EXPERIMENT_EPILOG = """\
Examples:
  mimae experiment list
  mimae experiment show paper000-tab3a
  mimae experiment run paper000-tab3a --scale smoke
  mimae experiment run paper000-tab3a --scale cpu --seeds 0 1 2      # resumable; the report at the end
  mimae experiment run paper000-tab1 --scale cpu --rows MAE MI-MAE    # only these rows
  mimae experiment run paper000-tab3a --scale cpu --plan   # what is left and about how long: nothing trains
  mimae experiment archive paper000-tab3a --scale cpu --out docs/results/paper000-tab3a   # report + runs, no weights
  mimae experiment restore paper000-tab3a --scale cpu     # docs/results/paper000-tab3a's runs back: not trained again
  mimae experiment report paper000-tab3a --scale cpu --runs docs/results/paper000-tab3a/runs --out runs/again
"""


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """Where the runs go: here (the default), or as jobs through submitit."""
    group = parser.add_argument_group("launching as jobs (submitit)")
    group.add_argument("--launcher", choices=("here", "slurm", "submitit-local"), default="here",
                       help="here: run on this machine (default); slurm: one SLURM job per run, requeued on "
                            "preemption; submitit-local: the same jobs as local processes")
    group.add_argument("--nodes", type=int, default=1, help="nodes per job")
    group.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per node (one training process each)")
    group.add_argument("--partition", default=None, help="SLURM partition")
    group.add_argument("--account", default=None, help="SLURM account")
    group.add_argument("--time", type=int, default=24 * 60, help="time limit of a job, minutes")
    group.add_argument("--cpus-per-task", type=int, default=10, help="CPUs per node")


def cluster_of(args: argparse.Namespace):
    """The :class:`mimae.experiments.launch.Cluster` the options describe; None to run here."""
    from mimae.config import ConfigError
    from mimae.experiments.launch import Cluster
    if args.launcher == "here":
        return None
    for name in ("nodes", "time", "cpus_per_task"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {getattr(args, name)}: at least 1")
    if args.gpus_per_node < 0:
        raise ConfigError(f"--gpus-per-node {args.gpus_per_node}: 0 or more")
    return Cluster("local" if args.launcher == "submitit-local" else "slurm", args.nodes, args.gpus_per_node,
                   args.partition, args.account, args.time, args.cpus_per_task)


def add_experiment_parser(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("experiment", help="the papers' tables and figures, runnable by name",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXPERIMENT_EPILOG)
    commands = exp.add_subparsers(dest="experiment_command", required=True)
    commands.add_parser("list", help="every named experiment").set_defaults(func=cmd_experiment_list)
    show = commands.add_parser("show", help="rows, arguments, the paper's numbers and the scales of one")
    show.add_argument("name")
    show.set_defaults(func=cmd_experiment_show)
    run = commands.add_parser("run", help="train and evaluate every row x seed, then write the report")
    run.add_argument("name")
    run.add_argument("--scale", required=True, choices=("smoke", "cpu", "paper"))
    run.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the scale's")
    run.add_argument("--root", default="runs/experiments", help="runs go to ROOT/NAME/SCALE/")
    run.add_argument("--parallel", type=int, default=1, help="runs at a time")
    run.add_argument("--rows", nargs="+", default=None, metavar="LABEL",
                     help="run only these rows (labels as `mimae experiment show` prints them; default: every row); "
                          "the page says which rows it lacks")
    run.add_argument("--plan", action="store_true",
                     help="train nothing: print each row x seed's state (finished, started at step k, not started), "
                          "the commands it has left and about how long they take at the pace of the finished runs")
    add_launcher_args(run)
    run.set_defaults(func=cmd_experiment_run)
    keep = commands.add_parser("archive", help="copy a run experiment's report and its runs' small files (no "
                                               "weights), paths made relative, to a folder to commit or share")
    keep.add_argument("name")
    keep.add_argument("--scale", required=True, choices=("smoke", "cpu", "paper"))
    keep.add_argument("--root", default="runs/experiments", help="where it ran (ROOT/NAME/SCALE/)")
    keep.add_argument("--out", required=True, help="the archive folder, e.g. docs/results/NAME")
    keep.set_defaults(func=cmd_experiment_archive)
    back = commands.add_parser("restore", help="copy an archive's runs back where the experiment runs, so that "
                                               "`experiment run` trains only the runs that are missing")
    back.add_argument("name")
    back.add_argument("--scale", required=True, choices=("smoke", "cpu", "paper"))
    back.add_argument("--root", default="runs/experiments", help="where it runs (its runs go to ROOT/FOLDER/SCALE/)")
    back.add_argument("--from", dest="archive", default=None,
                      help="the archive folder (default: docs/results/NAME)")
    back.set_defaults(func=cmd_experiment_restore)
    again = commands.add_parser("report", help="the experiment's page again from finished runs (an archive's runs), "
                                               "with today's report: budgets, paired verdicts, collapse flags")
    again.add_argument("name")
    again.add_argument("--scale", required=True, choices=("smoke", "cpu", "paper"))
    again.add_argument("--runs", required=True, help="the folder of the run folders, e.g. docs/results/NAME/runs "
                                                     "(an analysis experiment: the folder of its JSON and figures, "
                                                     "e.g. docs/results/NAME)")
    again.add_argument("--out", required=True, help="where the page goes")
    again.add_argument("--note", action="append", default=[],
                       help="a paragraph under the intro (repeatable), after those of OUT/notes.txt (paragraphs "
                            "separated by blank lines: an archive keeps its page's notes there)")
    again.set_defaults(func=cmd_experiment_report)


def cmd_experiment_list(args: argparse.Namespace) -> int:
    from mimae.experiments.catalog import experiments
    for exp in experiments().values():
        where = f"not runnable here: {exp.unavailable}" if exp.unavailable else ", ".join(exp.scales)
        print(f"{exp.name:<18} {exp.source}: {exp.title}  [{where}]")
    return 0


def cmd_experiment_show(args: argparse.Namespace) -> int:
    from mimae.experiments.catalog import experiments  # noqa: F401  (registers them)
    from mimae.experiments.spec import describe, experiment
    print(describe(experiment(args.name)))
    return 0


def cmd_experiment_run(args: argparse.Namespace) -> int:
    from mimae.experiments.catalog import experiments  # noqa: F401  (registers them)
    from mimae.experiments.spec import experiment, run_experiment
    if args.plan:
        from mimae.experiments.plan import describe_plan, plan
        print("\n".join(describe_plan(*plan(experiment(args.name), args.scale, args.root,
                                            tuple(args.seeds) if args.seeds else None, args.rows))))
        return 0
    paths = run_experiment(experiment(args.name), args.scale, args.root, tuple(args.seeds) if args.seeds else None,
                           args.parallel, cluster=cluster_of(args), rows=args.rows)
    if paths:
        print(f"report: {paths['html']} and {paths['markdown'].name}, numbers in {paths['json'].name}")
    return 0


def cmd_experiment_archive(args: argparse.Namespace) -> int:
    from mimae.experiments.archive import archive
    from mimae.experiments.catalog import experiments  # noqa: F401  (registers them)
    from mimae.experiments.spec import experiment
    experiment(args.name)
    runs = archive(Path(args.root) / args.name / args.scale, args.out)
    print(f"archived the report and {len(runs)} run{'' if len(runs) == 1 else 's'} (no weights) in {args.out}")
    return 0


def cmd_experiment_restore(args: argparse.Namespace) -> int:
    from mimae.experiments.archive import restore
    from mimae.experiments.catalog import experiments  # noqa: F401  (registers them)
    from mimae.experiments.spec import experiment
    exp = experiment(args.name)
    exp.scale(args.scale)
    runs = Path(args.root) / exp.folder(args.scale) / args.scale
    copied = restore(args.archive or f"docs/results/{args.name}", runs)
    print(f"restored {len(copied)} run{'' if len(copied) == 1 else 's'} into {runs}"
          + (f": {', '.join(copied)}" if copied else " (every archived run was there already)"))
    return 0


def cmd_experiment_report(args: argparse.Namespace) -> int:
    from mimae.experiments.catalog import experiments  # noqa: F401  (registers them)
    from mimae.experiments.spec import experiment, redraw
    paths = redraw(experiment(args.name), args.scale, args.runs, args.out, args.note)
    print(f"report: {paths['html']} and {paths['markdown']}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from mimae.config import ConfigError, load_config, parse_overrides
    from mimae.experiments.sweep import SWEEP_FILE, grid_points, parse_grid, run_sweep, sweep_status
    if args.status:
        if not (Path(args.status) / SWEEP_FILE).is_file():
            raise ConfigError(f"{args.status} holds no {SWEEP_FILE}: no sweep was started there")
        rows = sweep_status(args.status)
        for row in rows:
            print(f"{row['name']}: {row['state']}" + (f" (job {row['job']})" if row["job"] else ""))
        print(f"{sum(r['done'] for r in rows)} of {len(rows)} points done")
        return 0
    if not args.root:
        raise ConfigError("--root is required: the folder of the sweep's runs")
    if args.parallel < 1:
        raise ConfigError(f"--parallel {args.parallel}: at least 1")
    grid = parse_grid(args.grid)
    base = (["--method", args.method] if args.method else []) + (["--config", args.config] if args.config else [])
    overrides = parse_overrides(args.overrides)
    for values in [dict(zip(grid, v)) for v in zip(*grid.values())] or [{}]:  # check a point before running any
        load_config(args.config, {**overrides, **values, **({"method": args.method} if args.method else {})})
    sweep = run_sweep(args.root, grid_points(grid, args.seeds, args.overrides), base, args.evaluations,
                      args.parallel, cluster=cluster_of(args))
    return 1 if any("failed" in p for p in sweep["points"]) else 0
