"""Corruption robustness: top-1 error under the 15 ImageNet-C corruptions at 5 severities, and the mean corruption
error relative to a baseline model (Hendrycks & Dietterich, 2019; paper 000 Tab. 5).

For a model f and a corruption c: CE_c = 100 * sum_s E(f, c, s) / sum_s E(base, c, s), and mCE = mean_c CE_c.
The relative mCE uses the drop from the clean error instead: 100 * sum_s (E(f, c, s) - E(f, clean)) /
sum_s (E(base, c, s) - E(base, clean)), averaged over c.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from mimae.config import ConfigError
from mimae.data.sources import image_count
from mimae.eval.corruptions import CORRUPTIONS, corrupt
from mimae.progress import progress as progress_bar

Predict = Callable[[torch.Tensor], torch.Tensor]


def parse_names(text: str) -> list[str]:
    """``"all"`` or comma-separated corruption names -> a list, checked."""
    names = list(CORRUPTIONS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise ConfigError(f"robustness.corruptions={text!r}: unknown {unknown}; known: {', '.join(CORRUPTIONS)}")
    return names


def parse_severities(text: str) -> list[int]:
    try:
        levels = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        levels = []
    if not levels or any(not 1 <= s <= 5 for s in levels):
        raise ConfigError(f"robustness.severities={text!r} must be comma-separated integers in 1..5")
    return levels


@torch.no_grad()
def error_rate(predict: Predict, dataset: Dataset, batch_size: int, name: str | None = None, severity: int = 0,
               seed: int = 0) -> float:
    """Top-1 error (percent) of ``predict`` (float [0, 1] images (B, C, H, W) -> logits (B, K)) on uint8 images,
    corrupted by ``name`` at ``severity`` (clean when ``name`` is None). The corruption's randomness is seeded per
    (seed, corruption, severity), so every model sees the same corrupted images."""
    cell = list(CORRUPTIONS).index(name) * 10 + severity if name else 0
    generator = torch.Generator().manual_seed(seed * 1000 + cell)
    wrong = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        x = images.float() / 255
        if name is not None:
            x = corrupt(x, name, severity, generator)
        wrong += (predict(x).argmax(1).cpu() != labels).sum().item()
    return 100.0 * wrong / image_count(dataset)


def corruption_errors(predict: Predict, dataset: Dataset, names: list[str], severities: list[int],
                      batch_size: int = 256, seed: int = 0, progress: bool = True) -> dict:
    """{"clean_error": E_clean, "errors": {corruption: {severity: E}}} in percent."""
    cells = [(n, s) for n in names for s in severities]
    errors: dict[str, dict[str, float]] = {n: {} for n in names}
    for name, severity in progress_bar(cells, desc="corruptions", leave=False, enabled=progress):
        errors[name][str(severity)] = error_rate(predict, dataset, batch_size, name, severity, seed)
    return {"clean_error": error_rate(predict, dataset, batch_size, seed=seed), "errors": errors}


def _check_cover(errors: dict, baseline: dict) -> None:
    for name, by_severity in errors.items():
        missing = set(by_severity) - set(baseline.get(name, {}))
        if missing:
            raise ValueError(f"the baseline has no error for {name} at severities {sorted(missing)}")


def mean_corruption_error(errors: dict, baseline: dict) -> dict:
    """CE per corruption and their mean: {"ce": {c: CE_c}, "mce": mCE}; ``errors`` and ``baseline`` map
    corruption -> severity -> error (percent), over the severities of ``errors``."""
    _check_cover(errors, baseline)
    ce = {c: 100.0 * sum(e.values()) / sum(baseline[c][s] for s in e) for c, e in errors.items()}
    return {"ce": ce, "mce": sum(ce.values()) / len(ce)}


def relative_mean_corruption_error(errors: dict, clean: float, baseline: dict, baseline_clean: float) -> dict:
    """Relative CE per corruption (the degradation from the clean error, relative to the baseline's) and their
    mean: {"relative_ce": {c: rCE_c}, "relative_mce": mean}; a corruption that does not degrade the baseline at all
    has no relative CE (None) and is left out of the mean (None if no corruption is left)."""
    _check_cover(errors, baseline)
    rce = {}
    for c, e in errors.items():
        base_drop = sum(baseline[c][s] - baseline_clean for s in e)
        rce[c] = 100.0 * sum(v - clean for v in e.values()) / base_drop if base_drop else None
    defined = [v for v in rce.values() if v is not None]
    return {"relative_ce": rce, "relative_mce": sum(defined) / len(defined) if defined else None}
