"""DataLoader worker processes under the signals clusters send: SIGTERM or Ctrl-C to the whole process group (what
SLURM does at preemption, what a terminal does), a worker that dies alone, and the same under torchrun."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from mimae.data.loader import next_batch, worker_death
from mimae.runs import read
from tests.faults.conftest import (
    assert_bit_exact,
    assert_no_process_left,
    children,
    command,
    finished,
    jpeg_folder,
    kill,
    logged_step,
    run,
    start,
    wait_for_step,
    weights,
)
from tests.faults.test_two_processes import torchrun


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return jpeg_folder(tmp_path_factory.mktemp("jpegs"))


def with_workers(images: Path) -> list[str]:
    """Files decoded by one loader worker process."""
    return ["data.dataset=imagefolder", f"data.data_dir={images}", "data.num_workers=1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images) -> Path:
    run_dir = tmp_path_factory.mktemp("workers-reference") / "run"
    return finished(command(run_dir, *with_workers(images)), run_dir)


def started_with_a_worker(args: list[str], run_dir: Path, step: int):
    """Start ``args`` and wait for ``step``; the process and its loader worker's pid."""
    process = start(args)
    wait_for_step(process, run_dir, step)
    workers = children(process.pid)
    assert len(workers) == 1, workers
    return process, workers[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_to_the_group_with_loader_workers_saves_and_exits_0(tmp_path, images, reference, sig):
    run_dir = tmp_path / "run"
    process, _ = started_with_a_worker(command(run_dir, *with_workers(images), "train.save_every_steps=0"), run_dir, 5)
    kill(process, sig)  # the training process and its worker, as `kill -TERM -- -PGID` and Ctrl-C do
    stderr = process.stderr.read()
    assert process.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr and "DataLoader worker" not in stderr
    stopped_at = int(re.search(rf"stopped by {signal.Signals(sig).name} at step (\d+)", stderr)[1])
    assert read(run_dir).checkpoint["step"] == stopped_at == logged_step(run_dir)  # no step lost
    assert_no_process_left(process.pid)
    done = run(command(run_dir, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert_bit_exact(weights(run_dir), weights(reference))


def test_a_worker_killed_alone_is_an_error_in_one_line_and_the_checkpoint_stays(tmp_path, images, reference):
    run_dir = tmp_path / "run"
    process, worker = started_with_a_worker(command(run_dir, *with_workers(images)), run_dir, 7)
    os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer does
    process.wait(timeout=120)
    stderr = process.stderr.read()
    assert process.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("mimae: error:")]
    assert len(errors) == 1, stderr[-2000:]
    assert f"data loader worker (pid {worker}) was killed by SIGKILL: most likely out of memory" in errors[0]
    saved = int(re.search(r"last checkpoint \(step (\d+)\) is intact", errors[0])[1])
    assert read(run_dir).checkpoint["step"] == saved > 0
    assert_no_process_left(process.pid)
    done = run(command(run_dir, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert_bit_exact(weights(run_dir), weights(reference))


def test_sigterm_to_torchrun_and_its_loader_workers_stops_both_processes_at_one_step(tmp_path, images):
    run_dir = tmp_path / "run"
    process = start(torchrun(run_dir, *with_workers(images), "train.save_every_steps=0"))
    wait_for_step(process, run_dir, 5)
    ranks = children(process.pid)
    assert len(ranks) == 2 and all(len(children(rank)) == 1 for rank in ranks)  # one loader worker each
    kill(process, signal.SIGTERM)  # torchrun, both training processes and both workers
    stderr = process.stderr.read()
    assert "DataLoader worker" not in stderr and "engine.py" not in stderr  # torchrun's own report aside
    stopped_at = {int(step) for step in re.findall(r"stopped by SIGTERM at step (\d+)", stderr)}
    assert stopped_at == {read(run_dir).checkpoint["step"]} == {logged_step(run_dir)}  # both there, none lost
    assert_no_process_left(process.pid)


@pytest.mark.parametrize("torch_words, ours", [
    ("DataLoader worker (pid 12) is killed by signal: Bus error. It is possible that dataloader's workers are out of "
     "shared memory.", "data loader worker (pid 12) was killed by SIGBUS: most likely too little shared memory"),
    ("DataLoader worker (pid 12) is killed by signal: Segmentation fault. ",
     "data loader worker (pid 12) was killed by SIGSEGV: most likely an image file that crashes the decoder"),
    ("DataLoader worker (pid 12) is killed by signal: Hangup. ",
     "data loader worker (pid 12) was killed by SIGHUP: a signal sent to the worker from outside the run"),
    ("DataLoader worker (pid 12) exited unexpectedly with exit code 1. Details are lost due to multiprocessing.",
     "data loader worker (pid 12) exited with code 1 unexpectedly: data.num_workers=0"),
    ("DataLoader worker (pid(s) 12, 13) exited unexpectedly", "data loader workers (pids 12, 13) exited unexpectedly"),
])
def test_pytorchs_words_for_a_dead_worker_become_the_cause_in_words(torch_words, ours):
    assert worker_death(RuntimeError(torch_words)).startswith(ours)


def test_other_errors_are_not_taken_for_a_dead_worker():
    assert worker_death(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


class WorkerEndedMidSend:
    """A DataLoader iterator whose worker died while sending a batch: the socket reset comes before PyTorch's
    check of its workers; ``exitcode`` as multiprocessing reports it (-9: SIGKILL, None: alive)."""

    def __init__(self, exitcode: int | None, error: type[Exception] = ConnectionResetError,
                 words: str = "Connection reset by peer"):
        self._workers = [type("Worker", (), {"pid": 12, "exitcode": exitcode})()]
        self.error, self.words = error, words

    def __next__(self):
        raise self.error(self.words)


@pytest.mark.parametrize("error", [ConnectionResetError, EOFError])
def test_a_worker_dead_before_pytorch_notices_is_named_as_any_dead_worker(error):
    with pytest.raises(RuntimeError) as caught:
        next_batch(WorkerEndedMidSend(-signal.SIGKILL, error))
    assert worker_death(caught.value).startswith("data loader worker (pid 12) was killed by SIGKILL: most likely out "
                                                 "of memory")
    with pytest.raises(RuntimeError) as caught:
        next_batch(WorkerEndedMidSend(3, error))
    assert worker_death(caught.value).startswith("data loader worker (pid 12) exited with code 3 unexpectedly")


def test_pytorchs_exited_unexpectedly_without_a_cause_is_named_by_the_workers_exit_code():
    """PyTorch's periodic check says "exited unexpectedly" with no code even for a worker the kernel killed."""
    unexplained = "DataLoader worker (pid(s) 12) exited unexpectedly"
    with pytest.raises(RuntimeError) as caught:
        next_batch(WorkerEndedMidSend(-signal.SIGKILL, RuntimeError, unexplained))
    assert worker_death(caught.value).startswith("data loader worker (pid 12) was killed by SIGKILL: most likely out "
                                                 "of memory")
    with pytest.raises(RuntimeError, match=r"^DataLoader worker \(pid\(s\) 12\) exited unexpectedly$"):
        next_batch(WorkerEndedMidSend(None, RuntimeError, unexplained), wait=0.1)  # no exit code to read: as it was
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        next_batch(WorkerEndedMidSend(-signal.SIGKILL, RuntimeError, "mat1 and mat2 shapes cannot be multiplied"))


def test_a_connection_error_with_every_worker_alive_stays_what_it_is():
    with pytest.raises(ConnectionResetError):
        next_batch(WorkerEndedMidSend(None), wait=0.1)
