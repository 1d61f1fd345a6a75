"""``mimae hierarchy <generate|locate|theory|learned>``: argument parsing for paper 003's hierarchical model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mimae.config import load_config, parse_overrides

EPILOG = """\
The generator is set by the hierarchy section (hierarchy.depth=4, hierarchy.branching=2, hierarchy.root_dim=4,
hierarchy.dim_growth=2, hierarchy.noise=1.0, hierarchy.nonlinearity=0.5, hierarchy.image_size=32, hierarchy.seed=0,
hierarchy.train_size=20000, hierarchy.test_size=5000, ...; `mimae pretrain --help` lists them all).

Examples:
  mimae hierarchy generate --output data/hier
  mimae pretrain --method mae data.dataset=hierarchical data.data_dir=data/hier mask.ratio=0.75
  mimae hierarchy locate --ratio 0.5 --unit 8
  mimae hierarchy theory --output runs/hier-theory --masks 20
  mimae hierarchy learned --output runs/hier-learned --ratios 0.1 0.5 0.75 0.9 --unit 4 train.epochs=3
  mimae hierarchy learned --output runs/hier-30 --ratios 0.75 --seeds 0 1 2 train.epochs=30   # paired with init
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mimae hierarchy`` and its four commands on the top-level subparsers."""
    hier = sub.add_parser("hierarchy", help="paper 003: hierarchical latent model, Theorem 1's c, theory vs learned",
                          formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    commands = hier.add_subparsers(dest="hierarchy_command", required=True)

    gen = commands.add_parser("generate", help="write the hierarchical dataset (images, labels, test latents)")
    gen.add_argument("--output", required=True, help="folder for hierarchical.pt (use as data.data_dir)")
    gen.set_defaults(func=cmd_generate)

    loc = commands.add_parser("locate", help="draw one random mask and print Theorem 1's shared latents c")
    loc.add_argument("--ratio", type=float, required=True, help="mask ratio")
    loc.add_argument("--unit", type=int, required=True, help="masking unit side, pixels")
    loc.add_argument("--seed", type=int, default=0, help="seed of the mask")
    loc.set_defaults(func=cmd_locate)

    theory = commands.add_parser("theory", help="mean level of c over random masks, per ratio and unit")
    theory.add_argument("--output", required=True, help="folder for theory.json, theory.md, theory.png")
    theory.add_argument("--units", type=int, nargs="+", default=[2, 4, 8, 16], help="masking units, pixels")
    theory.add_argument("--ratios", type=float, nargs="+", default=None, help="mask ratios (default 0.05..0.95)")
    theory.add_argument("--masks", type=int, default=20, help="random masks per (unit, ratio)")
    theory.add_argument("--seed", type=int, default=0, help="seed of the masks")
    theory.set_defaults(func=cmd_theory)

    learned = commands.add_parser("learned", help="pretrain MAE at several ratios and probe every latent level")
    learned.add_argument("--output", required=True, help="folder for the data, the runs and learned.{json,md,png}")
    learned.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.5, 0.75, 0.9], help="mask ratios")
    learned.add_argument("--unit", type=int, default=None, help="masking unit, pixels (default: the patch)")
    learned.add_argument("--probe", choices=("linear", "kernel"), default="linear", help="probe of the latents")
    learned.add_argument("--seeds", type=int, nargs="+", default=None,
                         help="train and probe at each seed (OUTPUT/seed-K), then pair each level's R^2 with the "
                              "random initialization's of the seed (default: train.seed only, in OUTPUT)")
    learned.add_argument("--data", default=None, help="dataset folder from `generate` (default: OUTPUT/data, "
                                                      "generated from the hierarchy section when absent)")
    learned.set_defaults(func=cmd_learned)

    for command in (gen, loc, theory, learned):
        command.add_argument("overrides", nargs="*", metavar="section.key=value",
                             help="config overrides, e.g. hierarchy.depth=3 or train.epochs=2")
        command.set_defaults(func=_reporting_value_errors(command.get_default("func")))


def _reporting_value_errors(handler):
    """Bad values found past the config (a unit that does not tile the image...) end as one error line, code 2."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ValueError as exc:
            print(f"mimae: error: {exc}", file=sys.stderr)
            return 2
    return run


def _config(args: argparse.Namespace):
    return load_config(overrides=parse_overrides(args.overrides))


def cmd_generate(args: argparse.Namespace) -> int:
    from mimae.hierarchy.dataset import generate, save
    data = generate(_config(args).hierarchy)
    path = save(data, args.output)
    print(f"{len(data.train)} training and {len(data.test)} test images of {tuple(data.train.images.shape[1:])}, "
          f"{len(data.test_latents)} latent nodes: {path}")
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    import torch

    from mimae.hierarchy.dataset import graph_from_config
    from mimae.hierarchy.locator import locate_pixels
    from mimae.hierarchy.theory import pixel_masks
    hcfg = _config(args).hierarchy
    graph = graph_from_config(hcfg)
    mask = pixel_masks(hcfg.image_size, args.unit, args.ratio, 1, torch.Generator().manual_seed(args.seed))[0]
    shared = locate_pixels(graph, mask)
    print(f"masked pixels: {mask.mean():.0%} in {args.unit}px units")
    print(f"c: {len(shared.nodes)} nodes, dimension {shared.dim}, mean level {shared.mean_level:.2f}")
    for node in sorted(shared.nodes, key=lambda n: (-shared.levels[n], n)):
        print(f"  {node}  level {shared.levels[node]}  dim {graph.nodes[node]['dim']}")
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    from mimae.hierarchy.dataset import graph_from_config
    from mimae.hierarchy.theory import RATIOS, run_theory, theory_table
    graph = graph_from_config(_config(args).hierarchy)
    result = run_theory(graph, args.output, tuple(args.units), tuple(args.ratios or RATIOS), args.masks, args.seed)
    print(theory_table(result))
    print(f"figure: {Path(args.output) / 'theory.png'}")
    return 0


def cmd_learned(args: argparse.Namespace) -> int:
    from mimae.experiments.hierarchy_learned import against_init_table, learned_table, run_learned, run_learned_seeds
    if args.seeds:
        result = run_learned_seeds(args.output, tuple(args.seeds), tuple(args.ratios), args.unit,
                                   parse_overrides(args.overrides), args.probe, data_dir=args.data)
    else:
        result = run_learned(args.output, tuple(args.ratios), args.unit, parse_overrides(args.overrides), args.probe,
                             data_dir=args.data)
    print(learned_table(result))
    if "against_init" in result:
        print(against_init_table(result))
    print(f"figure: {Path(args.output) / 'learned.png'}")
    return 0
