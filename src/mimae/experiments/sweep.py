"""A sweep: a grid over any config keys x seeds, one pretraining run per point, each followed by the evaluations
asked for; in sequence or as parallel processes, and resumable.

Every point trains into ``ROOT/<point name>`` with ``mimae pretrain --resume auto``: a finished run (its
``results.json`` and every evaluation file present) is not run again, an interrupted one continues from its last
checkpoint (written at least every ``CHECKPOINT_MINUTES``). A point that fails is recorded with the tail of its log
and the others go on. The results of every point, finished before or now, are collected into ``ROOT/sweep.json``.

A SIGTERM or SIGINT to the sweep stops it: each running command gets a SIGTERM (a trainer finishes its step, writes a
checkpoint and stops), no further command starts, and the sweep exits with 128 + the signal; the same command run
again resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mimae.checkpoint import CHECKPOINT_NAME
from mimae.config import Config, ConfigError, load_config, parse_overrides, run_differences
from mimae.eval.suite import PROTOCOLS
from mimae.experiments.launch import Cluster, PointJob, job_state, submit, submitted_jobs
from mimae.report.comparison import SWEEP_FILE
from mimae.report.measures import MASK_MI_FILE, RANK_FILE, RECONSTRUCT_FILE, read_measures
from mimae.run_folder import CONFIG_NAME, RESULTS_NAME, SWEEP_LOG_NAME, eval_name
from mimae.runs import saved_config

# a sweep's pretrainings also write a checkpoint this often (train.save_every_minutes; a point's arguments may set
# another), so that a sweep killed without a signal it can catch (SIGKILL, a lost machine) loses at most this much
CHECKPOINT_MINUTES = 10
TIMES_NAME = "sweep_times.json"  # in a run folder: the seconds each evaluation the sweep ran there took, by name

# evaluation name -> (its result file in the run folder, the mimae arguments that write it; {run}: the run folder):
# every evaluation protocol but "all", the kNN on the full splits, and the analyses a comparison reads
EVALUATIONS = {
    **{name: (eval_name(name), ["eval", name]) for name in PROTOCOLS if name != "all"},
    "knn-full": (eval_name("knn_full"), ["eval", "knn", "--full"]),
    "reconstruct": (RECONSTRUCT_FILE, ["analyze", "reconstruct", "--output-dir", "{run}/analysis_reconstruct",
                                       "--ratios", "0"]),
    "mask-mi": (MASK_MI_FILE, ["analyze", "mask-mi", "--output-dir", "{run}/analysis_mask_mi", "--with-init"]),
    "rank": (RANK_FILE, ["analyze", "rank", "--output-dir", "{run}/analysis_rank", "--with-init"]),
}


def applies(evaluation: str, cfg: Config) -> bool:
    """Whether the evaluation measures a run of this config: mask-mi encodes each view from its visible patches
    alone, which a Swin (SimMIM's encoder, fed mask tokens) does not."""
    return evaluation != "mask-mi" or cfg.model.backbone == "vit"


def evaluation_command(name: str, run_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The mimae arguments of one evaluation of a run (``extra``: more of its options): ``eval`` protocols write
    their JSON with ``--output``, analyses into their folder."""
    result, args = EVALUATIONS[name]
    args = [a.replace("{run}", str(run_dir)) for a in args]
    return [*args, "--checkpoint", str(run_dir), *([] if args[0] == "analyze" else ["--output", str(run_dir / result)]),
            *extra]


@dataclass
class Point:
    """One run of a sweep: its grid values, its seed, and the command-line overrides they make."""

    values: dict[str, Any]
    seed: int
    extra: list[str] = field(default_factory=list)  # arguments before the values: shared ones, a row's own
    label: str | None = None  # the name of a row of a named experiment, instead of its values
    run_label: str | None = None  # the label of another experiment's row whose run folder this point shares
    evaluations: tuple[str, ...] = ()  # evaluations of this point only, after the sweep's

    @property
    def name(self) -> str:
        """``optim.base_lr=0.002,mask.ratio=0.5,seed=0`` (every value that tells the point apart), or for a label
        such as ``(b) L_rec + l_max`` the folder-friendly ``b_L_rec_l_max,seed=0``."""
        label = self.run_label or self.label
        parts = [slug(label)] if label else [f"{k}={format_value(v)}" for k, v in self.values.items()]
        return ",".join([*parts, f"seed={self.seed}"])

    def overrides(self) -> list[str]:
        return [*self.extra, *(f"{k}={format_value(v)}" for k, v in self.values.items()), f"train.seed={self.seed}"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def format_value(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["optim.base_lr=1e-3,2e-3", "mask.ratio=0.5"]`` -> ``{"optim.base_lr": [0.001, 0.002],
    "mask.ratio": [0.5]}``."""
    grid = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or not text:
            raise ConfigError(f"--grid {item!r} is not of the form section.key=value1,value2,...")
        grid[key] = [yaml.safe_load(v) for v in text.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]], seeds: list[int], extra: list[str] | None = None) -> list[Point]:
    """Every combination of the grid's values, for every seed (all points of seed 0 first)."""
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else [{}]
    return [Point(values, seed, list(extra or [])) for seed in seeds for values in combos]


