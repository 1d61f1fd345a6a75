"""A paper's directional claims ("row A beats row B") checked against measured groups: for every measure both rows
have, the difference of the means with its standard error and a verdict.

The verdict rule (stated on every page that shows one): with d the difference in the claim's direction (A - B, or
B - A for a measure where lower is better) and se = sqrt(s_A^2 / n_A + s_B^2 / n_B) from the sample standard
deviations over seeds, the claim *holds* if d > 2 se, *does not hold* if d < -2 se (the opposite is measured), and is
*within noise* otherwise; with fewer than two seeds in either row there is no spread and no verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mimae.report.measures import describe, header

RULE = ("d: the difference of the means in the claim's direction (positive: as the paper says); se = "
        "sqrt(s_A^2/n_A + s_B^2/n_B) over seeds; holds if d > 2 se, does not hold if d < -2 se, within noise between.")


@dataclass(frozen=True)
class Claim:
    """The paper says row ``better`` beats row ``worse`` (their labels); ``text`` says it in the paper's words.
    ``measures`` names the measures the claim is about (empty: every measure both rows have)."""

    text: str
    better: str
    worse: str
    measures: tuple[str, ...] = ()


def verdict(d: float, se: float | None) -> str:
    if se is None:
        return "no spread (n < 2)"
    return "holds" if d > 2 * se else "does not hold" if d < -2 * se else "within noise"


def check(claim: Claim, groups: dict[str, dict], measures: list[str]) -> list[dict]:
    """One record per measure of the claim that both rows have: ``groups`` maps a label to its measures (name ->
    values, mean, std, n, as :func:`mimae.report.comparison.summary` gives them)."""
    if claim.better not in groups or claim.worse not in groups:
        return []
    records = []
    for name in measures:
        if claim.measures and name not in claim.measures:
            continue
        a, b = groups[claim.better].get(name), groups[claim.worse].get(name)
        if a is None or b is None:
            continue
        sign = 1 if describe(name).higher_is_better else -1
        d = sign * (a["mean"] - b["mean"])
        se = (math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
              if a["n"] > 1 and b["n"] > 1 else None)
        records.append({"claim": claim.text, "better": claim.better, "worse": claim.worse, "measure": name,
                        "better_mean": a["mean"], "worse_mean": b["mean"], "n": [a["n"], b["n"]],
                        "difference": d, "se": se, "verdict": verdict(d, se)})
    return records


def claim_rows(records: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    """The page's table: head and rows."""
    head = ("claim (the paper's)", "measure", "A (mean)", "B (mean)", "n A / B", "d ± se", "verdict")
    rows = []
    for r in records:
        digits = 2 if describe(r["measure"]).unit else 4
        spread = f" ± {r['se']:.{digits}f}" if r["se"] is not None else ""
        rows.append((r["claim"], header(r["measure"]), f"{r['better_mean']:.{digits}f}",
                     f"{r['worse_mean']:.{digits}f}", f"{r['n'][0]} / {r['n'][1]}",
                     f"{r['difference']:+.{digits}f}{spread}", r["verdict"]))
    return head, rows
