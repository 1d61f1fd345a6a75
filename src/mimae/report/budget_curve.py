"""The budget curve's page: accuracy against (image, mask) samples of one long run per seed, read at its kept epoch
checkpoints (``eval_along.json``, ``eval_finetune-along.json``), beside each protocol's baseline, and the budget
chosen from it.

The baseline of the kNN and the linear probe is the raw pixels under the same protocol; that of fine-tuning is the
same ViT fine-tuned from the run's initialization (epoch 0). Each run's encoder at epoch e is compared with the
baseline seed by seed: d_k = encoder - baseline at seed k, d the mean over the n seeds, se = sd(d_k) / sqrt(n). The
chosen budget is the smallest kept epoch at which d > 2 se against the pixels under at least one protocol, else the
smallest at which fine-tuning beats fine-tuning from scratch by 2 se; with one seed there is no spread, and the page
names the first epoch at which that seed is above the baseline as provisional.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from mimae.plotting import legend_below, panel_grid, save_figure
from mimae.report.claims import mean_and_se, one_sided_p, rule_p
from mimae.report.page import table, write_page
from mimae.run_folder import CONFIG_NAME, RESULTS_NAME, eval_name
from mimae.runs import saved_config

PROTOCOLS = {"knn": "kNN, bank slice", "knn_full": "kNN, full bank", "linear_best": "linear probe, best lr",
             "linear_default": "linear probe, lr 6.4", "finetune": "fine-tune"}
BASELINES = {name: "from scratch" if name == "finetune" else "pixels" for name in PROTOCOLS}
BUDGET_FILE = "budget.json"


def run_curve(run_dir: Path) -> dict:
    """One run's points: epoch, step, (image, mask) samples and each protocol's accuracy (None where not measured);
    each protocol's baseline beside (``baselines``: the pixels', and epoch 0's fine-tuning)."""
    along = json.loads((run_dir / eval_name("along")).read_text())
    results = json.loads((run_dir / RESULTS_NAME).read_text())
    per_step = results["samples"] / results["steps"]
    finetune_file = run_dir / eval_name("finetune-along")
    finetune_along = json.loads(finetune_file.read_text()) if finetune_file.is_file() else None
    tuned = {p["epoch"]: p["accuracy"] for p in finetune_along["along"]} if finetune_along else {}

    def accuracies(scores: dict) -> dict:
        return {"knn": scores["knn"], "knn_full": scores["knn_full"], "linear_best": scores["linear_best"],
                "linear_default": scores["linear"].get("6.4")}

    return {"seed": saved_config(run_dir / CONFIG_NAME).train.seed, "along": along, "finetune_along": finetune_along,
            "baselines": {**accuracies(along["pixels"]), "finetune": tuned.get(0)},
            "points": [{"epoch": p["epoch"], "step": p["step"], "samples": round(p["step"] * per_step),
                        **accuracies(p), "finetune": tuned.get(p["epoch"])} for p in along["along"]]}


def paired_to_baseline(values: list[float], baselines: list[float]) -> dict:
    """The encoder's accuracies and its baseline's, one per seed: the mean, the paired d ± se, the paired t-test's
    one-sided p and whether d > 2 se."""
    differences = [v - b for v, b in zip(values, baselines)]
    d, se = mean_and_se(differences)
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values), "baseline": statistics.mean(baselines), "d": d, "se": se,
            "p": one_sided_p(d, se, len(differences)), "beats_baseline": se is not None and d > 2 * se}


def curve(runs: list[dict]) -> list[dict]:
    """Per kept epoch that every run has: samples and, per protocol every run measured there, the encoder against
    its baseline."""
    epochs = sorted(set.intersection(*({p["epoch"] for p in r["points"]} for r in runs)))
    rows = []
    for epoch in epochs:
        points = [next(p for p in r["points"] if p["epoch"] == epoch) for r in runs]
        measured = [name for name in PROTOCOLS
                    if all(p[name] is not None and r["baselines"][name] is not None for p, r in zip(points, runs))]
        rows.append({"epoch": epoch, "samples": points[0]["samples"],
                     **{name: paired_to_baseline([p[name] for p in points], [r["baselines"][name] for r in runs])
                        for name in measured}})
    return rows


# the protocols the budget is chosen by: each pixel baseline at its best (the probe at lr 6.4 is shown, not used: it
# under-tunes the pixels' probe), then fine-tuning against fine-tuning from scratch
FAIR = ("knn", "knn_full", "linear_best")


