"""``mimae analyze <name>``: argument parsing for the papers' analyses (the work is in the modules beside this)."""

from __future__ import annotations

import argparse

from mimae.distributed import pick_device

EPILOG = """\
Each command writes <name>.png (or several PNGs) and <name>.json with the numbers into --output-dir and prints them.
--checkpoint takes run folders (their checkpoint.pt) or checkpoint files; several give side-by-side results.

Examples:
  mimae analyze reconstruct --checkpoint runs/mae --output-dir runs/mae/analysis
  mimae analyze attention --checkpoint runs/mae runs/mimae --output-dir runs/compare/analysis
  mimae analyze tsne --checkpoint runs/mae runs/mimae --output-dir runs/compare/analysis
  mimae analyze mask-geometry --output-dir runs/geometry
  mimae pretrain --output-dir runs/lip train.keep_checkpoints=true && \\
      mimae analyze lipschitz --checkpoint runs/lip --output-dir runs/lip/analysis
  mimae analyze curves --run runs/mae runs/mimae --output-dir runs/compare/analysis
  mimae analyze mask-mi --checkpoint runs/mae/checkpoint-epoch0.pt runs/mae runs/mimae --output-dir runs/compare/mmi
  mimae analyze rank --checkpoint runs/mae runs/mimae --output-dir runs/compare/rank --with-init
"""


