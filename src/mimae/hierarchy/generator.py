"""Sampling from the hierarchical latent model: each node = invertible mix of its parents and fresh noise.

For a node with parents ``p_1..p_k`` (dimensions summing to ``d_p``) and dimension ``d``, the generator draws
``d - d_p`` exogenous noise coordinates ``eps`` and sets

    v = f(Q [p_1; ...; p_k; noise * eps]),      f(u) = (u + a * tanh(u)) / s(a)
    z = (v_0, sign(v_0) * v_1, ..., sign(v_0) * v_{d-1})      (the sign gate, optional)

with ``Q`` a random orthogonal ``d x d`` matrix (one per mixing key) and ``f`` strictly increasing (``s(a)`` keeps a
standard normal input at unit variance). Every step is invertible (the gate is its own inverse: ``z_0 = v_0`` gives
the sign back), so every node determines its parents: the parents are the first ``d_p`` coordinates of
``Q^T f^{-1}(gate(z))`` (:meth:`HierarchicalModel.parents_from`). Without the gate, the conditional mean of a child is
a smooth monotone function of its parent and every level can be read linearly off averaged pixels; the gate hides
the parent from linear read-outs (a sign that depends on noise multiplies it), so recovering a level takes a
nonlinear inversion of the mixing, which is what a probe of a learned encoder can then measure. Roots are standard
normal. Observables are reshaped into their pixel blocks, which gives the image.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch

from mimae.hierarchy.graph import OBSERVABLE, check_graph, image_size


def activation_scale(strength: float) -> float:
    """Standard deviation of ``u + strength * tanh(u)`` for ``u ~ N(0, 1)`` (Gauss-Hermite quadrature)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    values = nodes + strength * np.tanh(nodes)
    return math.sqrt(float(np.sum(weights * values ** 2) / np.sum(weights)))


def random_orthogonal(dim: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal (dim, dim) float64 matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class HierarchicalModel:
    """The data-generating process of a graph (see :mod:`mimae.hierarchy.graph`), deterministic from ``seed``.

    ``noise`` is the standard deviation of the exogenous noise of non-root nodes, ``nonlinearity`` the strength ``a``
    of the elementwise map. The mixing functions are drawn from ``seed``; the samples from the seed given to
    :meth:`sample`.
    """

    def __init__(self, graph: nx.DiGraph, noise: float = 1.0, nonlinearity: float = 0.5, sign_gate: bool = True,
                 seed: int = 0):
        check_graph(graph)
        self.graph, self.noise, self.strength, self.sign_gate = graph, noise, nonlinearity, sign_gate
        self.scale = activation_scale(nonlinearity)
        self.order = list(nx.topological_sort(graph))
        self.parents = {n: sorted(graph.predecessors(n), key=self.order.index) for n in self.order}
        self.channels = graph.graph["channels"]
        self.size = image_size(graph)
        generator = torch.Generator().manual_seed(seed)
        self.mixing: dict[str, torch.Tensor] = {}
        for node in self.order:
            key, dim = graph.nodes[node]["mixing"], graph.nodes[node]["dim"]
            if key not in self.mixing:
                self.mixing[key] = random_orthogonal(dim, generator)
            elif self.mixing[key].shape[0] != dim:
                raise ValueError(f"node {node!r} (dim {dim}) shares mixing key {key!r} with nodes of dim "
                                 f"{self.mixing[key].shape[0]}")

    def activation(self, u: torch.Tensor) -> torch.Tensor:
        return self.gate((u + self.strength * torch.tanh(u)) / self.scale)

    def gate(self, v: torch.Tensor) -> torch.Tensor:
        """Multiply every coordinate but the first by the sign of the first (an involution); identity if off."""
        if not self.sign_gate or v.shape[1] < 2:
            return v
        sign = torch.where(v[:, :1] < 0, -1.0, 1.0).to(v.dtype)
        return torch.cat([v[:, :1], v[:, 1:] * sign], dim=1)

    def inverse_activation(self, z: torch.Tensor, iterations: int = 30) -> torch.Tensor:
        """Undo the gate, then Newton's method on the strictly increasing map (its slope is at least 1 / scale)."""
        target = self.gate(z) * self.scale
        u = target / (1 + self.strength)
        for _ in range(iterations):
            t = torch.tanh(u)
            u = u - (u + self.strength * t - target) / (1 + self.strength * (1 - t * t))
        return u

    def matrix(self, node) -> torch.Tensor:
        return self.mixing[self.graph.nodes[node]["mixing"]]

    def sample(self, n: int, seed: int) -> tuple[dict, torch.Tensor]:
        """``n`` draws: (values of every node {name: (n, dim) float64}, images (n, C, H, W) float32)."""
        generator = torch.Generator().manual_seed(seed)
        values: dict = {}
        for node in self.order:
            dim = self.graph.nodes[node]["dim"]
            inputs = [values[p] for p in self.parents[node]]
            parent_dim = sum(v.shape[1] for v in inputs)
            eps = torch.randn(n, dim - parent_dim, generator=generator, dtype=torch.float64)
            if not inputs:
                values[node] = eps
                continue
            mixed = torch.cat(inputs + [self.noise * eps], dim=1) @ self.matrix(node).T
            values[node] = self.activation(mixed)
        return values, self.render(values)

    def render(self, values: dict) -> torch.Tensor:
        """Place the observables' values into their pixel blocks: (n, C, H, W) float32."""
        n = next(iter(values.values())).shape[0]
        images = torch.empty(n, self.channels, self.size, self.size)
        for node, data in self.graph.nodes(data=True):
            if data["kind"] == OBSERVABLE:
                top, left, side = data["region"]
                block = values[node].reshape(n, self.channels, side, side)
                images[:, :, top:top + side, left:left + side] = block.float()
        return images

    def parents_from(self, node, value: torch.Tensor) -> dict:
        """Invert one node's mix: its value (n, dim) -> {parent: (n, parent dim)} (empty for a root)."""
        inputs = self.inverse_activation(value.double()) @ self.matrix(node)
        out, start = {}, 0
        for parent in self.parents[node]:
            dim = self.graph.nodes[parent]["dim"]
            out[parent] = inputs[:, start:start + dim]
            start += dim
        return out


def labels_from_root(root: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(n, d >= 2) root values -> (n,) int64: the equal angular sector of the first two coordinates."""
    angle = torch.atan2(root[:, 1], root[:, 0]) + math.pi  # (0, 2 pi]
    return (angle / (2 * math.pi) * num_classes).long().clamp(0, num_classes - 1)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Float images of unit scale -> uint8, with +-3 standard deviations spanning 0..255."""
    return (128 + images * (127.5 / 3)).round().clamp(0, 255).to(torch.uint8)