MIN_SEEDS = 3  # a budget is chosen on 3 seeds or more: with 2 the se has one degree of freedom


def chosen_budget(rows: list[dict]) -> str:
    """The budget in words: the first epoch at which the encoder beats the pixels beyond 2 paired se under a fair
    protocol, on ``MIN_SEEDS`` seeds or more; with fewer, where each protocol first does so (or, with one seed, first
    scores above them), as provisional; or that it never does."""
    seeds = max((row[name]["n"] for row in rows for name in FAIR if name in row), default=0)
    pretrained = [row for row in rows if row["epoch"] > 0]
    if seeds >= MIN_SEEDS:
        for row in rows:
            won = [PROTOCOLS[name] for name in FAIR if row.get(name, {}).get("beats_baseline")]
            if won:
                return (f"**The cpu scale: {row['epoch']} MAE epochs ({row['samples']:,} (image, mask) samples)**, "
                        "the smallest kept budget at which MAE beats the raw pixels by more than 2 paired se "
                        f"({', '.join(won)}; n = {seeds} seeds).")
        none = "At no kept budget does MAE beat the raw pixels beyond 2 paired se under any protocol"
        tuned = next((row for row in pretrained if row.get("finetune", {}).get("n", 0) >= MIN_SEEDS), None)
        if tuned is None:
            return f"{none}; fine-tuning against the same ViT from scratch decides, once it is measured on 3 seeds."
        won_row = next((row for row in pretrained if row.get("finetune", {}).get("beats_baseline")), None)
        if won_row is None:
            last = last_measured(rows, "finetune") or tuned
            return (f"{none}, nor does MAE fine-tuned beat the same ViT fine-tuned from scratch at any kept budget "
                    f"({difference(last['finetune'])} at {last['epoch']} epochs): pretraining shows under no "
                    "protocol of this page.")
        m = won_row["finetune"]
        return (f"{none}. **The cpu scale: {won_row['epoch']} MAE epochs ({won_row['samples']:,} (image, mask) "
                f"samples), read by fine-tuning**, the smallest kept budget at which MAE fine-tuned beats the same "
                f"ViT fine-tuned from scratch by more than 2 paired se ({difference(m)}, n = {m['n']}).")
    if seeds == 0:
        return "No kept budget has been scored yet."

    def first(name: str) -> str:
        above = next((row for row in pretrained if name in row and
                      (row[name]["beats_baseline"] if seeds > 1 else row[name]["d"] > 0)), None)
        if above is not None:
            return f"{PROTOCOLS[name]} from {above['epoch']} epochs ({difference(above[name])})"
        last = last_measured(rows, name)
        return (f"{PROTOCOLS[name]} at no kept budget ({difference(last[name])} at {last['epoch']} epochs)" if last
                else f"{PROTOCOLS[name]}: not measured")

    rule = "first scores above" if seeds == 1 else "first beats"
    return (f"Provisional (n = {seeds} seed{'s' * (seeds > 1)}; a budget is chosen on {MIN_SEEDS}). Where MAE {rule} "
            "its baseline (the raw pixels; for fine-tuning the same ViT fine-tuned from scratch)"
            + (" by more than 2 paired se" if seeds > 1 else "") + ": "
            + "; ".join(first(name) for name in (*FAIR, "finetune")) + ".")


def last_measured(rows: list[dict], name: str) -> dict | None:
    """The last pretrained (epoch > 0) row that measured ``name``."""
    return next((row for row in reversed(rows) if name in row and row["epoch"] > 0), None)


def difference(m: dict) -> str:
    """"+1.10 ± 0.20": a paired difference (without the ± where one seed has no spread)."""
    return f"{m['d']:+.2f}" + (f" ± {m['se']:.2f}" if m["se"] is not None else "")


def measured(rows: list[dict]) -> list[str]:
    """The protocols measured at some kept epoch, in the page's order."""
    return [name for name in PROTOCOLS if any(name in r for r in rows)]