def _checkpoint_args(parser: argparse.ArgumentParser, images_default: int, images_help: str) -> None:
    parser.add_argument("--checkpoint", nargs="+", required=True, help="run folders or checkpoint files")
    parser.add_argument("--output-dir", required=True, help="folder for the PNG and JSON results")
    parser.add_argument("--images", type=int, default=images_default, help=images_help)
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--data-dir", default=None, help="dataset folder, if not where the run found it")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mimae analyze`` and its eight commands on the top-level subparsers."""
    analyze = sub.add_parser("analyze", help="the papers' analyses: reconstructions, attention, t-SNE, mask "
                                             "geometry, mask-invariant information, latent rank, decoder Lipschitz, "
                                             "training curves",
                             formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    commands = analyze.add_subparsers(dest="analysis", required=True)

    rec = commands.add_parser("reconstruct", help="reconstruction grid and SSIM/FSIM/PSNR/MSE over mask ratios "
                                                  "(paper 003 Fig. 5)")
    _checkpoint_args(rec, 1000, "test images the metrics average over")
    rec.add_argument("--ratios", type=float, nargs="+", default=None,
                     help="evaluation mask ratios of the metrics (default 0 0.25 0.5 0.75 0.9; 0 = no masking, "
                          "paper 003's setting)")
    rec.add_argument("--unit", type=int, default=None, help="masking unit in pixels (default: the checkpoint's)")
    rec.add_argument("--grid-images", type=int, default=8, help="images in the grid")
    rec.add_argument("--grid-ratio", type=float, default=None,
                     help="mask ratio of the grid (default: the checkpoint's training ratio)")
    rec.add_argument("--seed", type=int, default=0, help="seed of the masks")
    rec.set_defaults(func=cmd_reconstruct)

    att = commands.add_parser("attention", help="last-block [CLS] and chosen-token attention (paper 003 Fig. 6-7)")
    _checkpoint_args(att, 1000, "test images the [CLS] attention entropy averages over")
    att.add_argument("--grid-images", type=int, default=8, help="images in the figure")
    att.add_argument("--token", type=int, default=None,
                     help="chosen patch token, row-major index (default: each image's brightest patch)")
    att.set_defaults(func=cmd_attention)

    tsne = commands.add_parser("tsne", help="t-SNE of [CLS] features by class (paper 001 Fig. 4, 003 Fig. 8)")
    _checkpoint_args(tsne, 200, "test images per class")
    tsne.add_argument("--classes", type=int, default=10, help="number of classes shown (at most 10)")
    tsne.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    tsne.add_argument("--seed", type=int, default=0, help="t-SNE seed")
    tsne.set_defaults(func=cmd_tsne)

    geo = commands.add_parser("mask-geometry", help="intra/inter-class distances of masked views over the mask "
                                                    "ratio (paper 001 Fig. 3)")
    geo.add_argument("--output-dir", required=True, help="folder for the PNG and JSON results")
    geo.add_argument("--checkpoint", default=None,
                     help="take the dataset, image size, patch and unit from this run (default: the default config)")
    geo.add_argument("--images", type=int, default=2000, help="test images (all their pairs are compared)")
    geo.add_argument("--ratios", type=float, nargs="+", default=None, help="mask ratios (default 0, 0.05 ... 0.95)")
    geo.add_argument("--repeats", type=int, default=10, help="mask draws averaged per ratio")
    geo.add_argument("--unit", type=int, default=None, help="masking unit in pixels (default: the config's)")
    geo.add_argument("--seed", type=int, default=0, help="seed of the masks")
    geo.add_argument("overrides", nargs="*", metavar="section.key=value",
                     help="config overrides without --checkpoint: data.dataset, data.data_dir, data.image_size, "
                          "model.patch_size, mask.unit")
    geo.set_defaults(func=cmd_mask_geometry)

    lip = commands.add_parser("lipschitz", help="decoder Lipschitz estimate along training (paper 001 Sec. 3.2)")
    _checkpoint_args(lip, 1000, "test images per checkpoint")
    lip.add_argument("--ratio", type=float, default=None, help="mask ratio (default: the training ratio)")
    lip.add_argument("--seed", type=int, default=0, help="seed of the masks")
    lip.set_defaults(func=cmd_lipschitz)

    mmi = commands.add_parser("mask-mi", help="mask-invariant information of any ViT encoder: what orthogonally "
                                              "masked views share (InfoNCE bound, view retrieval), what else they "
                                              "keep of the input (CLUB), their cosine geometry (paper 000's premise)")
    _checkpoint_args(mmi, 2000, "test images (the estimators are fitted on the first half, scored on the second)")
    mmi.add_argument("--views", type=int, default=4, help="orthogonal masks per image (each view keeps 1/N)")
    mmi.add_argument("--fit-steps", type=int, default=300, help="Adam steps fitting the critic and q_theta")
    mmi.add_argument("--seed", type=int, default=0, help="seed of the masks and of the fitted estimators")
    mmi.add_argument("--with-init", action="store_true",
                     help="also measure each run's initialization (the same ViT and seed, untrained): the baseline")
    mmi.set_defaults(func=cmd_mask_mi)

    rank = commands.add_parser("rank", help="how many directions the [CLS] latents of unmasked test images use "
                                            "(effective rank), their spread on the sphere and mean cosine: "
                                            "collapse, partial or whole")
    _checkpoint_args(rank, 2000, "test images (at least 2)")
    rank.add_argument("--with-init", action="store_true",
                      help="also measure each run's initialization (the same ViT and seed, untrained): the baseline")
    rank.set_defaults(func=cmd_rank)

    cur = commands.add_parser("curves", help="training curves with the eps_l line (paper 000 Fig. 3)")
    cur.add_argument("--run", nargs="+", required=True, help="run folders (their metrics.jsonl)")
    cur.add_argument("--output-dir", required=True, help="folder for the PNG and JSON results")
    cur.set_defaults(func=cmd_curves)


def _report(result: dict, rows: list[dict]) -> int:
    """Print where the figures and the numbers went, and one short line per row (its scalar values); the whole
    numbers are in the JSON file."""
    for figure in result["figures"]:
        print(f"figure: {figure}")
    print(f"numbers: {result['json']}")
    for row in rows:
        cells = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                 if isinstance(v, (str, int, float)) or v is None]
        print("  " + ", ".join(cells))
    return 0


def at_training_ratio(checkpoint: dict) -> dict:
    """A reconstruct result's decoded-image quality at the evaluation ratio nearest its training ratio."""
    row = min(checkpoint["by_ratio"], key=lambda r: abs(r["ratio"] - checkpoint["train_mask_ratio"]))
    return {"label": checkpoint["label"], "ratio": row["ratio"],
            **{f"decoded_{name}": value for name, value in row["decoded"].items()}}


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from mimae.analysis.reconstruct import DEFAULT_RATIOS, run_reconstruct
    result = run_reconstruct(args.checkpoint, args.output_dir, tuple(args.ratios or DEFAULT_RATIOS), args.unit,
                             args.images, args.grid_images, args.grid_ratio, args.batch_size, args.seed,
                             str(pick_device(args.device)), args.data_dir)
    return _report(result, [at_training_ratio(c) for c in result["checkpoints"]])


