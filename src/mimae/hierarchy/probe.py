"""Per-level probes: how well each level's true latents are predicted from frozen features, as R^2 on held-out data.

Features are token maps (N, L, F) on the patch grid (encoder tokens, or raw pixel patches as a baseline). A latent
node is read from the mean of the tokens of the patches its observable descendants cover, and one probe is shared by
all nodes of a level (the quadtree model mixes every node of a level with the same function), so each level gets
(images x nodes) samples. R^2 is scikit-learn's, variance-weighted over the latent's coordinates.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mimae.hierarchy.graph import LATENT, OBSERVABLE, heights

PROBES = ("linear", "kernel")
KERNEL_MAX_SAMPLES = 4000


def fit_r2(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
           kind: str = "linear", seed: int = 0) -> float:
    """Fit a probe on (n, F) -> (n, d) and return its R^2 on the test pair.

    ``linear``: standardized ridge regression with the penalty chosen by leave-one-out (RidgeCV). ``kernel``: RBF
    kernel ridge (gamma = 1 / F on standardized features) on at most ``KERNEL_MAX_SAMPLES`` random training samples.
    """
    if kind == "linear":
        probe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 8)))
    elif kind == "kernel":
        probe = make_pipeline(StandardScaler(), KernelRidge(alpha=1e-2, kernel="rbf", gamma=1.0 / train_x.shape[1]))
        if len(train_x) > KERNEL_MAX_SAMPLES:
            keep = np.random.default_rng(seed).choice(len(train_x), KERNEL_MAX_SAMPLES, replace=False)
            train_x, train_y = train_x[keep], train_y[keep]
    else:
        raise ValueError(f"probe kind {kind!r} is not one of {list(PROBES)}")
    probe.fit(train_x, train_y)
    return float(r2_score(test_y, probe.predict(test_x), multioutput="variance_weighted"))


def patch_weights(graph: nx.DiGraph, nodes: list, grid: int, patch: int) -> torch.Tensor:
    """(nodes, grid*grid) rows that average the patches covered by each node's observable descendants."""
    weights = torch.zeros(len(nodes), grid * grid)
    for i, node in enumerate(nodes):
        for leaf in nx.descendants(graph, node):
            if graph.nodes[leaf]["kind"] != OBSERVABLE:
                continue
            top, left, side = graph.nodes[leaf]["region"]
            rows = range(top // patch, (top + side - 1) // patch + 1)
            cols = range(left // patch, (left + side - 1) // patch + 1)
            for r in rows:
                for c in cols:
                    weights[i, r * grid + c] = 1.0
    return weights / weights.sum(dim=1, keepdim=True)


def nodes_by_level(graph: nx.DiGraph) -> dict[int, list]:
    """{level: latent nodes of that level}, each level's nodes sharing one dimension."""
    levels = heights(graph)
    out: dict[int, list] = {}
    for node in graph:
        if graph.nodes[node]["kind"] == LATENT:
            out.setdefault(levels[node], []).append(node)
    for level, nodes in out.items():
        dims = {graph.nodes[n]["dim"] for n in nodes}
        if len(dims) > 1:
            raise ValueError(f"level {level} mixes latent dimensions {sorted(dims)}; a shared probe needs one")
    return dict(sorted(out.items()))


def level_r2(tokens: torch.Tensor, latents: dict[str, torch.Tensor], graph: nx.DiGraph, patch: int,
             kind: str = "linear", fit_fraction: float = 0.5) -> dict[int, float]:
    """R^2 per latent level. tokens (N, L, F) on a square patch grid of ``patch``-pixel patches; latents
    {node: (N, dim)}. The first ``fit_fraction`` of the images fit the probes, the rest score them."""
    n, length, _ = tokens.shape
    grid = int(round(length ** 0.5))
    split = int(n * fit_fraction)
    if not 0 < split < n:
        raise ValueError(f"fit_fraction={fit_fraction} leaves no image to fit or to score the probe ({n} images)")
    result = {}
    for level, nodes in nodes_by_level(graph).items():
        pooled = torch.einsum("nlf,kl->nkf", tokens.float(), patch_weights(graph, nodes, grid, patch))
        targets = torch.stack([latents[node] for node in nodes], dim=1)  # (N, nodes, dim)
        result[level] = fit_r2(_rows(pooled[:split]), _rows(targets[:split]), _rows(pooled[split:]),
                               _rows(targets[split:]), kind)
    return result


def _rows(t: torch.Tensor) -> np.ndarray:
    """(N, nodes, F) -> (N * nodes, F) samples."""
    return t.reshape(-1, t.shape[-1]).numpy()
