"""Whether a run's latent collapsed: a finding about collapse, never a verdict on what the run was meant to test; and,
likewise, whether its MI terms never started (it trained L_rec alone, so it did not test its method).

A run is flagged when any of these holds:
- its L_max at the end (MI-MAE's InfoNCE across the V views of a step) is within ``CHANCE_MARGIN`` nats of chance,
  the log of the candidates in each denominator (logged as ``infonce_chance``: ln(V - 1) for the paper's positives;
  runs that did not log it: ln(V - 1)): the views' latents no longer tell one image from another;
- its kNN at the end is at or below its kNN at initialization: training made the features worse than random ones;
- its latents spread less than ``SPREAD_FRACTION`` of their spread at initialization, near 0: every image maps to
  about one point (read where the run has its mask-mi analysis with the initialization beside it). The spread is the
  std of the unit-normalized latents of views of different images, sqrt(1 - their mean cosine) (the total variance
  of unit vectors is 1 - the squared norm of their mean, which the mean cosine between different ones estimates). A
  random ViT's latents already point much one way (mean cosine about 0.9, spread about 0.28), so the line is drawn
  relative to the initialization; it is not the initialization itself, because a healthy encoder can concentrate
  its latents further around a common direction and still tell images apart by the rest (SimCLR's [CLS] at the cpu
  scale: spread 0.154 against 0.280 at initialization, kNN 78.94 against 63.30).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mimae.report.measures import MASK_MI_KEYS
from mimae.run_folder import LOG_NAME

CHANCE_MARGIN = 0.1
SPREAD_FRACTION = 0.1
RULE = (f"A run is flagged collapsed if its final L_max (InfoNCE over the V views of a step) is within "
        f"{CHANCE_MARGIN} nats of chance (the log of the candidates in each denominator: ln(V - 1) for the paper's "
        "positives), its kNN at the end is at or below its kNN at initialization, or its latents' spread is near 0 "
        "(the std of the unit-normalized latents of different images, sqrt(1 - their mean cosine) from mask-mi, "
        f"below {SPREAD_FRACTION:g} x the initialization's: every image maps to about one point); a claim that "
        "involves a collapsed run gets no verdict.")
NEVER_STARTED_RULE = ("A claim that involves a run whose MI terms were weighted but never started (its eps_l gate "
                      "stayed closed, so it trained L_rec alone) gets no verdict either: that run did not test its "
                      "method.")


def final_value(run_dir: Path, key: str) -> float | None:
    """The last logged value of a training metric (``metrics.jsonl``), None if the run never logged it."""
    path = run_dir / LOG_NAME
    if not path.is_file():
        return None
    value = None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if key in record:
            value = record[key]
    return value


def collapse(run_dir: Path, results: dict, measures: dict[str, float]) -> str | None:
    """Why the run counts as collapsed (one line), or None for a healthy run; ``measures`` are the run's
    (:func:`mimae.report.measures.read_measures`), where its mask-mi numbers are."""
    l_max, chance = final_value(run_dir, "max_mi"), final_value(run_dir, "infonce_chance")
    if l_max is not None:
        described = f"{chance:.2f}" if chance is not None else None
        if chance is None:  # not logged: every (crop, mask) sample of the step is a view (older runs: images x N)
            views = results.get("samples_per_step") or results.get("effective_batch", 0) * results.get(
                "views_per_image", 1)
            chance = math.log(views - 1) if views > 2 else None
            described = f"ln({views - 1}) = {chance:.2f}" if chance is not None else None
        if chance is not None and l_max >= chance - CHANCE_MARGIN:
            return f"L_max {l_max:.2f} at chance ({described}, within {CHANCE_MARGIN:g} nats or above)"
    init, final = results.get("knn_init"), results.get("knn_final")
    if init is not None and final is not None and final <= init:
        return f"kNN {final:.2f} at or below its initialization's {init:.2f}"
    spread = latent_spread(measures)
    if spread is not None and spread[0] < SPREAD_FRACTION * spread[1]:
        return f"latent spread {spread[0]:.3f}, near 0 (its initialization's {spread[1]:.3f})"
    return None


def latent_spread(measures: dict[str, float]) -> tuple[float, float] | None:
    """(at the end, at initialization): the std of the unit-normalized latents of views of different images,
    sqrt(1 - their mean cosine), from the run's mask-mi measures; None where it has none with its initialization."""
    name = MASK_MI_KEYS["cosine_others"]
    if name not in measures or f"{name} (init)" not in measures:
        return None
    return math.sqrt(max(0.0, 1 - measures[name])), math.sqrt(max(0.0, 1 - measures[f"{name} (init)"]))


def never_started(results: dict, lambda_max: float, lambda_min: float) -> str | None:
    """Why the run trained less than its method (one line): its MI terms were weighted (``lambda_max``,
    ``lambda_min``) but never started (``gate_step`` null in its results); None otherwise, and for runs whose results
    predate ``gate_step`` (nothing to say)."""
    if "gate_step" not in results or results["gate_step"] is not None or not (lambda_max > 0 or lambda_min > 0):
        return None
    rec = results.get("gate_rec")
    return "its MI terms never started" + (f" (running L_rec {rec:.3f} at the end)" if rec is not None else "")
