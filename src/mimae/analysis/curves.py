"""Training curves of one or more runs from their ``metrics.jsonl`` (paper 000, Fig. 3).

One panel per logged loss term (whatever the objective logs: ``rec``, MI-MAE's ``max_mi`` / ``min_mi`` /
``approx`` / ``club``, U-MAE's terms...), plus the learning rate and the kNN accuracy. The reconstruction panel
of a run with MI-MAE's gate draws its eps_l line (from the run's config, 0.5 by default) and the step at which the
gate opened; the kNN panel draws the kNN of the raw pixels where the run measured it. A step logged more than once
(a run resumed from an older checkpoint of a version that kept the lines) is drawn once, with its last value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mimae.plotting import legend_below, panel_grid, save_figure, write_json
from mimae.run_folder import CONFIG_NAME, LOG_NAME

# bookkeeping, or markers (infonce_chance: a line on L_max's panel)
NOT_CURVES = {"step", "epoch", "images_per_s", "gate", "gate_step", "skipped_steps", "infonce_chance"}
DEFAULT_EPS_L = 0.5
TITLES = {"loss": "total loss", "rec": "reconstruction loss L_rec", "max_mi": "L_max (InfoNCE)",
          "min_mi": "L_min (CLUB)", "approx": "L_approx (q_theta)", "lr": "learning rate", "knn": "kNN accuracy (%)",
          "grad_norm": "gradient norm"}


YLABELS = {"knn": "top-1 accuracy (%)", "lr": "learning rate"}


def last_per_step(records: list[dict]) -> list[dict]:
    """The last record of each step, in step order."""
    return sorted({r["step"]: r for r in records}.values(), key=lambda r: r["step"])


def read_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(training lines, kNN lines) of a run's metrics.jsonl, one per step, in step order."""
    lines = [json.loads(text) for text in (Path(run_dir) / LOG_NAME).read_text().splitlines() if text.strip()]
    return last_per_step([r for r in lines if "loss" in r]), [r for r in lines if "knn" in r]


def pixel_baseline(run_dir: str | Path) -> float | None:
    """The run's kNN accuracy of the raw pixels (same bank and queries as its kNN lines), if it measured it."""
    lines = (Path(run_dir) / LOG_NAME).read_text().splitlines()
    return next((json.loads(t)["knn_pixels"] for t in reversed(lines) if '"knn_pixels"' in t), None)


def run_eps_l(run_dir: str | Path, train: list[dict]) -> float | None:
    """The gate threshold ``mimae.eps_l`` of a run that logs a gate (from its config.yaml, else the default 0.5);
    None for a run without one."""
    if not any("gate" in r for r in train):
        return None
    path = Path(run_dir) / CONFIG_NAME
    config = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return float((config.get("mimae") or {}).get("eps_l", DEFAULT_EPS_L))


def gate_opened_at(train: list[dict]) -> int | None:
    """The step at which the gate opened: the logged ``gate_step`` once it is set (>= 0), else the first logged step
    whose mean ``gate`` is above 0; None if it never opened."""
    opened = next((r for r in train if r.get("gate", 0) > 0), None)
    if opened is None:
        return None
    return int(train[-1]["gate_step"]) if train[-1].get("gate_step", -1) >= 0 else opened["step"]


def curve_keys(runs: dict[str, list[dict]]) -> list[str]:
    """Terms logged by any run, ``rec`` and ``loss`` first and the learning rate last; a term equal to an earlier
    one in every line (MAE's ``loss`` and ``rec``, MI-MAE's ``club`` and ``min_mi``) is drawn once."""
    keys: list[str] = []
    for train in runs.values():
        for record in train:
            for key, value in record.items():
                if key not in NOT_CURVES and key not in keys and isinstance(value, (int, float)):
                    keys.append(key)
    order = ["rec", "loss"]
    keys.sort(key=lambda k: (k == "lr", order.index(k) if k in order else len(order)))
    records = [r for train in runs.values() for r in train]
    return [key for i, key in enumerate(keys)
            if not any(all(r.get(key) == r.get(earlier) for r in records) for earlier in keys[:i])]


def run_curves(run_dirs: list[str | Path], output_dir: str | Path) -> dict:
    """``mimae analyze curves``: curves.png and curves.json (per run: the gate step, eps_l, the final values)."""
    runs, evals = {}, {}
    summary: list[dict[str, Any]] = []
    for run_dir in map(Path, run_dirs):
        train, knn = read_metrics(run_dir)
        runs[run_dir.name], evals[run_dir.name] = train, knn
        summary.append({"run": str(run_dir.resolve()), "eps_l": run_eps_l(run_dir, train),
                        "knn_pixels": pixel_baseline(run_dir), "gate_opened_at_step": gate_opened_at(train),
                        "final": train[-1] if train else None, "knn": [{"step": r["step"], "knn": r["knn"]}
                                                                        for r in knn]})
    keys = curve_keys(runs) + (["knn"] if any(evals.values()) else [])
    fig, axes = panel_grid(len(keys), columns=3)
    for index, (name, train) in enumerate(runs.items()):
        color, info = f"C{index}", summary[index]
        for ax, key in zip(axes, keys):
            points = [r for r in (evals[name] if key == "knn" else train) if key in r]
            ax.plot([r["step"] for r in points], [r[key] for r in points], color=color, label=name,
                    marker="o" if key == "knn" else None)
            if key == "rec" and info["gate_opened_at_step"] is not None:
                ax.axvline(info["gate_opened_at_step"], color=color, linestyle=":",
                           label=f"{name}: gate opens (step {info['gate_opened_at_step']})")
            chance = next((r["infonce_chance"] for r in reversed(train) if "infonce_chance" in r), None)
            if key == "max_mi" and chance is not None:
                ax.axhline(chance, color=color, linestyle="--", label=f"{name}: L_max at chance ({chance:.2f})")
    for ax, key in zip(axes, keys):
        if key == "rec":
            for eps in sorted({s["eps_l"] for s in summary if s["eps_l"] is not None}):
                ax.axhline(eps, color="gray", linestyle="--", label=f"eps_l = {eps:g}")
        if key == "knn":
            for pixels in sorted({s["knn_pixels"] for s in summary if s["knn_pixels"] is not None}):
                ax.axhline(pixels, color="gray", linestyle="-.", label=f"raw pixels: {pixels:.1f}%")
            ax.legend(fontsize=7, loc="best", frameon=False)
        ax.set_title(TITLES.get(key, key), fontsize=9)
        ax.set_xlabel("optimizer step")
        if key in YLABELS or key not in TITLES:
            ax.set_ylabel(YLABELS.get(key, key))
        ax.grid(alpha=0.3)
    one_run = len(runs) == 1
    if not one_run or len(axes[0].get_legend_handles_labels()[1]) > 1:  # more than the one run's own line
        legend_below(fig, axes[0], columns=3)
    title = f"Training curves of {next(iter(runs))}" if one_run else "Training curves"
    figure = save_figure(fig, Path(output_dir) / "curves.png", title)
    data = write_json({"curves": keys, "runs": summary}, Path(output_dir) / "curves.json")
    return {"figures": [figure], "json": data, "runs": summary}
