"""Named experiments: a table or figure of a paper as data (its rows, the scales it runs at, the paper's numbers),
run as a sweep of labelled rows x seeds and reported on one comparison page.

``mimae experiment run NAME --scale smoke|cpu|paper`` trains every row at every seed into
``ROOT/NAME/SCALE/<row>,seed=<k>`` (resumable: finished runs are skipped), runs the scale's evaluations and writes
``ROOT/NAME/SCALE/report.md`` / ``report.html``: the rows in the paper's order, mean +- std and n over seeds, the
raw-pixel baseline row, and the paper's numbers in their own column, labelled as the paper's and by the paper's
protocol (which at the smoke and cpu scales is not ours: the budget and protocol are stated on the page).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mimae.budget import images_per_micro_batch, peak_lr, sample_epochs
from mimae.config import ConfigError
from mimae.experiments.archive import make_relative
from mimae.experiments.launch import Cluster
from mimae.experiments.sweep import (
    Children,
    Point,
    Runner,
    evaluated_at_seed,
    exit_if_stopped,
    resolved_config,
    run_mimae,
    run_sweep,
    stop_on_signals,
)
from mimae.objectives.base import samples_per_image
from mimae.presets import TINY
from mimae.report.claims import Claim
from mimae.report.comparison import write_comparison
from mimae.report.page import write_page
from mimae.run_folder import RESULTS_NAME, SWEEP_LOG_NAME

SCALES = ("smoke", "cpu", "paper")
NOTES_NAME = "notes.txt"  # a page's own paragraphs (which seeds it holds, on which machines), kept beside it

# seconds-long runs: a 2-block ViT on 16 px images, 64 of them, one epoch, a small kNN bank
SMOKE = (*(f"{key}={value}" for key, value in TINY.items()), "data.train_limit=64", "optim.batch_size=16",
         "train.epochs=1", "train.precision=fp32", "train.knn_at_init=false", "eval.knn_bank_limit=64",
         "eval.knn_query_limit=32", "mrcl.proj_hidden=32", "mrcl.proj_dim=16")


@dataclass(frozen=True)
class Row:
    """One row (or cell) of the table: its label as the paper prints it, the mimae arguments that make it, and the
    paper's numbers for it (measure as the paper names it -> value or a word such as "collapse")."""

    label: str
    args: tuple[str, ...]
    paper: dict[str, float | str] = field(default_factory=dict)
    paper_scale_args: tuple[str, ...] | None = None  # the row's arguments at the paper scale, where they differ
    run: str | None = None  # the name its runs go by in the shared folder: the label of the row (of an experiment
    # training into that folder) whose runs it shares, or a name kept from an earlier label
    differs: str | None = None  # why this row's budget differs from the other rows' (what it measures): checked


@dataclass(frozen=True)
class Scale:
    """Arguments shared by every row at this scale, the evaluations after each run, the default seeds, and the
    budget in words (stated on the report)."""

    args: tuple[str, ...]
    evaluations: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: str
    evaluation_args: dict[str, tuple[str, ...]] = field(default_factory=dict)  # evaluation -> more options
    # evaluations of the initialization (finetune-scratch, lowshot-scratch): the same for every row at a seed, so
    # run once per seed, on the first row's run
    per_seed: tuple[str, ...] = ()


SMOKE_SCALE = Scale(SMOKE, (), (0,), "seconds: a 2-block ViT, 64 images of 16 px, one epoch")


