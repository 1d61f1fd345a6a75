"""The report of a pretraining run: ``report.md`` and the same page as a self-contained ``report.html`` (figures
embedded), written into the run folder at the end of every run and by ``mimae report RUN``.

The page holds the configuration in brief, the kNN accuracy at initialization, at the end and of the raw pixels on
the same bank and queries, every evaluation result found in the folder (``eval_*.json``), the throughput, the loss
curves, a reconstruction grid for the methods with a pixel decoder, and the commands that go further. The
Markdown is the one source of both pages (:mod:`mimae.report.page`).
"""

from __future__ import annotations

import json
from pathlib import Path

from mimae.analysis.curves import run_curves
from mimae.analysis.loading import labelled_test_images, load_pretrained
from mimae.analysis.reconstruct import GRID_TITLE, grid_rows, plot_grid
from mimae.config import Config
from mimae.report.measures import MASK_MI_FILE, RANK_FILE
from mimae.report.page import table, write_page
from mimae.run_folder import EVAL_PATTERN, RESULTS_NAME
from mimae.runs import read

GRID_IMAGES = 8


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def config_rows(cfg: Config, results: dict) -> list[tuple[str, str]]:
    """The settings that define the run, as (what, value) rows."""
    o, t, d, m = cfg.optim, cfg.train, cfg.data, cfg.model
    effective = results.get("effective_batch", o.batch_size * o.accum_steps)
    per_image = results.get("samples_per_image", 1)
    # runs before results kept it trained at an lr that counted masks, not crops
    peak_lr = results.get("peak_lr", o.base_lr * effective * results.get("views_per_image", 1) / 256)
    return [
        ("method", cfg.method),
        ("encoder", f"ViT {m.embed_dim} wide, {count(m.depth, 'block')}, {m.num_heads} heads, patch "
                    f"{m.patch_size}"),
        ("decoder", f"{m.decoder_dim} wide, {count(m.decoder_depth, 'block')}, {m.decoder_heads} heads"
                    if m.decoder_depth else "none"),
        ("data", f"{d.dataset}, {d.image_size} px" + (f", first {d.train_limit} training images"
                                                      if d.train_limit else "")),
        ("masking", f"ratio {cfg.mask.ratio:g}, unit {cfg.mask.unit} px"),
        ("schedule", f"{count(t.epochs, 'epoch')}, {results.get('steps', '?')} steps of {effective} images x "
                     f"{count(per_image, 'sample')} per image"),
        ("optimizer", f"AdamW, base lr {o.base_lr:g} per 256 samples (peak lr {peak_lr:.3g}), "
                      f"warmup {o.warmup_epochs:g} epochs, weight decay {o.weight_decay:g}"),
        ("precision, seed", f"{t.precision}, {t.seed}"),
    ]


def knn_rows(results: dict) -> list[tuple[str, float]]:
    names = {"knn_init": "encoder at initialization", "knn_final": "encoder after pretraining",
             "knn_pixels": "raw pixels (baseline)"}
    epochs = sorted((k for k in results if k.startswith("knn_epoch")), key=lambda k: int(k[len("knn_epoch"):]))
    order = ["knn_init", *epochs, "knn_final", "knn_pixels"]
    return [(names.get(k, f"encoder after epoch {k[len('knn_epoch'):]}"), results[k]) for k in order if k in results]


def evaluation_rows(run_dir: Path) -> list[tuple[str, str, str, str]]:
    """(protocol, file, images, accuracy) of every ``eval_*.json`` in the folder that reports an accuracy."""
    rows = []
    for path in sorted(run_dir.glob(EVAL_PATTERN)):
        result = json.loads(path.read_text())
        parts = {k: v for k, v in result.items() if isinstance(v, dict) and "accuracy" in v}
        if "accuracy" in result:
            parts = {result.get("protocol", path.stem): result, **parts}
        for name, part in parts.items():
            label = f"{part.get('protocol', name)} on the raw pixels" if part.get("feature") == "pixels" else name
            images = f"{part.get('train_images', '?')} / {part.get('test_images', '?')}"
            rows.append((label, path.name, images, f"{part['accuracy']:.2f}"))
    return rows


