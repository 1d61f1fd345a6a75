"""A run folder that is safe to share with the world: one writer at a time, no run overwritten by accident, a
metrics log that stays consistent over resumes.

* :class:`FolderLock` holds an exclusive ``flock`` on ``<run>/.lock`` (with the holder's pid in it) while a run
  writes the folder; the kernel drops it when the process dies, even by ``kill -9``, so a crash never leaves a
  stale lock.
* :func:`check_fresh_start` refuses to start a new run in a folder that holds one, unless told to overwrite it;
  :func:`clear` removes what a run writes there (and nothing else).
* :func:`truncate_log` drops the metric lines of steps after the checkpoint a run resumes from, so they are not
  written twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

LOCK_NAME = ".lock"
# the files of a run folder, named here only
LOG_NAME = "metrics.jsonl"  # one JSON line per log interval
RESULTS_NAME = "results.json"  # what a finished run measured
CONFIG_NAME = "config.yaml"  # the run's resolved config
SWEEP_LOG_NAME = "sweep.log"  # the output of the commands a sweep ran for the run
EVAL_PATTERN = "eval_*.json"  # the evaluations' results
PARTIAL_PATTERN = "*.partial.json"  # what a long evaluation has finished so far, so that a killed one continues
RUN_FILES = ("checkpoint.pt", "checkpoint.prev.pt", LOG_NAME, RESULTS_NAME, CONFIG_NAME)
RUN_PATTERNS = ("checkpoint-epoch*.pt", ".checkpoint*.tmp", EVAL_PATTERN, PARTIAL_PATTERN, "lowshot_subset.json")


def eval_name(protocol: str) -> str:
    """The result file of an evaluation protocol in a run folder: ``eval_<protocol>.json``."""
    return EVAL_PATTERN.replace("*", protocol)


def partial_name(protocol: str) -> str:
    """The file in which an evaluation protocol keeps what it has finished: ``<protocol>.partial.json``."""
    return PARTIAL_PATTERN.replace("*", protocol)


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one step: a reader (or a kill) sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunFolderError(RuntimeError):
    """The run folder cannot be used as asked; the message says why and what to do."""


def holds_a_run(run_dir: Path) -> bool:
    """True if a run has written here (a checkpoint, a metrics log, results or a config)."""
    return any((run_dir / name).exists() for name in RUN_FILES) or any(run_dir.glob("checkpoint-epoch*.pt"))


def check_fresh_start(run_dir: Path, overwrite: bool) -> None:
    """A new run may start here: the folder holds none, or ``overwrite`` clears it."""
    if not holds_a_run(run_dir):
        return
    if not overwrite:
        raise RunFolderError(f"{run_dir} already holds a run; continue it with --resume (or --resume auto), start "
                             f"over with --overwrite, or choose another --output-dir")
    clear(run_dir)


def clear(run_dir: Path) -> None:
    """Remove the files and folders a run writes in ``run_dir``; anything else stays."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for pattern in RUN_PATTERNS:
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)
    for folder in ("tensorboard", "analysis"):
        shutil.rmtree(run_dir / folder, ignore_errors=True)


class FolderLock:
    """An exclusive hold on a run folder for this process, until :meth:`release` (or the process ends)."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(run_dir / LOCK_NAME, "a+")  # noqa: SIM115 (held open: the lock lives as long as the file)
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RunFolderError(f"{run_dir} is in use by process {holder}: a run is writing it (wait for it, "
                                 f"stop it, or choose another --output-dir)") from None
        self.file.truncate(0)
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            self.file.close()  # closing the file drops the lock


def truncate_log(run_dir: Path, step: int) -> None:
    """Keep only the metric lines of steps up to ``step`` (those a resumed run would otherwise write again)."""
    path = run_dir / LOG_NAME
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    replace_text(path, "".join(f"{line}\n" for line in kept))
