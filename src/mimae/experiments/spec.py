"""Named experiments: a table or figure of a paper as data (its rows, the scales it runs at, the paper's numbers),
run as a sweep of labelled rows x seeds and reported on one comparison page.

``mimae experiment run NAME --scale smoke|cpu|paper`` trains every row at every seed into
``ROOT/NAME/SCALE/<row>,seed=<k>`` (resumable: finished runs are skipped), runs the scale's evaluations and writes
``ROOT/NAME/SCALE/report.md`` / ``report.html``: the rows in the paper's order, mean +- std and n over seeds, the
raw-pixel baseline row, and the paper's numbers in their own column, labelled as the paper's and by the paper's
protocol (which at the smoke and cpu scales is not ours: the budget and protocol are stated on the page).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mimae.config import ConfigError
from mimae.experiments.sweep import Point, run_sweep
from mimae.report.comparison import write_comparison

SCALES = ("smoke", "cpu", "paper")

# seconds-long runs: a 2-block ViT on 16 px images, 64 of them, one epoch, a small kNN bank
SMOKE = ("model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.decoder_dim=32",
         "model.decoder_depth=1", "model.decoder_heads=2", "data.image_size=16", "model.patch_size=4",
         "data.train_limit=64", "optim.batch_size=16", "train.epochs=1", "train.precision=fp32",
         "train.knn_at_init=false", "eval.knn_bank_limit=64", "eval.knn_query_limit=32", "mrcl.proj_hidden=32",
         "mrcl.proj_dim=16")


@dataclass(frozen=True)
class Row:
    """One row (or cell) of the table: its label as the paper prints it, the mimae arguments that make it, and the
    paper's numbers for it (measure as the paper names it -> value or a word such as "collapse")."""

    label: str
    args: tuple[str, ...]
    paper: dict[str, float | str] = field(default_factory=dict)
    paper_scale_args: tuple[str, ...] | None = None  # the row's arguments at the paper scale, where they differ


@dataclass(frozen=True)
class Scale:
    """Arguments shared by every row at this scale, the evaluations after each run, the default seeds, and the
    budget in words (stated on the report)."""

    args: tuple[str, ...]
    evaluations: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: str


SMOKE_SCALE = Scale(SMOKE, (), (0,), "seconds: a 2-block ViT, 64 images of 16 px, one epoch")


@dataclass(frozen=True)
class Experiment:
    name: str  # paper000-tab3a
    source: str  # "paper 000, Tab. 3a"
    title: str
    rows: tuple[Row, ...]
    scales: dict[str, Scale]
    paper_protocol: str  # what the paper's numbers measure, e.g. "ImageNet-1K fine-tune top-1, ViT-B"
    notes: tuple[str, ...] = ()
    unavailable: str | None = None  # why it cannot run on these machines, if it cannot

    def points(self, scale: str, seeds: tuple[int, ...] | None = None) -> list[Point]:
        chosen = self.scale(scale)
        def row_args(row: Row) -> tuple[str, ...]:
            return row.paper_scale_args if scale == "paper" and row.paper_scale_args is not None else row.args
        return [Point({}, seed, [*chosen.args, *row_args(row)], row.label) for seed in seeds or chosen.seeds
                for row in self.rows]

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise ConfigError(f"experiment {self.name} has no scale {name!r}; it has {', '.join(self.scales)}")
        return self.scales[name]


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"no experiment {name!r}; `mimae experiment list` shows the {len(EXPERIMENTS)} there are")
    return EXPERIMENTS[name]


def describe(exp: Experiment) -> str:
    """``mimae experiment show``: what it reproduces, its rows with their arguments and the paper's numbers, and
    the scales with their budgets."""
    lines = [f"{exp.name}: {exp.source}: {exp.title}", ""]
    if exp.unavailable:
        lines += [f"not runnable here: {exp.unavailable}", ""]
    lines.append(f"rows (the paper's numbers: {exp.paper_protocol}):")
    for row in exp.rows:
        paper = ", ".join(f"{k} {v}" for k, v in row.paper.items())
        lines.append(f"  {row.label:<24} {' '.join(row.args)}" + (f"   [paper: {paper}]" if paper else ""))
        if row.paper_scale_args is not None:
            lines.append(f"  {'':<24} at the paper scale: {' '.join(row.paper_scale_args)}")
    lines += ["", "scales:"]
    for name, scale in exp.scales.items():
        lines.append(f"  {name}: seeds {' '.join(map(str, scale.seeds))}; evaluations "
                     f"{', '.join(scale.evaluations) or 'the in-training kNN'}; {scale.budget}")
    lines += ["", *exp.notes]
    return "\n".join(lines).rstrip()


def run_experiment(exp: Experiment, scale: str, root: str | Path = "runs/experiments",
                   seeds: tuple[int, ...] | None = None, parallel: int = 1,
                   say: Callable[[str], None] = print) -> dict:
    """Run (or finish) every row x seed at ``scale`` and write the experiment's report; the report's paths."""
    if exp.unavailable:
        raise ConfigError(f"experiment {exp.name} cannot run here: {exp.unavailable}")
    chosen = exp.scale(scale)
    folder = Path(root) / exp.name / scale
    sweep = run_sweep(folder, exp.points(scale, seeds), evaluations=list(chosen.evaluations), parallel=parallel,
                      say=say)
    done = [p for p in sweep["points"] if p["results"] is not None and "failed" not in p]
    if not done:
        raise ConfigError(f"experiment {exp.name}: no run finished; see the sweep.log files in {folder}")
    labels = {Path(p["run_dir"]): p["label"] for p in done}
    notes = [f"Reproduces {exp.source} at the {scale} scale: {chosen.budget}. The paper's column is the paper's "
             f"own number ({exp.paper_protocol}), not a measurement of this library.", *exp.notes]
    return write_comparison([p["run_dir"] for p in done], folder, f"{exp.source}: {exp.title}",
                            reference={row.label: row.paper for row in exp.rows if row.paper},
                            reference_label=f"{exp.source} (paper)", labels=labels, notes=notes)