@dataclass(frozen=True)
class Command:
    """An experiment that is one mimae command instead of trained rows (an analysis): its arguments, before the
    scale's (``{out}``: the experiment's folder), the JSON file it writes there, and the function that turns that
    JSON into the page's Markdown (the text under the title)."""

    args: tuple[str, ...]
    result: str
    page: Callable[[dict], str]


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
    curves: tuple[str, ...] = ()  # config keys the rows sweep: the page draws every measure against them
    mce_baseline: str | None = None  # the row whose corruption errors the mCE divides by
    # train into (and share the runs of) this experiment's folder; per scale, as {scale: experiment} (a scale not
    # named: its own folder)
    runs_of: str | dict[str, str] | None = None
    command: Command | None = None
    claims: tuple[Claim, ...] = ()  # the paper's "row A beats row B", checked on the report
    # a page of its own instead of the comparison: (finished run folders, the experiment's folder, title, notes)
    page: Callable[[list[Path], Path, str, list[str]], dict] | None = None

    @property
    def own(self) -> bool:
        """The project's own experiment (source "mimae"), not a paper's table: its claims are its hypotheses."""
        return self.source == "mimae"

    def points(self, scale: str, seeds: tuple[int, ...] | None = None,
               rows: Sequence[str] | None = None) -> list[Point]:
        """Every row x seed at ``scale`` (seed by seed), or only the rows labelled ``rows``; the evaluations of the
        initialization (``Scale.per_seed``) go with the first row that runs of each encoder (a Swin row has its own
        from scratch, not the ViT's)."""
        chosen = self.scale(scale)
        def row_args(row: Row) -> list[str]:
            return [*chosen.args,
                    *(row.paper_scale_args if scale == "paper" and row.paper_scale_args is not None else row.args)]
        running = self.chosen_rows(rows)
        first_of_encoder: dict[tuple, str] = {}
        for row in running if chosen.per_seed else ():
            first_of_encoder.setdefault(resolved_config(row_args(row)).model.encoder(), row.label)
        return [Point({}, seed, row_args(row), row.label, row.run,
                      chosen.per_seed if row.label in first_of_encoder.values() else ())
                for seed in seeds or chosen.seeds for row in running]

    def chosen_rows(self, labels: Sequence[str] | None = None) -> list[Row]:
        """The rows labelled ``labels`` in the table's order (every row when None); an unknown label is an error."""
        if labels is None:
            return list(self.rows)
        known = [row.label for row in self.rows]
        unknown = [label for label in labels if label not in known]
        if unknown or not labels:
            raise ConfigError(f"experiment {self.name} has no row {unknown[0]!r}; its rows: {'; '.join(known)}"
                              if unknown else f"experiment {self.name}: name at least one row to run")
        return [row for row in self.rows if row.label in labels]

    def budgets(self, scale: str) -> list[RowBudget]:
        """Each row's budget at ``scale``, from its resolved config (nothing trains)."""
        points = {p.label: p for p in self.points(scale, (0,))}
        return [row_budget(row.label, tuple(points[row.label].overrides()), row.differs) for row in self.rows]

    def compared_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((claim.better, claim.worse) for claim in self.claims)

    def folder(self, scale: str) -> str:
        """The experiment whose folder the runs at ``scale`` go to: ``runs_of``'s, or its own."""
        shared = self.runs_of.get(scale) if isinstance(self.runs_of, dict) else self.runs_of
        return shared or self.name

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise ConfigError(f"experiment {self.name} has no scale {name!r}; it has {', '.join(self.scales)}")
        return self.scales[name]


@dataclass(frozen=True)
class RowBudget:
    """What fixes a row's budget apart from the number of training images: on the same data, rows with equal
    samples per step, peak lr and epochs of samples train the same steps on the same (view, mask) samples."""

    label: str
    images_per_step: int
    samples_per_image: int
    peak_lr: float
    sample_epochs: float
    data: str
    differs: str | None

    @property
    def samples_per_step(self) -> int:
        return self.images_per_step * self.samples_per_image

    def key(self) -> tuple:
        return self.samples_per_step, round(self.peak_lr, 12), self.sample_epochs, self.data

    def describe(self) -> str:
        return (f"{self.images_per_step} images x {self.samples_per_image} samples = {self.samples_per_step} "
                f"samples per step, peak lr {self.peak_lr:.3g}, {self.sample_epochs:g} epochs of samples, "
                f"{self.data}")


def row_budget(label: str, args: tuple[str, ...], differs: str | None = None) -> RowBudget:
    cfg = resolved_config(args)
    per_image = samples_per_image(cfg)
    images = images_per_micro_batch(cfg, per_image) * cfg.optim.accum_steps
    d = cfg.data
    return RowBudget(label, images, per_image, peak_lr(cfg, images, per_image),
                     sample_epochs(cfg, per_image),
                     f"{d.dataset} at {d.image_size} px" + (f", first {d.train_limit} images" if d.train_limit else ""),
                     differs)