def resolved_config(args: tuple[str, ...] | list[str]) -> Config:
    """The config ``mimae pretrain ARGS`` trains with (defaults < ``--config`` < ``--method`` and overrides)."""
    path, overrides, rest = None, {}, list(args)
    while rest:
        token = rest.pop(0)
        if token in ("--config", "--method", "--epochs"):
            if not rest:
                raise ConfigError(f"{token} needs a value")
            value = rest.pop(0)
            if token == "--config":
                path = value
            else:
                overrides.update(parse_overrides([f"{'method' if token == '--method' else 'train.epochs'}={value}"]))
        else:
            overrides.update(parse_overrides([token]))
    return load_config(path, overrides)


def check_finished_runs(root: Path, points: list[Point], base: list[str]) -> None:
    """Refuse a point whose folder holds a finished run trained with other options than the point's (a run that
    another experiment shares, or a sweep started again with changed options): it would be skipped and reported as
    the point's. A started, unfinished run is checked when it resumes."""
    for point in points:
        run_dir = root / point.name
        if not (run_dir / RESULTS_NAME).is_file() or not (run_dir / CONFIG_NAME).is_file():
            continue
        differ = run_differences(load_config(run_dir / CONFIG_NAME), resolved_config([*base, *point.overrides()]))
        if differ:
            raise ConfigError(f"{run_dir} holds a finished run of other options than {point.name} asks for "
                              f"(trained vs asked): {', '.join(differ)}; give the sweep another folder")


def finished(run_dir: Path, evaluations: list[str]) -> bool:
    return (run_dir / RESULTS_NAME).is_file() and not missing(run_dir, evaluations)


def missing(run_dir: Path, evaluations: list[str], cfg: Config | None = None) -> list[str]:
    """The evaluations that apply to the run (:func:`applies` to ``cfg``, else to its saved config where it has one)
    whose result file its folder lacks."""
    if cfg is None and (run_dir / CONFIG_NAME).is_file():
        cfg = saved_config(run_dir / CONFIG_NAME)
    return [e for e in evaluations if not (run_dir / EVALUATIONS[e][0]).is_file() and (cfg is None or applies(e, cfg))]


def weightless(run_dir: Path) -> bool:
    """A finished run without its weights (restored from an archive, which keeps none): no evaluation can be added
    to it."""
    return (run_dir / RESULTS_NAME).is_file() and not (run_dir / CHECKPOINT_NAME).is_file()


def evaluated_at_seed(root: Path, evaluation: str, seed: int, encoder: tuple) -> bool:
    """Whether a run folder of the seed and the encoder (``ModelConfig.encoder``) under ``root`` holds the
    evaluation's result: for an evaluation of the initialization (the same for every run of that encoder at a seed),
    which then need not run again."""
    return any(saved_config(result.parent / CONFIG_NAME).model.encoder() == encoder
               for result in root.glob(f"*,seed={seed}/{EVALUATIONS[evaluation][0]}"))


# runs one mimae command line in this process and returns its exit status (``mimae.cli.main``); None: a subprocess
Runner = Callable[[list[str]], int] | None


