"""The ``mimae`` command: argument parsing only; the work is done by the modules it calls."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from mimae import __version__
from mimae.checkpoint import CHECKPOINT_NAME, CheckpointError
from mimae.config import ConfigError, describe_options, load_config, methods, parse_overrides, requested_values
from mimae.data.loader import LoaderWorkerDied
from mimae.presets import QUICK
from mimae.run_folder import CONFIG_NAME, LOG_NAME, RESULTS_NAME, RunFolderError

PRETRAIN_EPILOG = """\
Configuration keys (set any of them as section.key=value after the options, or in a YAML file given by --config;
the order of precedence is defaults < --config < --quick < key=value):
{options}

Examples:
  mimae pretrain --method mae --output-dir runs/mae
  mimae pretrain --method mae --quick --output-dir runs/try
  mimae pretrain --method mae --output-dir runs/mae --epochs 40 model.size=tiny optim.base_lr=1e-3
  torchrun --nproc_per_node 2 -m mimae.cli pretrain --method mae --output-dir runs/ddp
"""


EVAL_EPILOG = """\
Settings are section.key=value overrides of the linear, finetune, lowshot, robustness and eval sections
(`mimae pretrain --help` lists them all with their defaults). Examples:
  mimae eval linear --checkpoint runs/mae linear.epochs=90 linear.train_limit=None
  mimae eval linear --checkpoint runs/mae linear.reextract=true
  mimae eval finetune --checkpoint runs/mae finetune.epochs=5 finetune.train_limit=10000
  mimae eval lowshot --checkpoint runs/mimae lowshot.subset_file=runs/lowshot_subset.json
  mimae eval robustness --checkpoint runs/mimae robustness.baseline=runs/mae/eval_robustness.json
