"""The comparison of many runs: ``mimae report RUN... --out DIR`` (or a sweep's folder) as one page.

Runs that differ only in ``train.seed`` form one group; a group's row holds n, the seeds, and the mean +- sample
standard deviation over its seeds of every accuracy the runs measured (the kNN at the end of pretraining, of the raw
pixels on the same bank and queries, and each ``eval_*.json``). The page states the budget and the protocol, draws
the accuracies with their spread, and may carry reference numbers (a paper's), always in their own labelled column.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from mimae.config import Config, flatten
from mimae.plotting import plt, save_figure
from mimae.report.page import table, write_page
from mimae.runs import read

NOT_A_DIFFERENCE = ("train.seed", "data.data_dir", "train.device", "train.threads", "lowshot.subset_file")
SWEEP_FILE = "sweep.json"  # a sweep folder's list of its runs (written by mimae.experiments.sweep)


@dataclass
class Run:
    run_dir: Path
    cfg: Config
    results: dict
    accuracies: dict[str, float] = field(default_factory=dict)  # measure name -> top-1 %


def load_run(run_dir: Path) -> Run:
    """A finished run's config, results and accuracies (kNN final and pixels, then each evaluation file)."""
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        raise FileNotFoundError(f"{run_dir} holds no finished run (no results.json)")
    results = json.loads(results_file.read_text())
    accuracies = {key: results[key] for key in ("knn_final", "knn_pixels") if key in results}
    for path in sorted(run_dir.glob("eval_*.json")):
        result = json.loads(path.read_text())
        name = path.stem.removeprefix("eval_")  # eval_knn_full.json -> knn_full
        if "accuracy" in result:
            accuracies[name] = result["accuracy"]
        if "accuracy" in result.get("pixels", {}):
            accuracies[f"{name} (pixels)"] = result["pixels"]["accuracy"]
    return Run(run_dir.resolve(), read(run_dir).cfg, results, accuracies)


def run_folders(paths: list[str | Path]) -> list[Path]:
    """Run folders from run folders and sweep folders (each point of ``sweep.json``)."""
    folders = []
    for path in map(Path, paths):
        sweep = path / SWEEP_FILE
        if sweep.is_file():
            folders += [Path(p["run_dir"]) for p in json.loads(sweep.read_text())["points"]]
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