class Children:
    """The mimae subprocesses a sweep has running, and whether a stop signal arrived: :meth:`stop` passes a SIGTERM
    to each and keeps :meth:`run` from starting more."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.stop_signal: int | None = None
        self.lock = threading.RLock()  # reentrant: the handler runs on the main thread, maybe inside a signal

    def run(self, argv: list[str], **popen) -> int | None:
        """Run ``argv`` to its end; its exit status, None when the sweep was stopped before it started."""
        with self.lock:
            if self.stop_signal is not None:
                return None
            process = subprocess.Popen(argv, **popen)
            self.running.add(process)
        try:
            return process.wait()
        finally:
            with self.lock:
                self.running.discard(process)

    def stop(self, signum: int, _frame=None) -> None:
        with self.lock:
            self.stop_signal = signum
            for process in self.running:
                process.send_signal(signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(children: Children):
    """Route SIGTERM and SIGINT to ``children.stop`` while the block runs (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {sig: signal.signal(sig, children.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def exit_if_stopped(children: Children, what: str, say: Callable[[str], None]) -> None:
    """After a stop signal: say so and exit with 128 + the signal."""
    if children.stop_signal is not None:
        say(f"{what}: stopped by {signal.Signals(children.stop_signal).name}; run the same command again to resume")
        raise SystemExit(128 + children.stop_signal)


@dataclass
class Settings:
    """What every point of a sweep shares: arguments of every ``mimae pretrain``, the evaluations after it (with
    more options per evaluation), the torch threads of each process, and how commands run."""

    base: list[str] = field(default_factory=list)
    evaluations: list[str] = field(default_factory=list)
    evaluation_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    threads: int | None = None
    runner: Runner = None
    children: Children = field(default_factory=Children)


def commands(point: Point, run_dir: Path, settings: Settings) -> list[tuple[str, list[str]]]:
    """Each command one point still needs, in order, as (its name, its mimae arguments): ``pretrain`` (resumed if
    started), then each missing evaluation that applies to it by its name."""
    steps = []
    if not (run_dir / RESULTS_NAME).is_file():
        steps.append(("pretrain", ["pretrain", "--output-dir", str(run_dir), "--resume", "auto",
                                   f"train.save_every_minutes={CHECKPOINT_MINUTES}", *settings.base,
                                   *point.overrides(),
                                   *([f"train.threads={settings.threads}"] if settings.threads else [])]))
    try:
        cfg: Config | None = resolved_config([*settings.base, *point.overrides()])
    except ConfigError:  # its pretraining fails on it, and the sweep records that: no evaluation runs
        cfg = None
    steps += [(name, evaluation_command(name, run_dir, settings.evaluation_args.get(name, ())))
              for name in missing(run_dir, [*settings.evaluations, *point.evaluations], cfg)]
    return steps


def record_seconds(run_dir: Path, name: str, seconds: float) -> None:
    """Add the seconds the evaluation ``name`` took to the run's ``sweep_times.json`` (a plan's estimates)."""
    path = run_dir / TIMES_NAME
    times = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**times, name: round(seconds, 1)}, indent=1) + "\n")


def run_mimae(args: list[str], log: Path, threads: int | None = None, runner: Runner = None,
              children: Children | None = None) -> int | None:
    """``mimae ARGS`` with its output appended to ``log``: a subprocess (``threads``: its OMP threads), or
    ``runner`` in this process; the exit status (None: not started, the sweep was stopped)."""
    with log.open("a") as out:
        if runner is not None:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                return runner(args)
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        return (children or Children()).run([sys.executable, "-m", "mimae.cli", *args], stdout=out,
                                            stderr=subprocess.STDOUT, env=env)