"""


def _methods() -> tuple[str, ...]:
    return tuple(sorted(methods()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mimae", description="Information-theoretic masked image modeling.")
    parser.add_argument("--version", action="version", version=f"mimae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    pre = sub.add_parser("pretrain", help="pretrain a ViT encoder with a masked-image-modeling objective",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog=PRETRAIN_EPILOG.format(options=describe_options()))
    pre.add_argument("--method", default=None, help=f"objective (default mae); one of {', '.join(_methods())}")
    pre.add_argument("--output-dir", default=None,
                     help=f"run folder for {CONFIG_NAME}, {LOG_NAME}, {CHECKPOINT_NAME} and {RESULTS_NAME} "
                          "(default runs/<method>-<time>)")
    pre.add_argument("--epochs", type=int, default=None, help="pretraining epochs (same as train.epochs=N)")
    pre.add_argument("--eval-every", type=int, default=None,
                     help="epochs between kNN evaluations during training (same as train.eval_every=N)")
    pre.add_argument("--quick", action="store_true",
                     help="a minutes-long run: a slice of the data, a small model, 3 epochs")
    pre.add_argument("--config", default=None, help="YAML file with config sections (see the keys below)")
    pre.add_argument("--data-dir", default=None, help="dataset folder (same as data.data_dir=PATH)")
    pre.add_argument("--resume", action="store_true",
                     help="continue the run in --output-dir from its newest readable checkpoint, exactly where it "
                          "stopped, with its own config (only epochs, logging, saving, evaluation and data paths "
                          "may change); '--resume auto' continues if there is a checkpoint and starts otherwise")
    pre.add_argument("--resume-auto", action="store_true", help=argparse.SUPPRESS)  # what '--resume auto' becomes
    pre.add_argument("--overwrite", action="store_true",
                     help="start a new run in an --output-dir that holds one, removing what that run wrote")
    pre.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs to the run folder")
    pre.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    pre.set_defaults(func=cmd_pretrain)

    ev = sub.add_parser("eval", help="evaluate a pretrained encoder")
    protocols = ev.add_subparsers(dest="protocol", required=True)
    from mimae.eval.suite import PROTOCOLS
    for name, protocol in PROTOCOLS.items():
        proto = protocols.add_parser(name, help=protocol.help.replace("%", "%%"), epilog=EVAL_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        proto.add_argument("--checkpoint", required=True,
                           help="run folder or checkpoint file, a timm .safetensors export, or an official MAE "
                                "checkpoint (mae_pretrain_vit_base.pth)")
        proto.add_argument("--output", default=None,
                           help=f"JSON result file (default: eval_{name}.json beside the checkpoint)")
        proto.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
        if name == "knn":
            proto.add_argument("--full", action="store_true",
                               help="whole training split as the bank and whole test split as queries (default: "
                                    "eval.knn_bank_limit / eval.knn_query_limit)")
        proto.add_argument("overrides", nargs="*", metavar="section.key=value",
                           help="evaluation settings, e.g. linear.epochs=90 finetune.train_limit=5000")
        proto.set_defaults(func=cmd_eval_protocol)

    export = sub.add_parser("export", help="write a pretrained encoder in timm's ViT layout")
    export.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    export.add_argument("--format", default="timm", choices=("timm",), help="target layout")
    export.add_argument("--output", required=True,
                        help="FILE.safetensors; its config (timm architecture and model arguments) goes to FILE.json")
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", help="a run's report.md / report.html again, or one page comparing many runs")
    report.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or sweep folders (their sweep.json)")
    report.add_argument("--out", default=None,
                        help="folder of one comparison page over all the runs (mean ± std over seeds); default: each "
                             "run's own report, or the comparison in a sweep folder")
    report.add_argument("--title", default="Comparison of runs", help="title of the comparison page")
    report.set_defaults(func=cmd_report)

    from mimae.cli.experiments import add_parser as add_experiment_parsers
    add_experiment_parsers(sub)
    from mimae.cli.hierarchy import add_parser as add_hierarchy_parser
    add_hierarchy_parser(sub)
    from mimae.cli.analysis import add_parser as add_analysis_parser
    add_analysis_parser(sub)
    from mimae.cli.bench import add_parser as add_bench_parser
    add_bench_parser(sub)
    return parser


def cmd_pretrain(args: argparse.Namespace) -> int:
    from mimae.workflow import pretrain, run_config
    overrides = parse_overrides(args.overrides)
    for key, value in (("method", args.method), ("train.epochs", args.epochs),
                       ("train.eval_every", args.eval_every), ("data.data_dir", args.data_dir)):
        if value is not None:
            overrides[key] = value
    requested = requested_values(args.config, {**(QUICK if args.quick else {}), **overrides})
    args.resume = args.resume or args.resume_auto
    if args.resume and not args.output_dir:
        raise ConfigError("--resume needs the --output-dir of the run to continue")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: continue the run, or start over")
    method = load_config(overrides=requested).method
    run_dir = Path(args.output_dir or f"runs/{method}-{time.strftime('%Y%m%d-%H%M%S')}")
    mode = "auto" if args.resume_auto else args.resume
    cfg, source = run_config(run_dir, requested, mode)  # read once
    start = time.perf_counter()
    # no source: a new run, or "auto" over a folder without a checkpoint (which starts over what is there)
    results = pretrain(cfg, run_dir, resume=source or mode, tensorboard=args.tensorboard, overwrite=args.overwrite)
    from mimae import distributed
    if distributed.setup(cfg.train.device).is_main:
        print(f"run folder: {run_dir.resolve()}")
        names = {"knn_init": "init", "knn_final": "final", "knn_pixels": "raw pixels"}
        shown = [f"{names[k]} {results[k]:.2f}" for k in names if k in results]
        if shown:
            print(f"kNN accuracy (%): {', '.join(shown)}  (bank {cfg.eval.knn_bank_limit or 'all'} training images, "
                  f"{cfg.eval.knn_query_limit or 'all'} test queries)")
        if "report" in results:
            print(f"report: {results['report']} (and report.md beside it)")
            print(f"next: mimae eval knn --checkpoint {run_dir} --full   (the report lists the linear probe, "
                  "fine-tuning, analyses and export)")
        print(f"wall time: {time.perf_counter() - start:.0f} s")
    distributed.cleanup()
    return 0


def cmd_eval_protocol(args: argparse.Namespace) -> int:
    from mimae.eval.suite import evaluate, table
    overrides = parse_overrides(args.overrides)
    if getattr(args, "full", False):
        overrides.update({"eval.knn_bank_limit": None, "eval.knn_query_limit": None})
    result = evaluate(args.protocol, args.checkpoint, overrides, args.output, args.device)
    if args.protocol == "robustness":
        print(f"clean error: {result['clean_error']:.2f}  mean corruption error: {result['mean_error']:.2f}"
              + (f"  mCE: {result['mce']:.1f}" if "mce" in result else ""))
    else:
        print(table(result))
        if "accuracy" in result:
            print(f"accuracy: {result['accuracy']:.2f}")
    print(f"result: {result['output']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mimae.export import export_checkpoint
    weights, config = export_checkpoint(args.checkpoint, args.output)
    usage = json.loads(config.read_text())["usage"]
    print(f"weights: {weights.resolve()}\nconfig: {config.resolve()}\nload it (in the folder of the weights) with:\n"
          f"  {usage}")
    return 0


OVERRIDE = re.compile(r"[a-z_]+\.[a-z_0-9]+=.*")  # section.key=value


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with ``section.key=value`` overrides accepted anywhere after the command (argparse alone
    takes positionals only before the first option that follows them) and ``--resume auto`` read as one option."""
    tokens: list[str] = []
    overrides: list[str] = []  # taken out first, so that no option of many values (--ratios 0.1 0.5) swallows one
    for token in sys.argv[1:] if argv is None else argv:
        if token == "auto" and tokens[-1:] == ["--resume"]:
            tokens[-1] = "--resume-auto"
        elif OVERRIDE.fullmatch(token) and tokens[-1:] not in (["--grid"], ["--variant"]):
            overrides.append(token)
        else:
            tokens.append(token)
    parser = build_parser()
    args, unknown = parser.parse_known_args(tokens)
    unknown += overrides
    if unknown and (not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in unknown)):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.overrides = [*args.overrides, *unknown]
    return args


def cmd_report(args: argparse.Namespace) -> int:
    from mimae.report.comparison import SWEEP_FILE, write_comparison
    from mimae.report.run import write_run_report
    sweeps = [run for run in args.runs if (Path(run) / SWEEP_FILE).is_file()]
    if args.out or sweeps:
        out = args.out or sweeps[0]
        paths = write_comparison(args.runs, out, args.title)
        print(f"comparison of {sum(g['n'] for g in paths['groups'])} runs: {paths['html']} and "
              f"{paths['markdown'].name}, numbers in {paths['json'].name}")
        return 0
    for run in args.runs:
        paths = write_run_report(run)
        print(f"{run}: {paths['html']} and {paths['markdown'].name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, RunFolderError, FileNotFoundError) as exc:
        print(f"mimae: error: {exc}", file=sys.stderr)
        return 2
    except (FloatingPointError, LoaderWorkerDied) as exc:
        print(f"mimae: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mimae: interrupted; what was saved is kept (a run continues with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (mimae ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
