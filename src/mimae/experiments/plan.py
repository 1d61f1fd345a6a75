"""What a named experiment still has to run and about how long it will take: ``mimae experiment run NAME --plan``.

Each row x seed at the scale is finished, started (at the step its checkpoint holds) or not started, and needs the
commands that are left (its pretraining, the evaluations it lacks). The minutes come from the runs of the same folder
that finished: a pretraining from their ``train_seconds`` less the time they stood still (:func:`active_seconds`;
the same row's runs at other seeds, else the runs of the
same method, else of any method, each scaled by the FLOPs of a step of the row over those of a step of its own row,
so that a row masking fewer patches or on a larger backbone takes longer (FLOPs leave out a step's fixed costs, the
optimizer's and the augmentation's, so a row cheaper in FLOPs is planned short); a started run only the share of the
steps it has left), an evaluation from the seconds the sweep recorded around it (``sweep_times.json``), or else the
seconds its own JSON gives. Nothing trains; the FLOPs come from one step of each row's objective on blank images.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mimae.budget import step_flops
from mimae.checkpoint import CHECKPOINT_NAME, load_file
from mimae.config import Config, ConfigError
from mimae.experiments.spec import Experiment, points_to_run, runs_folder
from mimae.experiments.sweep import EVALUATIONS, TIMES_NAME, Settings, commands, resolved_config, weightless
from mimae.run_folder import CONFIG_NAME, LOG_NAME, RESULTS_NAME
from mimae.runs import saved_config


@dataclass
class Pace:
    """What the finished runs of a folder took: (train_seconds, steps) by (row, method), and seconds by
    evaluation; ``flops``: a row's FLOPs per step, by which a pace taken from other rows is scaled (None: not
    scaled)."""

    pretraining: dict[tuple[str, str], list[tuple[float, int]]]
    evaluations: dict[str, list[float]]
    flops: Callable[[str], float] | None = None

    def pretrain_seconds(self, row: str, method: str, done_step: int) -> float | None:
        """The seconds a run of ``row`` (``method``) at ``done_step`` has left: the median finished run's of the
        row, else of the method, else of any (each scaled by ``row``'s FLOPs per step over its own row's), pro
        rata."""
        lenders = ({(row, method): self.pretraining[(row, method)]} if self.pretraining.get((row, method))
                   else {key: runs for key, runs in self.pretraining.items() if key[1] == method} or self.pretraining)
        runs = [(seconds * self.cost_ratio(row, lender), steps)
                for (lender, _), finished in lenders.items() for seconds, steps in finished]
        if not runs:
            return None
        seconds, steps = statistics.median(s for s, _ in runs), statistics.median(n for _, n in runs)
        return seconds * max(0.0, 1 - done_step / steps)

    def cost_ratio(self, row: str, lender: str) -> float:
        """A step of ``row`` in steps of ``lender``, by their FLOPs (1 for the row itself, or without FLOPs)."""
        return 1.0 if row == lender or self.flops is None else self.flops(row) / self.flops(lender)

    def evaluation_seconds(self, name: str) -> float | None:
        return statistics.median(self.evaluations[name]) if self.evaluations.get(name) else None


def measured_pace(runs: Path, configs: dict[str, Config] | None = None) -> Pace:
    """The pace of the finished runs under ``runs``; with ``configs`` (row -> its config, for the rows to plan) a
    pace taken from other rows is scaled by FLOPs per step (the finished rows' from their saved configs)."""
    pretraining: dict[tuple[str, str], list[tuple[float, int]]] = {}
    configs = dict(configs or {})
    evaluations: dict[str, list[float]] = {}
    for run_dir in sorted(p for p in runs.glob("*") if (p / RESULTS_NAME).is_file() and (p / CONFIG_NAME).is_file()):
        results = json.loads((run_dir / RESULTS_NAME).read_text())
        if results.get("train_seconds") and results.get("steps"):
            cfg = saved_config(run_dir / CONFIG_NAME)
            pretraining.setdefault((row_of(run_dir.name), cfg.method), []).append(
                (active_seconds(run_dir, results["train_seconds"]), results["steps"]))
            configs.setdefault(row_of(run_dir.name), cfg)
        recorded = json.loads((run_dir / TIMES_NAME).read_text()) if (run_dir / TIMES_NAME).is_file() else {}
        for name, (result_file, _) in EVALUATIONS.items():
            seconds = recorded.get(name)
            if seconds is None and (run_dir / result_file).is_file() and result_file.endswith(".json"):
                own = json.loads((run_dir / result_file).read_text())
                seconds = own.get("seconds", own.get("train_seconds")) if isinstance(own, dict) else None
            if isinstance(seconds, (int, float)):
                evaluations.setdefault(name, []).append(float(seconds))
    flops = functools.cache(lambda row: float(step_flops(configs[row])))
    return Pace(pretraining, evaluations, flops if configs else None)


def active_seconds(run_dir: Path, train_seconds: float, slack: float = 3.0) -> float:
    """``train_seconds`` less the time the run stood still, so that a stopped process or a paused machine does not
    set the pace of other runs: a log window (``metrics.jsonl``) slower a step than ``slack`` x the median window
    counts as ``slack`` x the median. Each window's seconds a step are in proportion to 1 / its ``images_per_s``
    (images a step are fixed in a run). Without logged windows: ``train_seconds``."""
    windows, last_step = [], 0
    path = run_dir / LOG_NAME
    for line in path.read_text().splitlines() if path.is_file() else ():
        record = json.loads(line) if line.strip() else {}
        if record.get("images_per_s") and record.get("step", 0) > last_step:
            windows.append((record["step"] - last_step, 1 / record["images_per_s"]))
            last_step = record["step"]
    if not windows:
        return train_seconds
    cap = slack * statistics.median(per_step for _, per_step in windows)
    logged = sum(steps * per_step for steps, per_step in windows)
    return train_seconds * sum(steps * min(per_step, cap) for steps, per_step in windows) / logged


def row_of(run_name: str) -> str:
    """``small_lambda2_projector,seed=3`` -> ``small_lambda2_projector``: the row whose seed the run is."""
    return run_name.rsplit(",seed=", 1)[0]


def checkpoint_step(run_dir: Path) -> int:
    """The optimizer step a started run resumes from (0 without a checkpoint)."""
    path = run_dir / CHECKPOINT_NAME
    return int(load_file(path)["step"]) if path.is_file() else 0


@dataclass
class PointPlan:
    name: str
    state: str  # finished, started at step k, evaluations left, or not started
    left: dict[str, float | None]  # the commands it still needs, by name: about how long each takes (None: unknown)
    lacking: tuple[str, ...] = ()  # evaluations a finished run without its weights cannot get

    @property
    def seconds(self) -> float:
        """The commands' seconds that are known."""
        return sum(s for s in self.left.values() if s is not None)

    @property
    def unknown(self) -> list[str]:
        """The commands no finished run measured."""
        return [name for name, s in self.left.items() if s is None]


def plan(exp: Experiment, scale: str, root: str | Path, seeds: tuple[int, ...] | None = None,
         rows: Sequence[str] | None = None) -> tuple[list[PointPlan], Path]:
    """Each point's state, the commands it has left and their seconds at the pace of the finished runs; the folder
    the runs train in."""
    if exp.command is not None:
        raise ConfigError(f"experiment {exp.name} runs as one command, not as rows x seeds: --plan has no runs to "
                          f"list (`mimae experiment show {exp.name}` prints the command)")
    runs = runs_folder(exp, scale, root)
    points = points_to_run(exp, scale, runs, seeds, rows)
    pace = measured_pace(runs, {row_of(point.name): resolved_config(point.overrides()) for point in points})
    settings = Settings(evaluations=list(exp.scale(scale).evaluations))
    plans = []
    for point in points:
        run_dir = runs / point.name
        names = [name for name, _ in commands(point, run_dir, settings)]
        if weightless(run_dir):  # restored from an archive: the sweep skips it, as it is
            plans.append(PointPlan(point.name, "finished, no weights", {}, tuple(names)))
            continue
        step = checkpoint_step(run_dir) if "pretrain" in names else 0
        state = ("finished" if not names else f"started: step {step:,}" if step
                 else "evaluations left" if "pretrain" not in names else "not started")
        row, method = row_of(point.name), resolved_config(point.overrides()).method
        plans.append(PointPlan(point.name, state, {
            name: pace.pretrain_seconds(row, method, step) if name == "pretrain" else pace.evaluation_seconds(name)
            for name in names}))
    return plans, runs


def minutes(seconds: float) -> str:
    total = round(seconds / 60)
    return f"{total // 60} h {total % 60:02d} min" if total >= 60 else f"{total} min"


def duration(point: PointPlan) -> str:
    """About how long a point's commands take: "?" where none was measured, "+ ?" where some were not."""
    if point.unknown and len(point.unknown) == len(point.left):
        return "?"
    return minutes(point.seconds) + (" + ?" if point.unknown else "")


def describe_plan(plans: list[PointPlan], runs: Path) -> list[str]:
    """The plan as lines: one per point (its state, minutes, commands left), then the total and what could not be
    estimated."""
    width = max(len(p.name) for p in plans)
    lines = [f"{p.name:<{width}}  {p.state:<20}  {duration(p):>14}  {', '.join(p.left) or '-'}" for p in plans]
    todo = [p for p in plans if p.left]
    unknown = sorted({name for p in todo for name in p.unknown})
    known = any(s is not None for p in todo for s in p.left.values())
    lines.append(f"{len(todo)} of {len(plans)} runs to finish in {runs}"
                 + (f": about {minutes(sum(p.seconds for p in todo))} one at a time, at the pace of the finished runs "
                    "there" if known else "")
                 + (f"; not counted: {', '.join(unknown)} (no finished run measured it)" if unknown and known else "")
                 + ("; no finished run there to measure the pace by" if todo and not known else ""))
    lines += [f"{p.name} lacks {', '.join(p.lacking)}: it finished without its weights (restored from an archive), "
              "so it cannot get them" for p in plans if p.lacking]
    return lines