def cmd_attention(args: argparse.Namespace) -> int:
    from mimae.analysis.attention import run_attention
    result = run_attention(args.checkpoint, args.output_dir, args.grid_images, args.token, args.images,
                           args.batch_size, str(pick_device(args.device)), args.data_dir)
    return _report(result, result["checkpoints"])


def cmd_tsne(args: argparse.Namespace) -> int:
    from mimae.analysis.tsne import run_tsne
    result = run_tsne(args.checkpoint, args.output_dir, args.images, args.classes, args.perplexity,
                      args.batch_size, args.seed, str(pick_device(args.device)), args.data_dir)
    return _report(result, result["checkpoints"])


def cmd_mask_geometry(args: argparse.Namespace) -> int:
    from mimae.analysis.loading import load_pretrained
    from mimae.analysis.mask_geometry import DEFAULT_RATIOS, run_mask_geometry
    from mimae.config import ConfigError, load_config, parse_overrides
    if args.checkpoint and args.overrides:
        raise ConfigError("mask-geometry takes its settings from --checkpoint or from overrides, not both")
    cfg = load_pretrained(args.checkpoint).cfg if args.checkpoint else load_config(
        overrides=parse_overrides(args.overrides))
    result = run_mask_geometry(args.output_dir, cfg, tuple(args.ratios or DEFAULT_RATIOS), args.images,
                               args.repeats, args.unit, args.seed)
    return _report(result, [{f"sweet_spot_{pairing}": ratio for pairing, ratio in result["sweet_spot"].items()}])


def cmd_lipschitz(args: argparse.Namespace) -> int:
    from mimae.analysis.lipschitz import run_lipschitz
    result = run_lipschitz(args.checkpoint, args.output_dir, args.images, args.ratio, args.batch_size, args.seed,
                           str(pick_device(args.device)), args.data_dir)
    return _report(result, [{k: c[k] for k in ("checkpoint", "step", "mean", "median", "max")}
                            for c in result["checkpoints"]])


def cmd_mask_mi(args: argparse.Namespace) -> int:
    from mimae.analysis.mask_mi import Fitting, run_mask_mi
    from mimae.config import ConfigError
    if args.views < 2 or args.images < 8 or args.fit_steps < 1:
        raise ConfigError(f"mask-mi needs --views >= 2, --images >= 8 and --fit-steps >= 1, got {args.views}, "
                          f"{args.images} and {args.fit_steps}")
    result = run_mask_mi(args.checkpoint, args.output_dir, args.images, args.views,
                         Fitting(steps=args.fit_steps, seed=args.seed), args.seed, args.batch_size,
                         str(pick_device(args.device)), args.data_dir, args.with_init)
    keys = ("label", "infonce", "infonce_ceiling", "retrieval", "retrieval_chance", "club", "cosine_siblings",
            "cosine_others")
    return _report(result, [{k: c[k] for k in keys} for c in result["checkpoints"]])


def cmd_rank(args: argparse.Namespace) -> int:
    from mimae.analysis.latent_rank import run_latent_rank
    from mimae.config import ConfigError
    if args.images < 2:
        raise ConfigError(f"rank needs --images >= 2, got {args.images}")
    result = run_latent_rank(args.checkpoint, args.output_dir, args.images, args.batch_size,
                             str(pick_device(args.device)), args.data_dir, args.with_init)
    keys = ("label", "effective_rank", "dims", "unit_std", "unit_std_even", "cosine_others")
    return _report(result, [{k: c[k] for k in keys} for c in result["checkpoints"]])


def cmd_curves(args: argparse.Namespace) -> int:
    from mimae.analysis.curves import run_curves
    result = run_curves(args.run, args.output_dir)
    return _report(result, [{k: r[k] for k in ("run", "eps_l", "gate_opened_at_step")} for r in result["runs"]])