def run_point(point: Point, run_dir: Path, settings: Settings, say: Callable[[str], None]) -> dict:
    """Run what a point still needs, its output appended to ``run_dir/sweep.log``; its record."""
    if settings.children.stop_signal is not None:
        return record(point, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / SWEEP_LOG_NAME
    for name, command in commands(point, run_dir, settings):
        say(f"{point.name}: {' '.join(command[:2]) if command[0] != 'pretrain' else 'pretrain'}")
        started = time.monotonic()
        code = run_mimae(command, log, settings.threads, settings.runner, settings.children)
        if settings.children.stop_signal is not None:
            return record(point, run_dir)
        if code != 0:
            tail = log.read_text().strip().splitlines()[-3:]
            say(f"{point.name}: failed (exit {code}); see {log}")
            return {**record(point, run_dir), "failed": {"exit": code, "log": str(log), "tail": tail}}
        if name != "pretrain":  # a pretraining's own time is in its results (train_seconds), resumes included
            record_seconds(run_dir, name, time.monotonic() - started)
    return record(point, run_dir)


def submit_points(root: Path, points: list[Point], settings: Settings, cluster: Cluster,
                  say: Callable[[str], None]) -> dict[str, str]:
    """Submit a job for each point (its remaining commands, resumable); point name -> job id."""
    jobs = {}
    for point in points:
        run_dir = root / point.name
        run_dir.mkdir(parents=True, exist_ok=True)
        jobs[point.name] = PointJob([argv for _, argv in commands(point, run_dir, settings)],
                                    str(run_dir / SWEEP_LOG_NAME), cluster.nodes, max(1, cluster.gpus_per_node))
    ids = submit(root, jobs, cluster)
    say(f"submitted {len(ids)} jobs ({cluster.executor}): {', '.join(ids.values())}; `mimae sweep --status {root}` "
        f"shows them; the same command again, once they are done, collects the results")
    return ids


def sweep_status(root: str | Path) -> list[dict]:
    """Each point of the sweep at ``root``: its name, whether its run finished (``done``) and, if it was submitted,
    its job id and the job's state."""
    root = Path(root)
    saved = json.loads((root / SWEEP_FILE).read_text())
    kind, ids = submitted_jobs(root)
    rows = []
    for point in saved["points"]:
        run_dir = Path(point["run_dir"])
        done = finished(run_dir, [*saved["evaluations"], *point.get("evaluations", [])])
        job = ids.get(point["name"])
        state = job_state(root, job, kind) if job and not done else "done" if done else "not submitted"
        if state == "finished":  # a local job that ended without finishing its run
            state = f"failed (see {run_dir / 'sweep.log'})"
        rows.append({"name": point["name"], "done": done, "job": job, "state": state})
    return rows


def record(point: Point, run_dir: Path) -> dict:
    """What a point measured so far: the run's results and its named measures (:mod:`mimae.report.measures`)."""
    results_file = run_dir / RESULTS_NAME
    results = json.loads(results_file.read_text()) if results_file.is_file() else None
    return {"name": point.name, "label": point.label, "values": point.values, "seed": point.seed,
            "run_dir": str(run_dir.resolve()), "results": results,
            "measures": read_measures(run_dir, results)[0] if results else {}}


def run_sweep(root: str | Path, points: list[Point], base: list[str] | None = None,
              evaluations: list[str] | None = None, parallel: int = 1, threads: int | None = None,
              say: Callable[[str], None] = print, evaluation_args: dict[str, tuple[str, ...]] | None = None,
              runner: Runner = None, cluster: Cluster | None = None) -> dict:
    """Run every point not yet finished (``parallel`` at a time) and write ``root/sweep.json``; its content.
    With ``cluster``, submit each as a job instead (:mod:`mimae.experiments.launch`) and return at once.

    ``base`` are arguments of every ``mimae pretrain`` (``--method``, ``--config``, overrides); ``threads`` the torch
    threads of each process (default: the CPU cores shared among the parallel processes); ``evaluation_args``:
    evaluation name -> more options of its command (``{"reconstruct": ("--images", "64")}``); ``runner``: run the
    commands in this process (``mimae.cli.main``) instead of as subprocesses.
    """
    root = Path(root)
    evaluations = list(evaluations or [])
    unknown = [e for e in [*evaluations, *(e for p in points for e in p.evaluations)] if e not in EVALUATIONS]
    if unknown:
        raise ConfigError(f"unknown evaluation {unknown[0]!r}; one of {', '.join(EVALUATIONS)}")
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ConfigError("two points of the sweep have the same name: a grid key is given twice")
    if threads is None and parallel > 1:
        threads = max(1, (os.cpu_count() or 1) // parallel)
    if runner is not None and parallel > 1:
        raise ConfigError("runs in this process go one at a time (parallel=1)")
    settings = Settings(list(base or []), evaluations, dict(evaluation_args or {}), threads, runner)
    check_finished_runs(root, points, settings.base)
    lacking = {p.name: gaps for p in points if weightless(root / p.name)
               and (gaps := missing(root / p.name, [*evaluations, *p.evaluations]))}
    for name, gaps in lacking.items():
        say(f"{name}: finished without its weights (restored from an archive), so {', '.join(gaps)} cannot be "
            "added; its row lacks them")
    todo = [p for p in points if p.name not in lacking and not finished(root / p.name, [*evaluations, *p.evaluations])]
    say(f"sweep {root}: {len(points)} points, {len(points) - len(todo)} finished before, {len(todo)} to run"
        + (f", {parallel} at a time" if parallel > 1 and cluster is None else ""))
    ran: dict[str, dict] = {}
    jobs = submit_points(root, todo, settings, cluster, say) if cluster is not None and todo else {}
    if cluster is None:
        with stop_on_signals(settings.children), ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            ran = dict(zip((p.name for p in todo),
                           pool.map(lambda p: run_point(p, root / p.name, settings, say), todo)))
        exit_if_stopped(settings.children, f"sweep {root}", say)
    records = [{**(ran.get(p.name) or record(p, root / p.name)), "evaluations": p.evaluations,
                **({"job": jobs[p.name]} if p.name in jobs else {})} for p in points]
    sweep = {"root": str(root.resolve()), "base": list(base or []), "evaluations": evaluations,
             "keys": sorted({k for p in points for k in p.values}), "points": records}
    root.mkdir(parents=True, exist_ok=True)
    (root / SWEEP_FILE).write_text(json.dumps(sweep, indent=1) + "\n")
    failed = [r["name"] for r in records if "failed" in r]
    say(f"results of {len(records)} points: {root / SWEEP_FILE}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return sweep
