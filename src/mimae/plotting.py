"""Helpers every analysis shares: matplotlib on the Agg backend, figure layout, and writing PNG + JSON results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DPI = 110


def panel_grid(count: int, columns: int = 3, panel_size: tuple[float, float] = (4.2, 3.2)):
    """A figure with ``count`` panels in rows of at most ``columns``; the unused axes are hidden.

    Returns (figure, list of ``count`` axes).
    """
    cols = max(1, min(columns, count))
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def show_image(ax, image: torch.Tensor | np.ndarray, title: str | None = None) -> None:
    """Draw a [0, 1] image (C, H, W) or (H, W) without axes; grayscale for one channel."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    ax.imshow(array.clip(0, 1), cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def legend_below(fig, ax, columns: int = 2) -> None:
    """One legend for the whole figure, under the panels, from the labelled lines of ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    rows = -(-len(labels) // columns)
    fig.subplots_adjust(bottom=(0.2 + 0.2 * rows) / fig.get_size_inches()[1])


def measure_bars(results: list[dict], measures: tuple[tuple[str, str | None, str, str | None], ...], path: str | Path,
                 title: str, columns: int = 4) -> Path:
    """One panel per measure (key, reference key or None, panel title, reference's legend entry), one bar per result
    (a dict with the keys and a ``label``), the reference as a marker on each bar; written as PNG."""
    fig, axes = panel_grid(len(measures), columns=columns, panel_size=(3.4, 3.2))
    positions = range(len(results))
    for ax, (key, reference, name, reference_name) in zip(axes, measures):
        ax.bar(positions, [r[key] for r in results], color=[f"C{i}" for i in positions])
        if reference is not None:
            ax.scatter(positions, [r[reference] for r in results], marker="_", s=400, color="black", zorder=3,
                       label=reference_name)
            ax.legend(fontsize=7, loc="best", framealpha=0.9)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(list(positions), [r["label"].split(" (")[0] for r in results], rotation=30, ha="right",
                      fontsize=7)
    return save_figure(fig, path, title)


def save_figure(fig, path: str | Path, title: str | None = None) -> Path:
    """Give the figure its title, lay it out (leaving room for a legend below), write it as PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if title:
        fig.suptitle(title, fontsize=11)
    bottom = fig.subplotpars.bottom if fig.legends else 0.0
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _plain(value: Any) -> Any:
    """Tensors, arrays and numpy scalars -> JSON-serializable Python values (NaN -> None)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: dict, path: str | Path) -> Path:
    """Write the numbers behind a figure as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=2) + "\n")
    return path
