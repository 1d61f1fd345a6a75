"""The comparison of many runs: ``mimae report RUN... --out DIR`` (or a sweep's folder) as one page.

Runs that differ only in ``train.seed`` form one group; a group's row holds n, the seeds, and the mean +- sample
standard deviation over its seeds of every measure the runs have (:mod:`mimae.report.measures`: the kNN at the end of
pretraining and of the raw pixels on the same bank and queries, each evaluation's accuracy, corruption errors and
the mCE against a baseline group, reconstruction quality). The page states the budget and the protocol, draws the
measures with their spread (against a config key where the rows are a sweep of it, as the papers' figures), and may
carry reference numbers (a paper's), always in their own labelled column.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mimae.config import Config, flatten
from mimae.plotting import legend_below, panel_grid, plt, save_figure
from mimae.report.claims import RULE, Claim, check, claim_rows, plot_claims
from mimae.report.collapse import NEVER_STARTED_RULE, collapse, never_started
from mimae.report.collapse import RULE as COLLAPSE_RULE
from mimae.report.measures import CHOSEN_LR, baseline_measure, describe, header, mean_corruption_errors, read_measures
from mimae.report.page import table, write_page
from mimae.run_folder import CONFIG_NAME, RESULTS_NAME, eval_name
from mimae.runs import read, saved_config

NOT_A_DIFFERENCE = ("train.seed", "data.data_dir", "train.device", "train.threads", "lowshot.subset_file")
SWEEP_FILE = "sweep.json"  # a sweep folder's list of its runs (written by mimae.experiments.sweep)


@dataclass
class Run:
    run_dir: Path
    cfg: Config
    results: dict
    measures: dict[str, float] = field(default_factory=dict)  # measure name -> value (mimae.report.measures)
    corruption_errors: dict | None = None  # corruption -> severity -> error %, from eval_robustness.json
    collapsed: str | None = None  # why its latent counts as collapsed (mimae.report.collapse), None if healthy
    never_started: str | None = None  # why it did not test its method (its MI terms never started), else None


def load_run(run_dir: Path) -> Run:
    """A finished run's config (its ``config.yaml``, else its checkpoint's), results and measures: the small files
    alone are enough, so a run archived without its weights is reported as it was."""
    results_file = run_dir / RESULTS_NAME
    if not results_file.is_file():
        raise FileNotFoundError(f"{run_dir} holds no finished run (no {RESULTS_NAME})")
    results = json.loads(results_file.read_text())
    measures, errors = read_measures(run_dir, results)
    config_file = run_dir / CONFIG_NAME
    cfg = saved_config(config_file) if config_file.is_file() else read(run_dir).cfg
    return Run(run_dir.resolve(), cfg, results, measures, errors, collapse(run_dir, results, measures),
               never_started(results, cfg.mimae.lambda_max, cfg.mimae.lambda_min))


def run_folders(paths: list[str | Path]) -> list[Path]:
    """Run folders from run folders, sweep folders (each point of ``sweep.json``) and folders of run folders (an
    archive's ``runs``)."""
    folders = []
    for path in map(Path, paths):
        sweep = path / SWEEP_FILE
        inside = sorted(p.parent for p in path.glob(f"*/{RESULTS_NAME}"))
        if sweep.is_file():
            folders += [Path(p["run_dir"]) for p in json.loads(sweep.read_text())["points"]]
        elif inside and not (path / RESULTS_NAME).is_file():
            folders += inside
        else:
            folders.append(path)
    return folders


def differing_keys(runs: list[Run]) -> list[str]:
    """The config keys whose values differ between the runs (the seed and paths aside)."""
    configs = [flatten(r.cfg.to_dict()) for r in runs]
    keys = [k for k in configs[0] if not k.startswith(NOT_A_DIFFERENCE)]
    return [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]


def group_runs(runs: list[Run], labels: dict[Path, str] | None = None) -> dict[str, list[Run]]:
    """Label -> the runs that share it: the label given for the run folder, else the config values in which the
    runs differ."""
    keys = differing_keys(runs)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        values = flatten(run.cfg.to_dict())
        label = (labels or {}).get(run.run_dir) or ", ".join(f"{k}={values[k]}" for k in keys) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def spread(values: list[float]) -> tuple[float, float | None]:
    """(mean, sample standard deviation; None for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def cell(values: list[float], unit: str = "%", runs: int | None = None) -> str:
    """mean ± std of ``values``; with ``runs`` (the row's run count) more than the values, their own n."""
    if not values:
        return ""
    digits = 2 if unit else 4
    mean, std = spread(values)
    text = f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"
    return f"{text} (n={len(values)})" if runs is not None and len(values) < runs else text


def measures_of(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += [n for n in run.measures if n not in names]
    return names


def add_mce(groups: dict[str, list[Run]], baseline: str) -> None:
    """Each run's mCE (measure ``mce``) against the mean corruption errors of the group labelled ``baseline``."""
    if baseline not in groups:
        raise ValueError(f"the mCE baseline {baseline!r} is not a group of these runs: {', '.join(groups)}")
    reference = [r.corruption_errors for r in groups[baseline] if r.corruption_errors is not None]
    runs = [r for members in groups.values() for r in members]
    for run, mce in zip(runs, mean_corruption_errors([r.corruption_errors for r in runs], reference)):
        if mce is not None:
            run.measures["mce"] = mce


BACKBONES = {"vit": "ViT", "swin": "Swin"}


def baseline_label(encoder: tuple, every: list[tuple]) -> str:
    """The baseline row's label for the runs of one encoder (``ModelConfig.encoder``): its backbone, and the keys
    it differs by from ``every`` other encoder of the page of that backbone."""
    backbone = dict(encoder)["backbone"]
    kin = [dict(other) for other in every if dict(other)["backbone"] == backbone]
    differs = ", ".join(f"model.{key}={value}" for key, value in encoder if any(o[key] != value for o in kin))
    name = BACKBONES[str(backbone)] + (f" ({differs})" if differs else "")
    return (f"baseline, same protocol (raw pixels; fine-tuning: the same {name} from scratch; mask-mi and rank: the "
            f"same {name} at initialization)")


BASELINE_LABEL = baseline_label((("backbone", "vit"),), [])  # a page whose runs share one ViT


def by_encoder(runs: list[Run]) -> dict[tuple, list[Run]]:
    """The runs of each encoder, in the order they first appear: each has its own from-scratch baseline."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.cfg.model.encoder(), []).append(run)
    return groups


def baseline_row(runs: list[Run], measures: list[str], label: str = BASELINE_LABEL) -> tuple:
    """The baseline row of runs of one encoder: per protocol, the mean ± std over the seeds of its one value at
    each seed (every run at a seed has the same pixels and the same initialization), n the seeds."""
    group = baseline_group(runs, measures)
    cells = [cell(group[m]["values"], describe(m).unit) if m in group else "" for m in measures]
    return (label, len({r.cfg.train.seed for r in runs}), *cells)


def count(n: int, noun: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


BASELINE = "the baseline"  # its name as the other side of a paired comparison


def baseline_group(runs: list[Run], measures: list[str]) -> dict[str, dict]:
    """The baseline as one more group, to pair each row with by seed: per measure, its baseline's value at each seed
    (every row at a seed has the same one: the pixels under the same bank, queries and probe, or the ViT of the
    seed's initialization; taken from the first run of the seed that carries it)."""
    group = {}
    for name in measures:
        by_seed: dict[int, float] = {}
        for run in runs:
            if baseline_measure(name) in run.measures:
                by_seed.setdefault(run.cfg.train.seed, run.measures[baseline_measure(name)])
        if by_seed:
            group[name] = {"seeds": list(by_seed), "values": list(by_seed.values()),
                           "mean": statistics.mean(by_seed.values())}
    return group


def summary(groups: dict[str, list[Run]]) -> list[dict]:
    """Per group: label, n, seeds, its config values, and per measure the values, mean and std (the page's
    numbers, also as JSON)."""
    rows = []
    for label, runs in groups.items():
        measures = {}
        for name in measures_of(runs):
            values = [r.measures[name] for r in runs if name in r.measures]
            mean, std = spread(values)
            measures[name] = {"values": values, "seeds": [r.cfg.train.seed for r in runs if name in r.measures],
                              "mean": mean, "std": std, "n": len(values)}
        rows.append({"group": label, "n": len(runs), "seeds": [r.cfg.train.seed for r in runs],
                     "runs": [str(r.run_dir) for r in runs], "config": flatten(runs[0].cfg.to_dict()),
                     "collapsed": {r.cfg.train.seed: r.collapsed for r in runs if r.collapsed},
                     "never_started": {r.cfg.train.seed: r.never_started for r in runs if r.never_started},
                     "budget": run_budget(runs[0]), "measures": measures})
    return rows


def plot_groups(rows: list[dict], measures: list[str], path: Path, title: str,
                baselines: dict[str, dict[str, dict]]) -> Path:
    """Each group's runs (dots) and mean +- std (bar), a panel per measure, and its baseline under the same protocol
    (``baselines``: group -> its :func:`baseline_group`; raw pixels, fine-tuning from scratch): a vertical line where
    every group has the same, else a mark on each group's own line."""
    columns = 2 if len(measures) in (2, 4) else 3
    fig, axes = panel_grid(len(measures), columns, panel_size=(4.2, 0.45 * len(rows) + 1.4))
    for index, (ax, measure) in enumerate(zip(axes, measures)):
        for y, row in enumerate(rows):
            m = row["measures"].get(measure)
            if m is None:
                continue
            ax.errorbar(m["mean"], y, xerr=m["std"] or 0, fmt="o", color="C0", capsize=4)
            ax.scatter(m["values"], [y] * len(m["values"]), color="C0", alpha=0.35, s=14)
        base = {y: baselines[r["group"]][measure]["mean"] for y, r in enumerate(rows)
                if measure in baselines[r["group"]]}
        if len(set(base.values())) == 1:
            ax.axvline(next(iter(base.values())), color="gray", linestyle="-.", label="baseline, same protocol")
        elif base:
            ax.scatter(list(base.values()), list(base), marker="|", s=300, color="gray",
                       label="baseline, same protocol (the row's encoder)")
        ax.set_yticks(range(len(rows)), [r["group"] for r in rows] if index % columns == 0 else [], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(header(measure), fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    labelled = [ax for ax in axes if ax.get_legend_handles_labels()[1]]
    if labelled:
        legend_below(fig, labelled[0], columns=2)
    fig.text(0.01, 0.01, "mean ± std over seeds, dots: runs", fontsize=7, color="gray")
    return save_figure(fig, path, title)


def figure_measures(measures: list[str]) -> list[str]:
    """The measures the comparison figure draws: those a claim is judged on, in percent (the accuracies; the kNN
    alone where there is no other), with the probe at its chosen lr in place of the probe at the fixed lr."""
    accuracies = [m for m in measures if describe(m).judged and describe(m).unit == "%"]
    return [m for m in accuracies if not (m == "linear" and CHOSEN_LR in accuracies)] or measures[:1]


def curve_slices(rows: list[dict], keys: tuple[str, ...]) -> dict[str, list[dict]]:
    """For each key, the groups that sweep it: those of the most common method whose other keys take their most
    common value (paper 003's ratio rows at the common unit, its unit rows at the common ratio), by the key's value."""
    fixed = ("method", *keys)
    common = {k: Counter(json.dumps(r["config"].get(k)) for r in rows).most_common(1)[0][0] for k in fixed}
    slices = {}
    for key in keys:
        members = [r for r in rows if all(json.dumps(r["config"].get(k)) == common[k] for k in fixed if k != key)]
        members = [r for r in members if isinstance(r["config"].get(key), (int, float))]
        if len({r["config"][key] for r in members}) > 1:
            slices[key] = sorted(members, key=lambda r: r["config"][key])
    return slices


def plot_curves(rows: list[dict], keys: tuple[str, ...], measures: list[str], path: Path, title: str) -> Path | None:
    """The papers' figure layout: each measure (a column) against each swept key (a row of panels), mean +- std
    over seeds; the raw-pixel value of a protocol as a dotted line."""
    slices = curve_slices(rows, keys)
    if not slices:
        return None
    fig, axes = panel_grid(len(slices) * len(measures), columns=len(measures))
    for i, (key, members) in enumerate(slices.items()):
        for j, measure in enumerate(measures):
            ax = axes[i * len(measures) + j]
            points = [(r["config"][key], r["measures"][measure]) for r in members if measure in r["measures"]]
            if points:
                ax.errorbar([x for x, _ in points], [m["mean"] for _, m in points],
                            yerr=[m["std"] or 0 for _, m in points], marker="o", capsize=3, label="mean ± std")
            pixels = [r["measures"][baseline_measure(measure)]["mean"] for r in members
                      if baseline_measure(measure) in r["measures"]]
            if pixels:
                ax.axhline(statistics.mean(pixels), color="gray", linestyle=":", label="raw pixels")
            values = [r["config"][key] for r in members]
            if min(values) > 0 and max(values) / min(values) > 20:
                ax.set_xscale("log")
            ax.set_xlabel(key)
            ax.set_ylabel(header(measure))
            ax.ticklabel_format(axis="y", useOffset=False)  # values as they are, not as offsets of 1e-5
            ax.grid(alpha=0.3)
    legend_below(fig, axes[0])
    return save_figure(fig, path, title)


def plot_along(rows: list[dict], path: Path, title: str) -> Path | None:
    """The linear probe of each group along training (``linear_along @ epoch`` measures), mean +- std."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn = False
    for row in rows:
        points = sorted((int(name.rsplit(" ", 1)[1]), m) for name, m in row["measures"].items()
                        if name.startswith("linear_along @ "))
        if points:
            ax.errorbar([e for e, _ in points], [m["mean"] for _, m in points], yerr=[m["std"] or 0 for _, m in points],
                        marker="o", capsize=3, label=row["group"])
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("pretraining epoch")
    ax.set_ylabel("linear probe top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path, title)


def linear_protocol(run_dir: Path) -> str | None:
    """How a run's linear probe was trained, from its ``eval_linear.json`` (None without one)."""
    path = run_dir / eval_name("linear")
    if not path.is_file():
        return None
    p = json.loads(path.read_text())
    return (f"{p['optimizer'].upper()}, lr {p['lr']:g} (batch {p['batch_size']}), {p['epochs']} epochs, "
            f"{p['train_images']} / {p['test_images']} images, {p['features']}")


def run_budget(run: Run) -> dict:
    """What a run trained on, from its results (older runs lack the peak lr and the images seen: derived as they
    trained, the lr then counting masks but not crops)."""
    r, o = run.results, run.cfg.optim
    images, per_image, steps = r.get("effective_batch") or 0, r.get("samples_per_image", 1), r.get("steps") or 0
    return {"steps": steps, "images_per_step": images, "samples_per_image": per_image,
            "samples": r.get("samples", steps * images * per_image),
            "images_seen": r.get("images_seen", steps * images),
            "peak_lr": r.get("peak_lr", o.base_lr * images * r.get("views_per_image", 1) / 256)}


def budget_key(budget: dict) -> tuple:
    """What two rows must share to be compared: optimizer steps, samples, peak lr."""
    return budget["steps"], budget["samples"], round(budget["peak_lr"], 12)


def budget_table(rows: list[dict]) -> list[str]:
    """Per group: steps, images and samples per step, samples, distinct images seen, peak lr; and whether the
    groups train equal budgets."""
    head = ("group", "steps", "images x samples per image", "(view, mask) samples", "images seen", "peak lr")
    cells = [(row["group"], b["steps"], f"{b['images_per_step']} x {b['samples_per_image']}", b["samples"],
              b["images_seen"], f"{b['peak_lr']:.3g}") for row in rows for b in [row["budget"]]]
    keys = {budget_key(row["budget"]) for row in rows}
    line = ("Equal budget: every group trains the same optimizer steps on the same (view, mask) samples at the same "
            "peak lr (a method with N samples per image takes 1/N of the images per step)." if len(keys) == 1 else
            "The budgets differ (steps, samples or peak lr): compare only the groups whose rows above are equal, "
            "or read the difference as what is measured.")
    return [*table(head, cells), "", line]


def budget_lines(runs: list[Run]) -> list[str]:
    """The data and the protocols, once where every run shares them."""
    facts = {
        "dataset": {f"{r.cfg.data.dataset}, {r.cfg.data.image_size} px" for r in runs},
        "kNN": {f"k={r.cfg.eval.knn_k}, T={r.cfg.eval.knn_temperature:g}, bank {r.cfg.eval.knn_bank_limit or 'all'}, "
                f"queries {r.cfg.eval.knn_query_limit or 'all'} ([CLS], cosine)" for r in runs},
    }
    probes = {p for p in (linear_protocol(r.run_dir) for r in runs) if p is not None}
    if probes:
        facts["linear probe"] = probes
    return [f"- {name}: {', '.join(map(str, sorted(values, key=str)))}" + ("" if len(values) == 1 else " (differs)")
            for name, values in facts.items()]


def paper_effect(claim: Claim, reference: dict[str, dict[str, float | str]] | None) -> float | None:
    """The paper's own difference between a claim's rows, on the first measure it prints a number for in both."""
    a, b = (reference or {}).get(claim.better, {}), (reference or {}).get(claim.worse, {})
    for measure, value in a.items():
        other = b.get(measure)
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            return round(value - other, 6)
    return None


def write_comparison(paths: list[str | Path], out: str | Path, title: str = "Comparison of runs",
                     reference: dict[str, dict[str, float | str]] | None = None, reference_label: str = "paper",
                     labels: dict[Path, str] | None = None, notes: list[str] | None = None,
                     mce_baseline: str | None = None, curve_keys: tuple[str, ...] = (),
                     claims: tuple[Claim, ...] = (), claims_of: str = "the paper's") -> dict:
    """``mimae report RUN... --out DIR``: ``DIR/report.md``, ``DIR/report.html``, ``DIR/comparison.json`` and the
    figures. ``reference``: group label -> measure -> a number shown in its own column, labelled ``reference_label``
    (never mixed into the measured means); ``labels``: run folder -> its group's label; ``notes``: paragraphs
    under the table; ``mce_baseline``: the group whose corruption errors the mCE divides by; ``curve_keys``: config
    keys the rows sweep, drawn on the x-axis; ``claims``: "A beats B", each checked per measure
    (:mod:`mimae.report.claims`), whose they are in ``claims_of`` (the paper's, or the project's own hypotheses)."""
    out = Path(out)
    runs = [load_run(p) for p in run_folders(paths)]
    if not runs:
        raise FileNotFoundError("no runs to compare")
    groups = group_runs(runs, {Path(k).resolve(): v for k, v in (labels or {}).items()})
    if mce_baseline and any(r.corruption_errors for r in runs):
        add_mce(groups, mce_baseline)
    rows = summary(groups)
    every = measures_of(runs)
    measures = [m for m in every if m not in {baseline_measure(n) for n in every}]
    flagged = any(row["collapsed"] for row in rows)  # a column of collapse flags where there is one
    head = ("runs", "n", *map(header, measures), *(["collapsed"] if flagged else []))
    cells = [(row["group"], row["n"], *(cell(row["measures"][m]["values"], describe(m).unit, row["n"])
                                         if m in row["measures"] else "" for m in measures),
              *(["; ".join(f"seed {k}: {why}" for k, why in row["collapsed"].items())] if flagged else []))
             for row in rows]
    encoders = by_encoder(runs)
    baselines = {encoder: baseline_group(members, measures) for encoder, members in encoders.items()}
    baseline_of = {label: baselines[members[0].cfg.model.encoder()] for label, members in groups.items()}
    if any(baseline_measure(m) in every for m in measures):
        cells += [(*baseline_row(members, measures, baseline_label(encoder, list(encoders))),
                   *([""] if flagged else [])) for encoder, members in encoders.items()]
    if reference:
        ref_measures = list(dict.fromkeys(m for numbers in reference.values() for m in numbers))
        head += tuple(f"{reference_label}: {m}" for m in ref_measures)
        cells = [(*c, *(f"{reference.get(c[0], {}).get(m, '')}" for m in ref_measures)) for c in cells]
    figures_dir = out / "figures"
    figures = [plot_groups(rows, figure_measures(measures), figures_dir / "comparison.png", title, baseline_of),
               plot_curves(rows, curve_keys, [m for m in measures if not m.startswith("linear_along")],
                           figures_dir / "curves.png", title),
               plot_along(rows, figures_dir / "along.png", title)]
    drawn = [f for f in figures if f is not None]
    by_group = {row["group"]: row["measures"] for row in rows}
    collapsed = {row["group"] for row in rows if row["collapsed"]}
    untested = {row["group"] for row in rows if row["never_started"]}
    budgets = {row["group"]: budget_key(row["budget"]) for row in rows}
    checked = [record for claim in claims
               for record in check(claim, by_group, measures, collapsed, paper_effect(claim, reference),
                                   budgets.get(claim.better) != budgets.get(claim.worse), untested)]
    claims_figure = plot_claims(checked, figures_dir / "claims.png", f"{title}: claims, paired by seed")
    same = (f"the same {BACKBONES[str(dict(next(iter(encoders)))['backbone'])]}" if len(encoders) == 1
            else "the row's own encoder")
    against = [record for row in rows
               for record in check(Claim(f"{row['group']} beats {BASELINE}", row["group"], BASELINE),
                                   {**by_group, BASELINE: baseline_of[row["group"]]}, measures, collapsed,
                                   never_started=untested)]
    lower = [header(m) for m in measures if not describe(m).higher_is_better]
    run_notes = [f"- {label}, seed {run.cfg.train.seed}: {note}." for label, members in groups.items()
                 for run in members for note in run.results.get("notes", [])]
    text = "\n".join([
        f"# {title}", "", f"{count(len(runs), 'run')} in {count(len(groups), 'group')}; each cell is mean ± sample "
        "standard deviation over the group's seeds (n runs), in the unit of its column (accuracies: top-1 %)"
        + (f"; lower is better for {', '.join(lower)}" if lower else "") + ".", "",
        *table(head, cells), "", *(f"{note}\n" for note in notes or []),
        *(["What runs said of themselves when they ended (their results.json's notes):", "", *run_notes, ""]
          if run_notes else []),
        *([f"The mCE divides each run's error under each corruption (summed over severities) by the mean error of "
           f"the {mce_baseline!r} runs, as ImageNet-C's mCE does by AlexNet's: that row is 100 up to its seed "
           "spread.\n"] if "mce" in measures else []),
        *([f"## {claims_of.capitalize()} claims, measured", "", f"A is the row {claims_of} claim says is better, B "
           "the other. " + RULE + " The paper's effect is its own difference between the two rows, in its own "
           "protocol.", "", COLLAPSE_RULE + (f" {NEVER_STARTED_RULE}" if untested else ""), "",
           *table(*claim_rows(checked, f"claim ({claims_of})")), "",
           *([f"![claims]({claims_figure.relative_to(out)})", ""] if claims_figure else [])]
          if checked else []),
        *([f"## Against {BASELINE}, paired by seed", "", "Each row against the baseline under the same protocol at "
           f"the same seed (the raw pixels for kNN and the linear probe, {same} fine-tuned from its initialization "
           "for fine-tuning): A is the row, B the baseline, d > 0 where the row is better. The same "
           "rule: holds if d > 2 se, does not hold if d < -2 se, within noise between; no verdict on a collapsed "
           "run, on one whose MI terms never started, or below 2 seeds.", "",
           *table(*claim_rows(against, "row against the baseline")), ""]
          if against else []),
        "## Budget and protocol", "", *budget_table(rows), "", *budget_lines(runs), "",
        *(f"![{f.stem}]({f.relative_to(out)})\n" for f in drawn), "## Runs", "",
        *table(("group", "seed", "run folder"), [(row["group"], seed, f"`{run}`") for row in rows
                                                 for seed, run in zip(row["seeds"], row["runs"])]), ""])
    md, page = write_page(text, out, title)
    data = out / "comparison.json"
    data.write_text(json.dumps({"title": title, "groups": rows, "reference": reference,
                                "reference_label": reference_label, "claims": checked,
                                "against_baseline": against}, indent=1) + "\n")
    return {"markdown": md, "html": page, "json": data, "figure": figures[0], "figures": figures,
            "claims_figure": claims_figure, "groups": rows,
            "claims": checked, "against_baseline": against}
