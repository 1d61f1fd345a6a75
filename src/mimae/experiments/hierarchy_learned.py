"""The learned side of paper 003: pretrain MAE on the hierarchical data at several mask ratios, then probe how well
each level's true latents are recovered from the frozen encoder, beside the theory's prediction for the same unit.

Baselines with the same probe: the raw pixel patches, and the encoder at its random initialization. Over several
seeds (one dataset), each level's learned R^2 is paired with the random initialization's of the same seed: does
training move what the probe sees?
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from mimae.config import Config, load_config
from mimae.data import normalize
from mimae.data.sources import DataInfo
from mimae.hierarchy import dataset as hdata
from mimae.hierarchy.graph import heights
from mimae.hierarchy.probe import level_r2
from mimae.hierarchy.theory import theory_curve
from mimae.models import Encoder, build_encoder
from mimae.plotting import legend_below, panel_grid, save_figure, write_json
from mimae.presets import QUICK
from mimae.report.claims import mean_and_se, one_sided_p, verdict
from mimae.runs import load_encoder
from mimae.workflow import pretrain

LEARNED_RATIOS = (0.1, 0.5, 0.75, 0.9)


@torch.no_grad()
def encoder_tokens(encoder: Encoder, images: torch.Tensor, info: DataInfo, batch_size: int = 500) -> torch.Tensor:
    """Patch tokens after the final norm of unmasked images: uint8 (N, C, H, W) -> (N, L, D) float32."""
    encoder.eval()
    out = [encoder(normalize(batch, info))[:, 1:] for (batch,) in DataLoader(
        torch.utils.data.TensorDataset(images), batch_size=batch_size)]
    return torch.cat(out).float()


def pixel_tokens(images: torch.Tensor, info: DataInfo, patch: int) -> torch.Tensor:
    """The normalized pixels of each patch as its token: uint8 (N, C, H, W) -> (N, L, C * patch * patch)."""
    x = normalize(images, info)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, (h // patch) * (w // patch), c * patch * patch)


def probe_encoder(encoder: Encoder, data: hdata.HierarchicalData, patch: int, kind: str) -> dict[int, float]:
    """R^2 per level of ``encoder`` on the test split (first half fits the probes, second half scores them)."""
    return level_r2(encoder_tokens(encoder, data.test.images, data.info), data.test_latents, data.graph, patch, kind)


def run_config(base: dict, data_dir: Path, ratio: float, unit: int | None) -> Config:
    """The pretraining config of one run: the small ``--quick`` model on the hierarchical data at ``ratio``.

    Crops keep the whole image (``data.crop_scale_min=1``), so the pixel grid stays aligned with the latent tree up to
    RandomResizedCrop's aspect-ratio jitter; ``base`` overrides any of these."""
    overrides = {"data.train_limit": None, "data.crop_scale_min": 1.0, "train.knn_at_init": False, **base,
                 "data.dataset": "hierarchical", "data.data_dir": str(data_dir), "mask.ratio": ratio, "mask.unit": unit}
    return load_config(overrides={**QUICK, "method": "mae", **overrides})


def run_learned(output_dir: str | Path, ratios: tuple[float, ...] = LEARNED_RATIOS, unit: int | None = None,
                overrides: dict | None = None, probe: str = "linear", theory_masks: int = 50,
                data_dir: str | Path | None = None) -> dict:
    """Pretrain MAE at each ratio (``output_dir/mae-r<ratio>-u<unit>``) on the dataset in ``data_dir`` (default
    ``output_dir/data``, generated there from the config's ``hierarchy`` section when absent), probe every level, and
    write ``learned.json``, ``learned.md``, ``learned.png``."""
    out = Path(output_dir)
    data_dir = Path(data_dir or out / "data")
    base = dict(overrides or {})
    first = run_config(base, data_dir, ratios[0], unit)
    if not (data_dir / hdata.DATASET_FILE).is_file():
        hdata.save(hdata.generate(first.hierarchy), data_dir)
    data = hdata.load(data_dir)
    patch = first.model.patch_size
    unit_px = unit or patch

    torch.manual_seed(first.train.seed)
    r2 = {"pixels": level_r2(pixel_tokens(data.test.images, data.info, patch), data.test_latents, data.graph, patch,
                             probe),
          "random init": probe_encoder(build_encoder(first.model, first.data.image_size, data.info.channels), data,
                                                patch, probe)}
    knn = {}
    for ratio in ratios:
        run_dir = out / f"mae-r{ratio:g}-u{unit_px}"
        results = pretrain(run_config(base, data_dir, ratio, unit), run_dir, resume="auto")  # reuses finished runs
        encoder = load_encoder(run_dir)[0]
        r2[f"{ratio:g}"] = probe_encoder(encoder, data, patch, probe)
        knn[f"{ratio:g}"] = results.get("knn_final")
    theory = theory_curve(data.graph, (unit_px,), tuple(ratios), theory_masks, progress=False)
    result = {"unit": unit_px, "ratios": list(ratios), "probe": probe, "r2": r2, "knn_final": knn,
              "theory_level_share": theory["level_share"][0], "theory_mean_level": theory["mean_level"][0],
              "levels": sorted(next(iter(r2.values()))), "pretrain_config": first.to_dict()}
    write_json(result, out / "learned.json")
    (out / "learned.md").write_text(learned_table(result) + "\n")
    plot_learned(result, out / "learned.png", max(heights(data.graph).values()))
    return result