def check_budgets(budgets: list[RowBudget], name: str, pairs: tuple[tuple[str, str], ...] = ()) -> str:
    """Refuse rows whose budgets differ, unless a row declares its difference (``Row.differs``), and any pair of
    rows a claim compares (``pairs``) whose budgets differ; the page's line saying what is equal."""
    by_label = {b.label: b for b in budgets}
    compared = [b for b in budgets if b.differs is None]
    unequal = [(by_label[a], by_label[b]) for a, b in pairs
               if a in by_label and b in by_label and by_label[a].key() != by_label[b].key()]
    if len({b.key() for b in compared}) > 1 or unequal:
        shown = compared if len({b.key() for b in compared}) > 1 else [b for pair in unequal for b in pair]
        lines = "; ".join(f"{b.label}: {b.describe()}" for b in shown)
        raise ConfigError(f"experiment {name}: rows it compares would train unequal budgets (samples per step, "
                          f"peak lr, epochs of samples and data must be equal, or a row must declare why it "
                          f"differs): {lines}")
    declared = [f"{b.label}: {b.differs}" for b in budgets if b.differs is not None]
    if not compared:
        return "Budgets differ by design: " + "; ".join(declared) + "."
    first = compared[0]
    images = ", ".join(f"{b.label} {b.images_per_step} x {b.samples_per_image}" for b in compared)
    line = (f"Equal budget: every row compared trains {first.samples_per_step} (view, mask) samples per step at a "
            f"peak lr of {first.peak_lr:.3g} for {first.sample_epochs:g} epoch(s) of samples on {first.data}, so the "
            f"same optimizer steps; a method with N samples per image takes 1/N of the images per step (images x "
            f"samples per image: {images}).")
    return line + (f" Declared differences: {'; '.join(declared)}." if declared else "")


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"no experiment {name!r}; `mimae experiment list` shows the {len(EXPERIMENTS)} there are")
    return EXPERIMENTS[name]


def effective(args: Sequence[str]) -> list[str]:
    """``args`` as they act: of several ``key=value`` overrides of one key only the last, which wins, in its place
    (``a=1 b=0 a=2`` -> ``b=0 a=2``); other arguments as they are."""
    last = {arg.split("=", 1)[0]: i for i, arg in enumerate(args) if "=" in arg}
    return [arg for i, arg in enumerate(args) if "=" not in arg or last[arg.split("=", 1)[0]] == i]


def describe(exp: Experiment) -> str:
    """``mimae experiment show``: what it reproduces, its rows with their arguments and the paper's numbers, and
    the scales with their budgets."""
    lines = [f"{exp.name}: {exp.source}: {exp.title}", ""]
    if exp.unavailable:
        lines += [f"not runnable here: {exp.unavailable}", ""]
    if exp.command is not None:
        lines.append(f"one command: mimae {' '.join(exp.command.args)} [the scale's arguments] (the paper's numbers: "
                     f"{exp.paper_protocol})")
    else:
        lines.append(f"rows (the paper's numbers: {exp.paper_protocol}):")
    shared = {scale: exp.folder(scale) for scale in exp.scales if exp.folder(scale) != exp.name}
    if shared:
        lines.append(f"  (trains into, and shares the runs of, {', '.join(sorted(set(shared.values())))} at the "
                     f"{', '.join(shared)} scale{'s' if len(shared) > 1 else ''})")
    for row in exp.rows:
        paper = ", ".join(f"{k} {v}" for k, v in row.paper.items())
        lines.append(f"  {row.label:<24} {' '.join(effective(row.args))}" + (f"   [paper: {paper}]" if paper else "")
                     + (f"   (shares the runs named {row.run!r})" if row.run else ""))
        if row.paper_scale_args is not None:
            lines.append(f"  {'':<24} at the paper scale: {' '.join(effective(row.paper_scale_args))}")
    lines += ["", "scales:"]
    runnable = exp.command is None and not exp.unavailable
    for name, scale in exp.scales.items():
        what = (f"arguments {' '.join(scale.args)}" if exp.command is not None else
                f"seeds {' '.join(map(str, scale.seeds))}; evaluations "
                f"{', '.join(scale.evaluations) or 'the in-training kNN'}")
        lines.append(f"  {name}: {what}; {scale.budget}")
        if runnable:
            try:
                lines.append(f"    {check_budgets(exp.budgets(name), exp.name, exp.compared_pairs())}")
            except ConfigError as error:
                lines.append(f"    refused: {error}")
    lines += ["", *exp.notes]
    return "\n".join(lines).rstrip()


