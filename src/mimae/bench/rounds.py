"""Timing two or more steps side by side in one process, in alternating rounds, so that the machine's drift
(other jobs, clocks, heat) falls on all of them alike; the ratio is taken round by round."""

from __future__ import annotations

import statistics
from typing import Protocol


class Timed(Protocol):
    samples_per_step: int

    def run(self, steps: int) -> float: ...


def alternate(benches: dict[str, Timed], steps: int, rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Samples/s of each bench in each round: every bench runs ``warmup`` steps first, then each round runs every
    bench for ``steps`` steps, the order reversed every other round."""
    for bench in benches.values():
        bench.run(warmup)
    rates: dict[str, list[float]] = {name: [] for name in benches}
    names = list(benches)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            bench = benches[name]
            rates[name].append(steps * bench.samples_per_step / bench.run(steps))
    return rates


def ratio(rates: dict[str, list[float]], numerator: str, denominator: str) -> dict:
    """Median, min and max over rounds of numerator's samples/s / denominator's, with each side's median rate."""
    per_round = [a / b for a, b in zip(rates[numerator], rates[denominator])]
    return {"ratio": statistics.median(per_round), "ratio_min": min(per_round), "ratio_max": max(per_round),
            "rounds": len(per_round), f"{numerator}_samples_per_s": statistics.median(rates[numerator]),
            f"{denominator}_samples_per_s": statistics.median(rates[denominator])}