def plot_curve(rows: list[dict], path: Path, title: str) -> Path:
    names = measured(rows)
    fig, axes = panel_grid(len(names), columns=min(len(names), 3))
    for ax, name in zip(axes, names):
        points = [r for r in rows if name in r]
        ax.errorbar([r["samples"] for r in points], [r[name]["mean"] for r in points],
                    yerr=[r[name]["std"] or 0 for r in points], marker="o", capsize=3,
                    label="MAE, mean ± std over seeds")
        ax.axhline(points[0][name]["baseline"], color="gray", linestyle="--",
                   label="baseline, same protocol: raw pixels (fine-tune: from scratch)")
        ax.set_xlabel("(image, mask) samples")
        ax.set_ylabel(f"{PROTOCOLS[name]} top-1 (%)")
        ax.grid(alpha=0.3)
    legend_below(fig, axes[0])
    return save_figure(fig, path, title)


def finetune_protocol(runs: list[dict]) -> list[str]:
    """The fine-tuning recipe in one line, if the runs were fine-tuned."""
    tuned = runs[0]["finetune_along"]
    if tuned is None:
        return []
    ft = tuned["finetune"]
    return [f"- fine-tune: the MAE recipe through timm (AdamW, layer decay {ft['layer_decay']}, drop path "
            f"{ft['drop_path']}, mixup {ft['mixup']} / cutmix {ft['cutmix']}, RandAugment), {ft['epochs']} epochs "
            f"at base lr {ft['base_lr']:g}, batch {ft['batch_size']}, on the first {tuned['train_images']:,} "
            f"training images, scored on the first {tuned['test_images']:,} test images; epoch 0's is the same ViT "
            "fine-tuned from the run's initialization (from scratch), with the same head seed, data order and "
            "augmentation as every checkpoint's."]


def write_budget_curve(run_dirs: list[Path], out: Path, title: str, notes: list[str]) -> dict:
    """The page (report.md, report.html), its figure and ``budget.json``; their paths and the curve."""
    runs = [run_curve(Path(d)) for d in run_dirs]
    rows = curve(runs)
    figure = plot_curve(rows, out / "figures" / "budget.png", title)
    first = runs[0]["along"]
    names = measured(rows)
    head = ("epoch", "samples", *(f"{PROTOCOLS[n]}: MAE / {BASELINES[n]} / d ± se" for n in names))

    def cell(m: dict | None) -> str:
        if m is None:
            return "-"
        p = f" (p {m['p']:.3f})" if m.get("p") is not None else ""
        return f"{m['mean']:.2f} / {m['baseline']:.2f} / {difference(m)}{p}" + (" ✓" if m["beats_baseline"] else "")

    cells = [(r["epoch"], f"{r['samples']:,}", *(cell(r.get(n)) for n in names)) for r in rows]
    text = "\n".join([
        f"# {title}", "", *(f"{note}\n" for note in notes), chosen_budget(rows), "",
        f"n = {len(runs)} seed(s). Each cell: MAE's accuracy (mean over seeds) / the baseline's under the same "
        "protocol (the raw pixels; for fine-tuning the same ViT fine-tuned from the run's initialization) / the "
        "paired difference d ± se (d = MAE - baseline per seed, se = sd / sqrt(n)) and the paired t-test's one-sided "
        f"p that MAE is better (t = d / se, n - 1 degrees of freedom{rule_p(len(runs))}); ✓ where d > 2 se; - where "
        "not measured. Epoch 0 is the initialization.", "", *table(head, cells), "",
        f"![budget]({figure.relative_to(out)})", "",
        "## Protocols", "",
        f"- kNN: k = 20, T = 0.07, cosine on [CLS]; bank slice: the first {first['knn_bank']} training images against "
        f"the first {first['knn_queries']} test images; full bank: all {first['train_images']:,} against all "
        f"{first['test_images']:,}.",
        f"- linear probe: {first['linear_protocol']}, the first {first['linear_train']} training / "
        f"{first['linear_test']} test images, at base lr {', '.join(f'{lr:g}' for lr in first['probe_lrs'])}; "
        "'best lr' is the best of those on the test images, for the encoder and for the pixels alike (so both are "
        "optimistic by the same selection).",
        *finetune_protocol(runs),
        "- One run per seed on one cosine schedule of the whole length: an intermediate checkpoint has not decayed "
        "its lr as a run of that length would.",
        f"- CPU capability of the evaluation: {first['cpu_capability']}.", ""])
    md, page = write_page(text, out, title)
    data = out / BUDGET_FILE
    data.write_text(json.dumps({"title": title, "runs": [str(Path(d).resolve()) for d in run_dirs], "curve": rows,
                                "per_run": runs, "chosen": chosen_budget(rows)}, indent=1) + "\n")
    return {"markdown": md, "html": page, "json": data, "figure": figure, "curve": rows}
