"""A paper's directional claims ("row A beats row B") checked against measured groups, seed by seed.

Rows at one seed share their initial weights and data order, so a claim pairs them by seed (the rule, stated on every
page that shows one): with d_k the difference at seed k in the claim's direction (A - B, or B - A for a measure where
lower is better), d the mean over the n seeds both rows have and se = sd(d_k) / sqrt(n), the claim *holds* if
d > 2 se, *does not hold* if d < -2 se (the opposite is measured), and is *within noise* otherwise; beside it, the
one-sided p of the paired t-test (Student's t = d / se with n - 1 degrees of freedom) says how weak a verdict at two
or three seeds is. 2 se is the smallest difference the experiment resolves; where the paper's own effect is
smaller, the claim is *below resolution* and gets no verdict. A claim on a collapsed run gets none either
(:mod:`mimae.report.collapse`), nor one on a run whose MI terms never started, nor one with fewer than two paired
seeds.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from mimae.plotting import legend_below, panel_grid, save_figure
from mimae.report.measures import describe, header

RULE = ("Paired by seed (rows at a seed share initial weights and data order): d = mean over the n seeds of the "
        "per-seed difference in the claim's direction (positive: as claimed; A and B: the two rows' means over those n "
        "seeds), se = sd / sqrt(n); holds if d > 2 se, does not hold if d < -2 se, within noise between. 2 se is the "
        "smallest difference the experiment resolves: a d within noise on a claim whose paper effect is smaller is "
        "below resolution (the experiment could not have seen the paper's effect), not judged; a d beyond 2 se is a "
        "verdict whatever that effect. p: the paired t-test's one-sided p for the claim's direction (t = d / se with "
        "n - 1 degrees of freedom: how often rows that do not differ give a d this large); the rule's 2 se is t = 2: "
        f"p = {stats.t.sf(2, 1):.2f} at n = 2, {stats.t.sf(2, 2):.2f} at n = 3, {stats.t.sf(2, 4):.2f} at n = 5, and a "
        "page checks many claims, so a verdict at two or three seeds says where to look, not what is proven.")


@dataclass(frozen=True)
class Claim:
    """The paper says row ``better`` beats row ``worse`` (their labels); ``text`` says it in the paper's words.
    ``measures`` names the measures the claim is about (empty: every judged measure both rows have, see
    :class:`mimae.report.measures.Measure`)."""

    text: str
    better: str
    worse: str
    measures: tuple[str, ...] = ()


def paired(a: dict, b: dict) -> tuple[list[float], list[float], list[int]]:
    """The values of ``a`` and of ``b`` at the seeds both measures have, and those seeds."""
    bs = dict(zip(b["seeds"], b["values"]))
    pairs = [(va, bs[s], s) for s, va in zip(a["seeds"], a["values"]) if s in bs]
    return [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]


def mean_and_se(differences: list[float]) -> tuple[float, float | None]:
    """The mean of per-seed differences and its standard error sd / sqrt(n) (None below two seeds)."""
    se = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else None
    return statistics.mean(differences), se


def one_sided_p(d: float, se: float | None, n: int) -> float | None:
    """The paired t-test's one-sided p for a positive mean difference: P(T > d / se), T Student's t with n - 1
    degrees of freedom (None below two seeds or without spread)."""
    if se is None or se == 0:
        return None
    return float(stats.t.sf(d / se, n - 1))


def rule_p(n: int) -> str:
    """What the 2-se rule means at n seeds, as the one-sided p of t = 2 ("" below two seeds)."""
    return f"; 2 se is p = {one_sided_p(2.0, 1.0, n):.2f} at n = {n}" if n > 1 else ""


def verdict(d: float, se: float | None, paper_effect: float | None = None, collapsed: bool = False,
            unequal: bool = False, never_started: bool = False) -> str:
    if unequal:
        return "unequal budgets: no verdict"
    if collapsed:
        return "collapsed run: no verdict"
    if never_started:
        return "MI terms never started: no verdict"
    if se is None:
        return "no spread (n < 2)"
    if abs(d) > 2 * se:
        return "holds" if d > 0 else "does not hold"
    return "below resolution" if paper_effect is not None and abs(paper_effect) < 2 * se else "within noise"


def check(claim: Claim, groups: dict[str, dict], measures: list[str], collapsed: Set[str] = frozenset(),
          paper_effect: float | None = None, unequal: bool = False,
          never_started: Set[str] = frozenset()) -> list[dict]:
    """One record per measure of the claim that both rows have: ``groups`` maps a label to its measures (name ->
    values, seeds, mean, std, n, as :func:`mimae.report.comparison.summary` gives them); ``collapsed``: the labels
    with a collapsed run; ``never_started``: the labels with a run whose MI terms never started;
    ``paper_effect``: the paper's own difference between the two rows, if it prints one;
    ``unequal``: the two rows trained different steps, samples or peak lr (no verdict). The paper's effect applies
    to the accuracies only (the papers' numbers are accuracies)."""
    if claim.better not in groups or claim.worse not in groups:
        return []
    records = []
    flagged = {claim.better, claim.worse}
    for name in measures:
        if name not in claim.measures if claim.measures else not describe(name).judged:
            continue
        a, b = groups[claim.better].get(name), groups[claim.worse].get(name)
        if a is None or b is None:
            continue
        a_values, b_values, seeds = paired(a, b)
        if not seeds:
            continue
        sign = 1 if describe(name).higher_is_better else -1
        differences = [sign * (va - vb) for va, vb in zip(a_values, b_values)]
        # the papers' numbers are accuracies: their effect bounds an accuracy's claim, not an SSIM's or an error's
        effect = paper_effect if describe(name).unit == "%" and describe(name).higher_is_better else None
        d, se = mean_and_se(differences)
        records.append({"claim": claim.text, "better": claim.better, "worse": claim.worse, "measure": name,
                        "better_mean": statistics.mean(a_values), "worse_mean": statistics.mean(b_values),
                        "n": len(differences), "seeds": seeds,
                        "differences": differences, "difference": d, "se": se,
                        "resolvable": 2 * se if se is not None else None,
                        "p": one_sided_p(d, se, len(differences)), "paper_effect": effect,
                        "collapsed": sorted(flagged & set(collapsed)), "unequal": unequal,
                        "never_started": sorted(flagged & set(never_started)),
                        "verdict": verdict(d, se, effect, bool(flagged & set(collapsed)), unequal,
                                           bool(flagged & set(never_started)))})
    return records


def flags(record: dict) -> str:
    """The rows that kept a claim from a verdict, after it: " (collapsed: A)", " (never started: B)"."""
    named = (("collapsed", record.get("collapsed")), ("never started", record.get("never_started")))
    return "".join(f" ({what}: {', '.join(labels)})" for what, labels in named if labels)


def claim_rows(records: list[dict], first: str = "claim (the paper's)") -> tuple[tuple[str, ...], list[tuple]]:
    """The page's table: head (``first``: the first column's) and rows."""
    head = (first, "measure", "A (mean)", "B (mean)", "n", "paired d ± se", "d per seed (seed: d)",
            "resolves (2 se)", "one-sided p", "paper's effect", "verdict")
    rows = []
    for r in records:
        digits = 2 if describe(r["measure"]).unit else 4
        spread = f" ± {r['se']:.{digits}f}" if r["se"] is not None else ""
        per_seed = "; ".join(f"{seed}: {d:+.{digits}f}" for seed, d in zip(r["seeds"], r["differences"]))
        resolves = f"{r['resolvable']:.{digits}f}" if r["resolvable"] is not None else ""
        effect = f"{r['paper_effect']:+g}" if r["paper_effect"] is not None else ""
        p = f"{r['p']:.3f}" if r.get("p") is not None else ""
        rows.append((r["claim"], header(r["measure"]), f"{r['better_mean']:.{digits}f}",
                     f"{r['worse_mean']:.{digits}f}", r["n"], f"{r['difference']:+.{digits}f}{spread}", per_seed,
                     resolves, p, effect, r["verdict"] + flags(r)))
    return head, rows


# a verdict's colour in the figure; within noise, below resolution: blue; no verdict (collapsed, unequal, MI terms
# never started, n < 2): gray
VERDICT_COLOURS = {"holds": "C2", "does not hold": "C3", "within noise": "C0", "below resolution": "C0"}
LEGEND = (("C2", "holds (d > 2 se)"), ("C3", "does not hold (d < -2 se)"), ("C0", "within noise"),
          ("gray", "no verdict (collapsed, unequal, never started, n < 2)"))


def claim_panels(records: list[dict]) -> tuple[list[str], dict[str, dict[str, dict]]]:
    """The claims in their order, and each measure's records by claim (a panel per measure, a line per claim)."""
    claims = list(dict.fromkeys(r["claim"] for r in records))
    panels: dict[str, dict[str, dict]] = {}
    for r in records:
        panels.setdefault(r["measure"], {})[r["claim"]] = r
    return claims, panels


def plot_claims(records: list[dict], path: str | Path, title: str) -> Path | None:
    """Each claim's per-seed differences in the claim's direction (dots) and d ± 2 se (bar), against zero, coloured
    by its verdict: a panel per measure, a line per claim. None without records."""
    if not records:
        return None
    claims, panels = claim_panels(records)
    columns = 2 if len(panels) > 1 else 1
    fig, axes = panel_grid(len(panels), columns, panel_size=(4.6, 0.36 * len(claims) + 1.3))
    for index, (ax, (measure, by_claim)) in enumerate(zip(axes, panels.items())):
        for y, claim in enumerate(claims):
            r = by_claim.get(claim)
            if r is None:
                continue
            colour = VERDICT_COLOURS.get(r["verdict"], "gray")
            ax.scatter(r["differences"], [y] * len(r["differences"]), color=colour, alpha=0.4, s=12)
            ax.errorbar(r["difference"], y, xerr=r["resolvable"] or 0, fmt="o", color=colour, capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(claims)),
                      [textwrap.fill(c, 44) for c in claims] if index % columns == 0 else [], fontsize=7)
        ax.set_ylim(len(claims) - 0.5, -0.5)
        ax.set_xlabel(f"d: {header(measure)}", fontsize=8)
        ax.locator_params(axis="x", nbins=4)  # at most five ticks: three-decimal labels fit a narrow panel
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3, axis="x")
    axes[0].scatter([], [], color="gray", alpha=0.4, s=12, label="a seed's d (positive: as claimed)")
    axes[0].errorbar([], [], xerr=[], fmt="o", color="gray", capsize=3, label="mean d ± 2 se")
    for colour, text in LEGEND:
        axes[0].plot([], [], "o", color=colour, label=text)
    legend_below(fig, axes[0], columns=2)
    return save_figure(fig, path, title)