def run_learned_seeds(output_dir: str | Path, seeds: tuple[int, ...], ratios: tuple[float, ...] = LEARNED_RATIOS,
                      unit: int | None = None, overrides: dict | None = None, probe: str = "linear",
                      data_dir: str | Path | None = None) -> dict:
    """:func:`run_learned` at each seed (``output_dir/seed-K``, one dataset), then ``output_dir/learned.{json,md,png}``
    over them: every R^2 and kNN the mean over the seeds, ``per_seed`` each seed's R^2, and ``against_init`` each
    ratio's R^2 per level minus the random initialization's, paired by seed (d, se, n, verdict)."""
    out = Path(output_dir)
    data_dir = Path(data_dir or out / "data")
    runs = [run_learned(out / f"seed-{seed}", ratios, unit, {**(overrides or {}), "train.seed": seed}, probe,
                        data_dir=data_dir) for seed in seeds]
    first, levels = runs[0], runs[0]["levels"]
    r2 = {name: {lv: float(np.mean([run["r2"][name][lv] for run in runs])) for lv in levels} for name in first["r2"]}
    against_init: dict[str, dict[int, dict]] = {}
    for ratio in first["knn_final"]:
        against_init[ratio] = {}
        for lv in levels:
            d, se = mean_and_se([run["r2"][ratio][lv] - run["r2"]["random init"][lv] for run in runs])
            against_init[ratio][lv] = {"d": d, "se": se, "n": len(runs), "verdict": verdict(d, se)}
    knn = {ratio: float(np.mean([run["knn_final"][ratio] for run in runs])) for ratio in first["knn_final"]}
    result = {**first, "seeds": list(seeds), "r2": r2, "knn_final": knn, "against_init": against_init,
              "per_seed": {seed: run["r2"] for seed, run in zip(seeds, runs)}}
    write_json(result, out / "learned.json")
    (out / "learned.md").write_text(learned_table(result) + "\n")
    plot_learned(result, out / "learned.png", max(levels))
    return result


def against_init_table(result: dict) -> str:
    """Markdown: per ratio and level, the learned R^2 minus the random initialization's, paired by seed, with the
    paired t-test's one-sided p for "training raised the R^2"."""
    levels = result["levels"]
    lines = ["| MAE ratio | " + " | ".join(f"level {lv}: d ± se (verdict, p)" for lv in levels) + " |",
             "|---" * (len(levels) + 1) + "|"]
    for ratio, by_level in result["against_init"].items():
        lines.append(f"| {ratio} | " + " | ".join(paired_cell(by_level[lv]) for lv in levels) + " |")
    return "\n".join(lines)


def paired_cell(c: dict) -> str:
    """One level's d ± se (verdict, p); only d below two seeds, no p without spread."""
    if c["se"] is None:
        return f"{c['d']:+.3f}"
    p = one_sided_p(c["d"], c["se"], c["n"])
    return f"{c['d']:+.3f} ± {c['se']:.3f} ({c['verdict']}" + ("" if p is None else f", p {p:.3f}") + ")"


def learned_table(result: dict) -> str:
    """Markdown: one row per run (baselines first), R^2 per level, the best level and the kNN accuracy (over several
    seeds: their means)."""
    levels = result["levels"]
    lines = ["| features | " + " | ".join(f"R^2 level {lv}" for lv in levels) + " | best level | kNN % |",
             "|---" * (len(levels) + 3) + "|"]
    for name, scores in result["r2"].items():
        best = max(levels, key=lambda lv: scores[lv])
        knn = result["knn_final"].get(name)
        label = f"MAE ratio {name}" if name in result["knn_final"] else name
        lines.append(f"| {label} | " + " | ".join(f"{scores[lv]:.3f}" for lv in levels) + f" | {best} | "
                     + ("-" if knn is None else f"{knn:.1f}") + " |")
    return "\n".join(lines)


def plot_learned(result: dict, path: str | Path, top_level: int) -> Path:
    """Left: the theory's share of dim(c) per level for the trained unit; right: the learned R^2 per level, with the
    baselines as dotted lines; both against the mask ratio."""
    fig, (ax_theory, ax_r2) = panel_grid(2, panel_size=(4.8, 3.6))
    ratios = np.asarray(result["ratios"])
    share = np.asarray(result["theory_level_share"], dtype=float)
    colors = {lv: f"C{i}" for i, lv in enumerate(result["levels"])}
    for lv in result["levels"]:
        ax_theory.plot(ratios, 100 * share[:, lv - 1], marker="o", color=colors[lv], label=f"level {lv}")
        learned = [result["r2"][f"{r:g}"][lv] for r in ratios]
        label = f"latent level {lv}" + (" (lowest)" if lv == 1 else "")
        ax_r2.plot(ratios, learned, marker="o", color=colors[lv], label=label)
        ax_r2.axhline(result["r2"]["random init"][lv], color=colors[lv], linestyle=":", linewidth=1)
    ax_theory.set_ylabel("% of dim(c) at the level")
    ax_theory.set_title(f"theory: c for unit {result['unit']}px", fontsize=9)
    ax_r2.set_ylabel(f"held-out R^2 ({result['probe']} probe)")
    ax_r2.set_title("learned: MAE encoder (dotted: random init)", fontsize=9)
    for ax in (ax_theory, ax_r2):
        ax.set_xlabel("mask ratio")
        ax.grid(alpha=0.3)
    legend_below(fig, ax_r2, columns=len(result["levels"]))
    return save_figure(fig, path, f"Which latent levels MAE recovers vs the theory ({top_level} latent levels)")
