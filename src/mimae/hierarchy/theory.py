"""The theory's prediction (paper 003, Section 2.3): the level of c as a function of mask ratio and masking unit.

For each (unit, ratio) point, random masks are drawn with the project's masking convention (MAE's argsort of uniform
noise over the units; ``int(units * (1 - ratio))`` units kept, see :mod:`mimae.masking`) and Theorem 1's c is located
for each (:mod:`mimae.hierarchy.locator`). No training is involved.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import torch

from mimae.hierarchy.graph import heights, image_size
from mimae.hierarchy.locator import SharedLatents, locate_pixels
from mimae.masking import random_masks
from mimae.plotting import panel_grid, save_figure, write_json
from mimae.progress import progress as progress_bar

RATIOS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def pixel_masks(size: int, unit: int, ratio: float, count: int, generator: torch.Generator) -> np.ndarray:
    """``count`` random masks of ``unit`` x ``unit`` pixel units: bool (count, size, size), True = masked."""
    if size % unit:
        raise ValueError(f"masking unit {unit} does not tile the {size}px image")
    grid = size // unit
    masks = random_masks(count, (grid, grid), ratio, generator=generator).mask.reshape(count, grid, grid)
    return masks.repeat_interleave(unit, 1).repeat_interleave(unit, 2).bool().numpy()


def theory_curve(graph: nx.DiGraph, units: tuple[int, ...], ratios: tuple[float, ...] = RATIOS,
                 masks_per_point: int = 20, seed: int = 0, progress: bool = True) -> dict:
    """Mean level of c over ``masks_per_point`` random masks per (unit, ratio).

    Returns {"units", "ratios", "masks_per_point", "seed", "mean_level" and "std_level" (units, ratios) arrays,
    "mean_dim" (units, ratios) and "level_share" (units, ratios, levels): the mean fraction of c's dimension at each
    level 1..top}, "above_floor" (units, ratios): the mean fraction of c's dimension above the lowest level present
    in c; points where the ratio keeps no unit visible, or masks none, are NaN.
    """
    levels = heights(graph)
    top = max(levels.values())
    size = image_size(graph)
    shape = (len(units), len(ratios))
    mean, std, dims = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    share = np.full(shape + (top,), np.nan)
    above = np.full(shape, np.nan)
    generator = torch.Generator().manual_seed(seed)
    points = [(i, j) for i in range(len(units)) for j in range(len(ratios))]
    for i, j in progress_bar(points, desc="theory", enabled=progress):
        grid_units = (size // units[i]) ** 2
        if int(grid_units * (1 - ratios[j])) < 1 or int(grid_units * (1 - ratios[j])) == grid_units:
            continue  # no visible unit, or no masked one
        shared = [locate_pixels(graph, m, levels) for m in pixel_masks(size, units[i], ratios[j],
                                                                        masks_per_point, generator)]
        mean[i, j] = np.mean([c.mean_level for c in shared])
        std[i, j] = np.std([c.mean_level for c in shared])
        dims[i, j] = np.mean([c.dim for c in shared])
        shares = np.array([level_share(graph, c, top) for c in shared])
        share[i, j] = shares.mean(axis=0)
        above[i, j] = np.mean([1 - row[np.flatnonzero(row)[0]] for row in shares])
    return {"units": list(units), "ratios": list(ratios), "masks_per_point": masks_per_point, "seed": seed,
            "mean_level": mean, "std_level": std, "mean_dim": dims, "level_share": share,
            "above_floor": above}


def level_share(graph: nx.DiGraph, shared: SharedLatents, top: int) -> np.ndarray:
    """(top,) fraction of c's dimension held by the nodes of each level 1..top."""
    out = np.zeros(top)
    for node, level in shared.levels.items():
        out[level - 1] += graph.nodes[node]["dim"] / shared.dim
    return out


def plot_theory(result: dict, path: str | Path, top_level: int) -> Path:
    """Two panels against the mask ratio, one line per masking unit: the mean level of c, and the share of c's
    dimension above the lowest level it holds."""
    fig, (ax_level, ax_above) = panel_grid(2, panel_size=(4.8, 3.6))
    ratios = np.asarray(result["ratios"])
    for unit, mean, std, above in zip(result["units"], result["mean_level"], result["std_level"],
                                      result["above_floor"]):
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        ax_level.plot(ratios, mean, marker="o", markersize=3, label=f"unit {unit}px")
        ax_level.fill_between(ratios, mean - std, mean + std, alpha=0.15)
        ax_above.plot(ratios, 100 * np.asarray(above, dtype=float), marker="o", markersize=3, label=f"unit {unit}px")
    ax_level.set_ylabel("mean level of c (0 = pixels)")
    ax_level.set_ylim(0.8, top_level + 0.2)
    ax_level.set_yticks(range(1, top_level + 1))
    ax_level.set_title("dimension-weighted level of c", fontsize=9)
    ax_above.set_ylabel("% of dim(c) above its lowest level")
    ax_above.set_title("higher-level part of c", fontsize=9)
    for ax in (ax_level, ax_above):
        ax.set_xlabel("mask ratio")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    title = f"Theorem 1 on the quadtree: where c lies ({result['masks_per_point']} masks a point)"
    return save_figure(fig, path, title)


def theory_table(result: dict) -> str:
    """Markdown table: one row per ratio, one column per unit, mean level of c (+- std over masks)."""
    head = "| ratio | " + " | ".join(f"unit {u}px" for u in result["units"]) + " |"
    lines = [head, "|---" * (len(result["units"]) + 1) + "|"]
    for j, ratio in enumerate(result["ratios"]):
        cells = []
        for i in range(len(result["units"])):
            m, s = float(result["mean_level"][i][j]), float(result["std_level"][i][j])
            cells.append("-" if np.isnan(m) else f"{m:.2f} +- {s:.2f}")
        lines.append(f"| {ratio:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_theory(graph: nx.DiGraph, output_dir: str | Path, units: tuple[int, ...], ratios: tuple[float, ...] = RATIOS,
               masks_per_point: int = 20, seed: int = 0) -> dict:
    """Compute the curve and write ``theory.json``, ``theory.md`` and ``theory.png`` into ``output_dir``."""
    out = Path(output_dir)
    result = theory_curve(graph, units, ratios, masks_per_point, seed)
    write_json(result, out / "theory.json")
    (out / "theory.md").write_text(theory_table(result) + "\n")
    plot_theory(result, out / "theory.png", max(heights(graph).values()))
    return result