def reconstruction_figure(run_dir: Path, figures: Path) -> Path | None:
    """The grid of original / masked / decoded / pasted test images, for a method with a pixel decoder."""
    model = load_pretrained(run_dir)
    if not hasattr(model.objective, "reconstruct"):
        return None
    images, _, info = labelled_test_images(model.cfg, GRID_IMAGES)
    return plot_grid(grid_rows(model, images, info), figures / "reconstructions.png", GRID_TITLE)


def mask_mi_rows(run_dir: Path) -> list[tuple[str, ...]]:
    """The rows of the folder's mask-mi result (``mimae analyze mask-mi``), if it has one: encoder, shared
    information, view retrieval (chance), CLUB, cosine between sibling views and between different images."""
    path = run_dir / MASK_MI_FILE
    if not path.is_file():
        return []
    return [("initialization" if row.get("init") else "this run", f"{row['infonce']:.2f}",
             f"{row['retrieval']:.2f} ({row['retrieval_chance']:.3f})", f"{row['club']:.1f}",
             f"{row['cosine_siblings']:.3f}", f"{row['cosine_others']:.3f}")
            for row in json.loads(path.read_text())["checkpoints"][:2]]


def rank_rows(run_dir: Path) -> list[tuple[str, ...]]:
    """The rows of the folder's rank result (``mimae analyze rank``), if it has one: encoder, effective rank (of D
    dimensions), std of the unit latents (that of an even spread) and their cosine between different images."""
    path = run_dir / RANK_FILE
    if not path.is_file():
        return []
    return [("initialization" if row.get("init") else "this run", f"{row['effective_rank']:.1f} ({row['dims']})",
             f"{row['unit_std']:.4f} ({row['unit_std_even']:.4f})", f"{row['cosine_others']:.3f}")
            for row in json.loads(path.read_text())["checkpoints"][:2]]


def next_commands(run_dir: Path, reconstructs: bool) -> list[str]:
    run = str(run_dir)
    commands = [
        f"mimae eval knn --checkpoint {run} --full            # kNN on the whole training and test splits",
        f"mimae eval linear --checkpoint {run}                # linear probe (MAE's protocol)",
        f"mimae eval finetune --checkpoint {run}              # end-to-end fine-tuning",
        f"mimae analyze curves --run {run} --output-dir {run}/analysis",
        f"mimae analyze tsne --checkpoint {run} --output-dir {run}/analysis",
        f"mimae analyze mask-mi --checkpoint {run} --output-dir {run}/{MASK_MI_FILE.split('/')[0]} --with-init"
        f"   # what masked views share (shown here)",
        f"mimae analyze rank --checkpoint {run} --output-dir {run}/{RANK_FILE.split('/')[0]} --with-init"
        f"   # how many directions the latents use (shown here)",
        f"mimae export --checkpoint {run} --output {run}/encoder.safetensors   # timm ViT weights",
        f"mimae pretrain --output-dir {run} --resume train.epochs=N   # train on to N epochs",
        f"mimae report {run}                                  # this page again",
    ]
    if reconstructs:
        commands.insert(3, f"mimae analyze reconstruct --checkpoint {run} --output-dir {run}/analysis")
    return commands


