"""Sweeps and experiments on a cluster: each point of a sweep as a job submitted through submitit (SLURM), or its
local executor (the same job code in subprocesses on this machine, what the tests use).

A job runs its point's mimae commands in order: pretraining with ``--resume auto`` (under torchrun when the job
has more than one process), then each evaluation not yet written. SLURM warns a job before its time limit or a
preemption with SIGUSR2 (``--signal``); submitit then calls :meth:`PointJob.checkpoint`, which sends the running
command SIGTERM (pretraining finishes its step, writes a checkpoint and exits 0) and queues the same job again,
which continues from that checkpoint. The job ids go into ``sweep.json``; ``mimae sweep --status ROOT`` reads them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import submitit

JOBS_FOLDER = "jobs"  # submitit's scripts and logs, under the sweep's root


@dataclass(frozen=True)
class Cluster:
    """Where and how the jobs run. ``executor``: ``slurm``, or ``local`` (submitit's local executor)."""

    executor: str = "slurm"
    nodes: int = 1
    gpus_per_node: int = 1
    partition: str | None = None
    account: str | None = None
    time_minutes: int = 24 * 60
    cpus_per_task: int = 10
    max_requeues: int = 10  # after time limits and preemptions
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit

    @property
    def processes(self) -> int:
        """Training processes of a job: one per GPU (one for a CPU job)."""
        return self.nodes * max(1, self.gpus_per_node)


class PointJob(submitit.helpers.Checkpointable):
    """One point of a sweep as a job: ``commands`` (mimae arguments) run in order, output appended to ``log``."""

    def __init__(self, commands: list[list[str]], log: str, nodes: int = 1, processes_per_node: int = 1,
                 program: tuple[str, ...] = (sys.executable, "-m", "mimae.cli")):
        self.commands, self.log = commands, log
        self.nodes, self.processes_per_node, self.program = nodes, processes_per_node, program
        self.running: subprocess.Popen | None = None

    def launcher(self, args: list[str]) -> list[str]:
        """The command line of ``args``: pretraining under torchrun when the job has several processes."""
        if args[0] != "pretrain" or self.nodes * self.processes_per_node == 1:
            return [*self.program, *args]
        env = submitit.JobEnvironment()
        return [self.program[0], "-m", "torch.distributed.run", "--nnodes", str(self.nodes), "--nproc_per_node",
                str(self.processes_per_node), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"{env.hostnames[0]}:29500", "--rdzv-id", str(env.job_id), *self.program[1:], *args]

    def __call__(self) -> str:
        lead = submitit.JobEnvironment().global_rank == 0
        for args in self.commands:
            if args[0] != "pretrain" and not lead:  # evaluations run once, on the first node
                continue
            with open(self.log, "a") as out:
                self.running = subprocess.Popen(self.launcher(args), stdout=out, stderr=subprocess.STDOUT)
                code = self.running.wait()
            self.running = None
            if code != 0:
                raise RuntimeError(f"mimae {args[0]} failed (exit {code}); see {self.log}")
        return "done"

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Before the time limit or a preemption: stop the running command as a cluster would (SIGTERM: the
        pretraining checkpoints and exits 0), then queue this job again."""
        if self.running is not None:
            self.running.send_signal(signal.SIGTERM)
            try:  # not Popen.wait: the interrupted wait in __call__ holds its lock (this runs in a signal handler)
                os.waitpid(self.running.pid, 0)
            except ChildProcessError:  # it had already ended
                pass
        self.running = None
        return super().checkpoint(*args, **kwargs)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "running": None}  # a process does not pickle, nor survive a requeue


def executor(root: Path, cluster: Cluster) -> submitit.Executor:
    """submitit's executor for ``cluster``, writing its scripts and logs under ROOT/jobs."""
    folder = root / JOBS_FOLDER
    if cluster.executor == "local":
        local = submitit.LocalExecutor(folder, max_num_timeout=cluster.max_requeues)
        local.update_parameters(timeout_min=cluster.time_minutes, gpus_per_node=cluster.gpus_per_node,
                                tasks_per_node=1, signal_delay_s=cluster.signal_delay_s)
        return local
    slurm = submitit.SlurmExecutor(folder, max_num_timeout=cluster.max_requeues)
    slurm.update_parameters(time=cluster.time_minutes, nodes=cluster.nodes, ntasks_per_node=1,
                            cpus_per_task=cluster.cpus_per_task, gpus_per_node=cluster.gpus_per_node,
                            signal_delay_s=cluster.signal_delay_s, job_name=root.name,
                            **{key: value for key, value in (("partition", cluster.partition),
                                                             ("account", cluster.account)) if value})
    return slurm


def submit(root: Path, jobs: dict[str, PointJob], cluster: Cluster) -> dict[str, str]:
    """Submit each point's job; point name -> job id (also written to ROOT/jobs/jobs.json)."""
    ex = executor(root, cluster)
    ids = {name: ex.submit(job).job_id for name, job in jobs.items()}
    index = root / JOBS_FOLDER / "jobs.json"
    known = json.loads(index.read_text())["jobs"] if index.is_file() else {}
    index.write_text(json.dumps({"cluster": asdict(cluster), "jobs": {**known, **ids}}, indent=1))
    return ids


def job_state(root: Path, job_id: str, kind: str) -> str:
    """A job's state: SLURM's (through sacct), or for the local executor what its files say (``finished`` once it
    wrote its result, ``started`` once it logged, else ``queued``)."""
    folder = root / JOBS_FOLDER
    if kind != "local":
        return submitit.SlurmJob(folder, job_id).state
    if (folder / f"{job_id}_0_result.pkl").is_file():
        return "finished"
    return "started" if (folder / f"{job_id}_0_log.out").is_file() else "queued"


def submitted_jobs(root: Path) -> tuple[str, dict[str, str]]:
    """The executor kind and point name -> job id of the jobs submitted for the sweep at ``root``."""
    index = root / JOBS_FOLDER / "jobs.json"
    if not index.is_file():
        return "", {}
    saved = json.loads(index.read_text())
    return saved["cluster"]["executor"], saved["jobs"]