def cell(values: list[float]) -> str:
    if not values:
        return ""
    mean, std = spread(values)
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def measures_of(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += [n for n in run.accuracies if n not in names]
    return names


def pixel_measure(measure: str) -> str:
    """The name of the same protocol on the raw pixels."""
    return "knn_pixels" if measure == "knn_final" else f"{measure} (pixels)"


def baseline_row(runs: list[Run], measures: list[str]) -> tuple:
    """The raw-pixel row: each protocol's accuracy on the pixels (the same bank and queries as the runs')."""
    cells = []
    for m in measures:
        values = [r.accuracies[pixel_measure(m)] for r in runs if pixel_measure(m) in r.accuracies]
        cells.append(cell(values) if values else "")
    return ("raw pixels (baseline, same protocol)", len(runs), *cells)


def summary(groups: dict[str, list[Run]]) -> list[dict]:
    """Per group: label, n, seeds, and per measure the values, mean and std (the page's numbers, also as JSON)."""
    rows = []
    for label, runs in groups.items():
        measures = {}
        for name in measures_of(runs):
            values = [r.accuracies[name] for r in runs if name in r.accuracies]
            mean, std = spread(values)
            measures[name] = {"values": values, "mean": mean, "std": std, "n": len(values)}
        rows.append({"group": label, "n": len(runs), "seeds": [r.cfg.train.seed for r in runs],
                     "runs": [str(r.run_dir) for r in runs], "measures": measures})
    return rows


def plot_groups(rows: list[dict], measure: str, path: Path, title: str) -> Path:
    """Each group's runs (dots) and mean +- std (bar) for one measure."""
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(rows) + 1.6))
    for y, row in enumerate(rows):
        m = row["measures"].get(measure)
        if m is None:
            continue
        ax.errorbar(m["mean"], y, xerr=m["std"] or 0, fmt="o", color="C0", capsize=4)
        ax.scatter(m["values"], [y] * len(m["values"]), color="C0", alpha=0.35, s=14)
    pixels = [r["measures"]["knn_pixels"]["mean"] for r in rows if "knn_pixels" in r["measures"]]
    if measure == "knn_final" and pixels:
        ax.axvline(statistics.mean(pixels), color="gray", linestyle="-.", label="raw pixels")
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.set_yticks(range(len(rows)), [r["group"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 accuracy (%): mean ± std over seeds, dots: runs")
    ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, path, title)


MEASURE_NAMES = {"knn_final": "kNN, end of pretraining", "knn_pixels": "kNN, raw pixels", "knn": "kNN (eval)",
                 "knn_full": "kNN, full bank", "knn_full (pixels)": "kNN, full bank, raw pixels",
                 "knn (pixels)": "kNN (eval), raw pixels", "linear": "linear probe", "lowshot": "1% fine-tune"}


def budget_lines(runs: list[Run]) -> list[str]:
    """The budget and protocol, once where every run shares it."""
    facts = {
        "steps": {r.results.get("steps") for r in runs},
        "images per step": {r.results.get("effective_batch") for r in runs},
        "(image, mask) samples": {(r.results.get("steps") or 0) * (r.results.get("effective_batch") or 0)
                                  for r in runs},
        "dataset": {f"{r.cfg.data.dataset}, {r.cfg.data.image_size} px" for r in runs},
        "kNN": {f"k={r.cfg.eval.knn_k}, T={r.cfg.eval.knn_temperature:g}, bank {r.cfg.eval.knn_bank_limit or 'all'}, "
                f"queries {r.cfg.eval.knn_query_limit or 'all'} ([CLS], cosine)" for r in runs},
    }
    return [f"- {name}: {', '.join(map(str, sorted(values, key=str)))}" + ("" if len(values) == 1 else " (differs)")
            for name, values in facts.items()]


def write_comparison(paths: list[str | Path], out: str | Path, title: str = "Comparison of runs",
                     reference: dict[str, dict[str, float | str]] | None = None, reference_label: str = "paper",
                     labels: dict[Path, str] | None = None, notes: list[str] | None = None) -> dict:
    """``mimae report RUN... --out DIR``: ``DIR/report.md``, ``DIR/report.html``, ``DIR/comparison.json`` and the
    figure. ``reference``: group label -> measure -> a number shown in its own column, labelled ``reference_label``
    (never mixed into the measured means); ``labels``: run folder -> its group's label; ``notes``: paragraphs
    under the table."""
    out = Path(out)
    runs = [load_run(p) for p in run_folders(paths)]
    if not runs:
        raise FileNotFoundError("no runs to compare")
    groups = group_runs(runs, {Path(k).resolve(): v for k, v in (labels or {}).items()})
    rows = summary(groups)
    every = measures_of(runs)
    measures = [m for m in every if m not in {pixel_measure(n) for n in every}]
    header = ("runs", "n", *(f"{MEASURE_NAMES.get(m, m)} (%)" for m in measures))
    cells = [(row["group"], row["n"], *(cell(row["measures"][m]["values"]) if m in row["measures"] else ""
                                         for m in measures)) for row in rows]
    if any(pixel_measure(m) in every for m in measures):
        cells.append(baseline_row(runs, measures))
    if reference:
        ref_measures = list(dict.fromkeys(m for numbers in reference.values() for m in numbers))
        header += tuple(f"{reference_label}: {m}" for m in ref_measures)
        cells = [(*c, *(f"{reference.get(c[0], {}).get(m, '')}" for m in ref_measures)) for c in cells]
    figures = out / "figures"
    figure = plot_groups(rows, "knn_final" if "knn_final" in measures else measures[0], figures / "comparison.png",
                         title)
    text = "\n".join([
        f"# {title}", "", f"{len(runs)} runs in {len(groups)} groups; each cell is mean ± sample standard deviation "
        "over the group's seeds (n runs), top-1 accuracy in percent.", "",
        *table(header, cells), "", *(f"{note}\n" for note in notes or []), "## Budget and protocol", "",
        *budget_lines(runs), "",
        f"![Accuracy per group]({figure.relative_to(out)})", "", "## Runs", "",
        *table(("group", "seed", "run folder"), [(row["group"], seed, f"`{run}`") for row in rows
                                                 for seed, run in zip(row["seeds"], row["runs"])]), ""])
    md, page = write_page(text, out, title)
    data = out / "comparison.json"
    data.write_text(json.dumps({"title": title, "groups": rows, "reference": reference,
                                "reference_label": reference_label}, indent=1) + "\n")
    return {"markdown": md, "html": page, "json": data, "figure": figure, "groups": rows}