def run_experiment(exp: Experiment, scale: str, root: str | Path = "runs/experiments",
                   seeds: tuple[int, ...] | None = None, parallel: int = 1,
                   say: Callable[[str], None] = print, runner: Runner = None, cluster: Cluster | None = None,
                   rows: Sequence[str] | None = None) -> dict:
    """Run (or finish) every row x seed at ``scale`` (or only the rows labelled ``rows``) and write the
    experiment's report; the report's paths. ``runner``: run the commands in this process (``mimae.cli.main``)
    instead of as subprocesses; ``cluster``: submit the unfinished runs as jobs and return at once (empty: no report
    yet; the same call once they are done writes it)."""
    if exp.unavailable:
        raise ConfigError(f"experiment {exp.name} cannot run here: {exp.unavailable}")
    chosen = exp.scale(scale)
    folder = Path(root) / exp.name / scale
    if exp.command is not None:
        return run_command(exp, scale, folder, say, runner)
    equal = check_budgets(exp.budgets(scale), exp.name, exp.compared_pairs())
    runs = runs_folder(exp, scale, root)
    points = points_to_run(exp, scale, runs, seeds, rows)
    sweep = run_sweep(runs, points, evaluations=list(chosen.evaluations), parallel=parallel,
                      say=say, evaluation_args=chosen.evaluation_args, runner=runner, cluster=cluster)
    if any("job" in p for p in sweep["points"]):
        say(f"when the jobs are done, the same command writes the report of {exp.name}")
        return {}
    done = [p for p in sweep["points"] if p["results"] is not None and "failed" not in p]
    if not done:
        raise ConfigError(f"experiment {exp.name}: no run finished; see the sweep.log files in {runs}")
    return write_page_of(exp, scale, {Path(p["run_dir"]): p["label"] for p in done}, folder, [equal])


def runs_folder(exp: Experiment, scale: str, root: str | Path) -> Path:
    """Where the experiment's runs at ``scale`` train: ``ROOT/<its folder>/SCALE`` (a shared one's, see ``runs_of``)."""
    return Path(root) / exp.folder(scale) / scale


def points_to_run(exp: Experiment, scale: str, runs: Path, seeds: tuple[int, ...] | None = None,
                  rows: Sequence[str] | None = None) -> list[Point]:
    """The experiment's points at ``scale`` (``seeds`` and ``rows``: only those), with an evaluation of the
    initialization (the same for every row of an encoder at a seed) left to none where a run of the seed and the
    encoder in ``runs`` has it."""
    def left(point: Point) -> tuple[str, ...]:
        encoder = resolved_config(point.overrides()).model.encoder() if point.evaluations else ()
        return tuple(e for e in point.evaluations if not evaluated_at_seed(runs, e, point.seed, encoder))
    return [replace(p, evaluations=left(p)) for p in exp.points(scale, seeds, rows)]


def intro_of(exp: Experiment, scale: str) -> str:
    """The page's first line: what it reproduces (or, for the project's own experiments, runs) and the budget."""
    what = f"Runs {exp.name}" if exp.own else f"Reproduces {exp.source}"
    return f"{what} at the {scale} scale: {exp.scale(scale).budget}."


def write_page_of(exp: Experiment, scale: str, labels: dict[Path, str], folder: Path,
                  notes: Sequence[str] = ()) -> dict:
    """The experiment's page over finished runs (run folder -> its row's label), with ``notes`` after the intro."""
    intro = intro_of(exp, scale)
    title = f"{exp.source}: {exp.title}"
    if exp.page is not None:
        return exp.page(list(labels), folder, title, [intro, *notes, *exp.notes])
    reference = {row.label: row.paper for row in exp.rows if row.paper}
    missing = [row.label for row in exp.rows if row.label not in set(labels.values())]
    if missing:
        notes = [*notes, f"Rows without a finished run at this scale (not run, or not finished), so neither shown "
                         f"nor judged by a claim: {'; '.join(missing)}."]
    notes = [f"{intro} The paper's column is the paper's own number ({exp.paper_protocol}), not a measurement of "
             "this library." if reference else intro, *notes, *exp.notes]
    return write_comparison(list(labels), folder, title, reference=reference,
                            reference_label=f"{exp.source} (paper)", labels=labels, notes=notes,
                            mce_baseline=exp.mce_baseline, curve_keys=exp.curves, claims=exp.claims,
                            claims_of="the project's" if exp.own else "the paper's")


