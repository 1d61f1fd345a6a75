"""What a benchmark ran on, and the peak FLOP/s a large matmul reaches there: the denominator of MFU."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``step``, with one device sync before and after (none in between)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe(device: torch.device) -> dict:
    """The machine in a benchmark's JSON: CPU, torch's CPU capability (AVX2, AVX512, AMX...), native bf16 flags,
    threads, torch version and the accelerator's name."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        pass
    info = {"cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags, "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int | None = None, rounds: int = 5) -> float:
    """FLOP/s of the best of ``rounds`` timings of an n x n @ n x n matmul (2 n^3 FLOPs; n = 2048 on CPU, 8192 on
    a GPU), in ``dtype`` on ``device``."""
    n = size or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    a @ b  # warm-up
    repeats = 20 if device.type == "cuda" else 3
    best = float("inf")
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n ** 3 / best


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """Peak memory in MiB: the device allocator's peak since the last reset on a GPU; on CPU the process's peak
    resident set (everything the process ever held, not this step alone)."""
    if device.type == "cuda":
        return {"peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20, "memory_kind": "cuda allocated"}
    return {"peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memory_kind": "process peak RSS"}
