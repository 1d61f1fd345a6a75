"""The pretraining DataLoader, shared by the training loop and the data-loading benchmark."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mimae.data.sources import TensorImages


def init_worker(_: int) -> None:
    """Set up a DataLoader worker: one thread, so that it does not fight the training process for cores; and deaf to
    SIGTERM and SIGINT, which a cluster's preemption (``kill -TERM -- -PGID``) or a terminal's Ctrl-C sends to the
    whole process group: the training process owns the stop (it finishes its step and saves, then shuts its
    workers down), and a worker dying of the signal first would fail that step. A worker still exits when the
    training process does (PyTorch's watchdog), and dies of SIGKILL."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LoaderWorkerDied(RuntimeError):
    """A DataLoader worker ended while the training process still needed it; the message names the worker, how it
    ended and the likely cause."""


# PyTorch's words for a dead worker: "DataLoader worker (pid 12) is killed by signal: Killed." and "DataLoader
# worker (pid(s) 12, 13) exited unexpectedly" (with " with exit code 1" when it has one)
TORCH_WORKER_DEATH = re.compile(r"DataLoader worker \(pids?\(?s?\)? ?(?P<pids>[\d, ]+)\) "
                                r"(?:is killed by signal: (?P<signal>[^.]+)|exited unexpectedly"
                                r"(?: with exit code (?P<code>-?\d+))?)")

LIKELY_CAUSE = {
    signal.SIGKILL: "most likely out of memory (the kernel's OOM killer sends SIGKILL; `dmesg` says so): try fewer "
                    "data.num_workers or a smaller optim.batch_size",
    signal.SIGSEGV: "most likely an image file that crashes the decoder: data.num_workers=0 reads the files in the "
                    "training process, where the crash shows",
    signal.SIGBUS: "most likely too little shared memory for the batches in flight (/dev/shm; in a container, "
                   "--shm-size): try fewer data.num_workers",
}
LIKELY_CAUSE[signal.SIGABRT] = LIKELY_CAUSE[signal.SIGFPE] = LIKELY_CAUSE[signal.SIGSEGV]


def worker_death(exc: BaseException) -> str | None:
    """What PyTorch's error ``exc`` says about a dead DataLoader worker, in words with the likely cause
    (``"data loader worker (pid 12) was killed by SIGKILL: most likely out of memory ..."``); None when ``exc`` is
    not about one."""
    found = TORCH_WORKER_DEATH.search(str(exc))
    if found is None:
        return None
    pids = found["pids"].strip()
    who = f"data loader worker (pid {pids})" if "," not in pids else f"data loader workers (pids {pids})"
    if found["signal"]:
        names = {signal.strsignal(s): s for s in signal.Signals}
        sig = names.get(found["signal"].strip())
        if sig is None:
            return f"{who} died of the signal '{found['signal'].strip()}'"
        cause = LIKELY_CAUSE.get(sig, "a signal sent to the worker from outside the run")
        return f"{who} was killed by {sig.name}: {cause}"
    code = f" with code {found['code']}" if found["code"] else ""
    return (f"{who} exited{code} unexpectedly: data.num_workers=0 reads the files in the training process, "
            f"where the error shows")


def next_batch(batches: Iterator, wait: float = 5.0) -> Any:
    """The next batch of a DataLoader's iterator, with a dead worker named by how it ended. A worker killed while it
    sends a batch can close its socket before PyTorch's own check sees the death, which then shows as a
    ``ConnectionError`` or ``EOFError``; and PyTorch's periodic check of its workers says only "exited
    unexpectedly", whatever ended them. Both become PyTorch's words for the dead worker with its signal or exit code
    (what :func:`worker_death` reads), after waiting up to ``wait`` seconds for the ended worker's exit code; any
    other error, or one with no ended worker, is raised as it is."""
    try:
        return next(batches)
    except (ConnectionError, EOFError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError):
            found = TORCH_WORKER_DEATH.search(str(exc))
            if found is None or found["signal"] or found["code"]:  # not a dead worker, or already named
                raise
        named = ended_worker_error(batches, wait)
        if named is None:
            raise
        raise named from None


def ended_worker_error(batches: Iterator, wait: float) -> RuntimeError | None:
    """PyTorch's words for the first of ``batches``' workers that ended (its signal, or its exit code), waiting up
    to ``wait`` seconds for one to have an exit code; None when none has."""
    workers = getattr(batches, "_workers", ())  # the worker processes of a multi-process iterator
    deadline = time.monotonic() + wait
    while True:
        ended = [worker for worker in workers if worker.exitcode not in (None, 0)]
        if ended or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not ended:
        return None
    worker = ended[0]
    how = (f"is killed by signal: {signal.strsignal(-worker.exitcode)}." if worker.exitcode < 0
           else f"exited unexpectedly with exit code {worker.exitcode}")
    return RuntimeError(f"DataLoader worker (pid {worker.pid}) {how}")


def default_workers(dataset: Dataset, requested: int | None) -> int:
    """``requested`` when set; else 0 for an in-memory dataset (indexing a tensor is faster than a worker's queue)
    and, for files to decode, one worker per core beyond the training process's first, at most 8."""
    if requested is not None:
        return requested
    inner = getattr(dataset, "dataset", dataset)
    if isinstance(inner, TensorImages):
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def training_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None, workers: int | None,
                    pin_memory: bool) -> DataLoader:
    """Batches of uint8 images in ``sampler``'s order (shuffled when None), last partial batch dropped."""
    workers = default_workers(dataset, workers)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=sampler is None, drop_last=True,
                      num_workers=workers, worker_init_fn=init_worker, pin_memory=pin_memory,
                      persistent_workers=False, prefetch_factor=4 if workers else None)