def markdown_page(run_dir: Path, cfg: Config, results: dict, figures: dict[str, Path | None]) -> str:
    lines = [f"# Pretraining run `{run_dir.name}`", "", f"Run folder: `{run_dir}`", "", "## Configuration", "",
             *table(("setting", "value"), config_rows(cfg, results)), "",
             "The whole configuration is in `config.yaml`.", "", "## kNN accuracy", ""]
    knn = knn_rows(results)
    if knn:
        bank, queries = cfg.eval.knn_bank_limit or "all", cfg.eval.knn_query_limit or "all"
        lines += [*table(("features", "top-1 accuracy (%)"), [(name, f"{acc:.2f}") for name, acc in knn]), "",
                  f"Weighted kNN (k={cfg.eval.knn_k}, T={cfg.eval.knn_temperature:g}, cosine, [CLS] feature); bank: "
                  f"{bank} training images, queries: {queries} test images."]
        if "knn_final" in results and "knn_pixels" in results:
            gap = results["knn_final"] - results["knn_pixels"]
            lines.append(f"The pretrained features score {abs(gap):.2f} points {'above' if gap >= 0 else 'below'} "
                         "the raw pixels on the same bank and queries.")
        lines.append("")
    evaluations = evaluation_rows(run_dir)
    if evaluations:
        lines += ["## Evaluations in this folder", "",
                  *table(("protocol", "result file", "train / test images", "top-1 accuracy (%)"), evaluations), ""]
    mask_mi = mask_mi_rows(run_dir)
    if mask_mi:
        lines += ["## What masked views share (mask-mi)", "",
                  *table(("encoder", "shared by views, InfoNCE bound (nats)", "view retrieval, top-1 % (chance)",
                          "input beyond it, CLUB (nats)", "cosine: sibling views", "cosine: other images"),
                         mask_mi), "",
                  f"From `{MASK_MI_FILE}` (`mimae analyze mask-mi`): test images cut into orthogonally masked views; "
                  "the estimators fitted on half of the images and scored on the other half (docs/analyses.md).",
                  ""]
    rank = rank_rows(run_dir)
    if rank:
        lines += ["## How many directions the latents use (rank)", "",
                  *table(("encoder", "effective rank (of D)", "std of the unit latents (even spread)",
                          "cosine: other images"), rank), "",
                  f"From `{RANK_FILE}` (`mimae analyze rank`): the [CLS] latents of unmasked test images; the "
                  "effective rank reads the shape of their spectrum, the std their scale: 0 when every image maps "
                  "to one point (docs/analyses.md).", ""]
    lines += ["## Training", ""]
    seconds, steps = results.get("train_seconds"), results.get("steps")
    if seconds and steps:
        images = steps * results.get("effective_batch", cfg.optim.batch_size)
        samples = results.get("samples", images)
        lines.append(f"{steps} optimizer steps, {images} images, {samples} (image, mask) samples in {seconds:.0f} s "
                     f"of training: {images / seconds:.0f} images/s. Skipped non-finite steps: "
                     f"{results.get('skipped_steps', 0)}.")
        lines.append("")
    if results.get("gate_step") is not None:
        plateau = f" or stopped improving for {cfg.mimae.plateau_steps} steps" if cfg.mimae.plateau_steps else ""
        lines += [f"The MI terms started after step {results['gate_step']:,} of {results['steps']:,}, once the "
                  f"running L_rec fell below mimae.eps_l = {cfg.mimae.eps_l:g}{plateau}.", ""]
    lines += [line for note in results.get("notes", []) for line in (f"**Note:** {note}.", "")]
    lines += ["![Training curves](figures/curves.png)", ""]
    if figures.get("reconstructions"):
        lines += ["## Reconstructions", "", "Test images, masked as in training (ratio "
                  f"{cfg.mask.ratio:g}); the decoder's output; the visible patches pasted back over it.", "",
                  "![Reconstructions](figures/reconstructions.png)", ""]
    lines += ["## Next", "", "```bash", *next_commands(run_dir, bool(figures.get("reconstructions"))), "```", ""]
    return "\n".join(lines)


def write_run_report(run_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/`` for a finished (or stopped) run; their paths."""
    run_dir = Path(run_dir).resolve()
    source = read(run_dir)
    results_file = run_dir / RESULTS_NAME
    results = json.loads(results_file.read_text()) if results_file.is_file() else {
        **source.state.get("results", {}), "steps": source.step}
    figures_dir = run_dir / "figures"
    figures = {"curves": run_curves([run_dir], figures_dir)["figures"][0],
               "reconstructions": reconstruction_figure(run_dir, figures_dir)}
    text = markdown_page(run_dir, source.cfg, results, figures)
    md, page = write_page(text, run_dir, f"mimae run {run_dir.name}")
    return {"markdown": md, "html": page, **{k: v for k, v in figures.items() if v is not None}}