def page_notes(folder: str | Path) -> list[str]:
    """The paragraphs of ``folder/notes.txt`` (separated by blank lines; a paragraph's lines joined), or none."""
    path = Path(folder) / NOTES_NAME
    blocks = path.read_text().split("\n\n") if path.is_file() else []
    return [" ".join(block.split()) for block in blocks if block.strip()]


def redraw(exp: Experiment, scale: str, runs: str | Path, folder: str | Path, notes: Sequence[str] = ()) -> dict:
    """The page again from the run folders in ``runs`` (an archive's ``runs``, or ``ROOT/NAME/SCALE``), each
    matched to its row by its folder name, with today's report code (budgets, paired verdicts, collapse flags);
    under its intro the paragraphs of ``folder/notes.txt`` (:func:`page_notes`), then ``notes``. An analysis
    experiment's page is redrawn from the JSON its command wrote in ``runs`` (copied to ``folder`` with its figures)."""
    if exp.command is not None:
        return redraw_command_page(exp, scale, Path(runs), Path(folder), [*page_notes(folder), *notes])
    points = exp.points(scale, tuple(range(100)))
    in_table_order = [p for row in exp.rows for p in points if p.label == row.label]  # the page's rows as the table's
    labels = {Path(runs) / p.name: p.label or p.name for p in in_table_order
              if (Path(runs) / p.name / RESULTS_NAME).is_file()}
    if not labels:
        raise ConfigError(f"{runs} holds no finished run of {exp.name}'s rows")
    paths = write_page_of(exp, scale, labels, Path(folder), [*page_notes(folder), *notes])
    make_relative(Path(folder), {f"{Path(runs).resolve()}/": f"{os.path.relpath(runs, folder)}/"})
    return paths


def run_command(exp: Experiment, scale: str, folder: Path, say: Callable[[str], None], runner: Runner = None) -> dict:
    """An analysis experiment: its command (output in ``folder/sweep.log``), then its page."""
    if exp.command is None:
        raise ConfigError(f"experiment {exp.name} trains runs: it has no analysis command")
    folder.mkdir(parents=True, exist_ok=True)
    args = [a.replace("{out}", str(folder)) for a in (*exp.command.args, *exp.scale(scale).args)]
    say(f"{exp.name}: mimae {' '.join(args)}")
    children = Children()
    with stop_on_signals(children):
        code = run_mimae(args, folder / SWEEP_LOG_NAME, runner=runner, children=children)
    exit_if_stopped(children, f"experiment {exp.name}", say)
    if code != 0:
        raise ConfigError(f"experiment {exp.name} failed (exit {code}); see {folder / 'sweep.log'}")
    return write_command_page(exp, scale, folder, page_notes(folder))


def redraw_command_page(exp: Experiment, scale: str, source: Path, folder: Path, notes: Sequence[str]) -> dict:
    """An analysis experiment's page again from the JSON (and figures) its command wrote in ``source``."""
    assert exp.command is not None
    if not (source / exp.command.result).is_file():
        raise ConfigError(f"{source} holds no {exp.command.result}: {exp.name}'s command has not written it there")
    folder.mkdir(parents=True, exist_ok=True)
    if source.resolve() != folder.resolve():
        for path in [source / exp.command.result, *source.glob("*.png")]:
            shutil.copy2(path, folder / path.name)
    return write_command_page(exp, scale, folder, notes)


def write_command_page(exp: Experiment, scale: str, folder: Path, notes: Sequence[str] = ()) -> dict:
    """The page of an analysis experiment from the JSON its command wrote in ``folder``, ``notes`` under its intro."""
    assert exp.command is not None
    title = f"{exp.source}: {exp.title}"
    result = folder / exp.command.result
    text = "\n".join([f"# {title}", "", intro_of(exp, scale), "", *(f"{note}\n" for note in notes),
                      exp.command.page(json.loads(result.read_text())), "",
                      f"The paper's numbers ({exp.paper_protocol}) are the paper's own, not a measurement of this "
                      "library.", "", *(f"{note}\n" for note in exp.notes)])
    md, page = write_page(text, folder, title)
    return {"markdown": md, "html": page, "json": result}
