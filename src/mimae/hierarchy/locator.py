"""Theorem 1 of paper 003 on a graph: the shared latents c between the masked and the visible pixels.

The project's reading (DESIGN.md section 8; the paper's Algorithm 1 is not available): c is a minimum-dimension set
of latent nodes such that

- it separates: every path of the undirected skeleton from a masked observable to a visible one passes through c
  (in a tree these paths are exactly the treks, the routes along which two pixels share a common cause);
- it is recoverable from both sides: only latents that are ancestors of both a masked and a visible observable may
  enter c. Every node determines its parents (the mixing is invertible), so these are the latents that both the
  visible part and the masked part determine.

Every skeleton path between the two sides holds such a common ancestor, so c always exists. It is found as a minimum
vertex cut with node capacities = dimensions (max-flow / min-cut); among cuts of equal dimension the one nearest the
masked side is returned. Its level is the dimension-weighted mean of its nodes' levels (0 = pixels; see
:func:`mimae.hierarchy.graph.heights`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
from networkx.algorithms.flow import boykov_kolmogorov

from mimae.hierarchy.graph import heights, observables

SOURCE, SINK = ("source",), ("sink",)


@dataclass(frozen=True)
class SharedLatents:
    """The located c: its nodes, total dimension, each node's level and the dimension-weighted mean level."""

    nodes: frozenset
    dim: int
    levels: dict
    mean_level: float


def split_observables(graph: nx.DiGraph, pixel_mask: np.ndarray) -> tuple[set, set]:
    """(masked, visible) observables of a boolean (H, W) pixel mask (True = masked).

    A block must be wholly masked or wholly visible: the masking unit must be a multiple of the block side.
    """
    masked, visible = set(), set()
    for node in observables(graph):
        top, left, side = graph.nodes[node]["region"]
        block = pixel_mask[top:top + side, left:left + side]
        if block.all():
            masked.add(node)
        elif not block.any():
            visible.add(node)
        else:
            raise ValueError(f"the mask covers observable {node!r} ({side}x{side} pixels at ({top}, {left})) only "
                             f"partly; use a masking unit that is a multiple of {side} pixels")
    return masked, visible


def common_ancestors(graph: nx.DiGraph, masked: Iterable, visible: Iterable) -> set:
    """Latents that are ancestors of at least one masked and at least one visible observable."""
    return ancestors_of(graph, masked) & ancestors_of(graph, visible)


def ancestors_of(graph: nx.DiGraph, nodes: Iterable) -> set:
    """Every ancestor of any node of ``nodes`` (one search from all of them at once)."""
    found, stack = set(), list(nodes)
    while stack:
        for parent in graph.predecessors(stack.pop()):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


def separates(graph: nx.DiGraph, cut: Iterable, masked: Iterable, visible: Iterable) -> bool:
    """True when no skeleton path joins ``masked`` to ``visible`` once the nodes of ``cut`` are removed."""
    skeleton = graph.to_undirected(as_view=True).subgraph(set(graph) - set(cut))
    reached = set()
    for node in masked:
        if node not in reached:
            reached |= nx.node_connected_component(skeleton, node)
    return not (reached & set(visible))


def flow_network(graph: nx.DiGraph, masked: set, visible: set, allowed: set) -> nx.DiGraph:
    """Each node split in (node, "in") -> (node, "out"), with capacity = its dimension if it may be cut (no
    capacity attribute = infinite otherwise); skeleton edges both ways, uncuttable; source -> masked,
    visible -> sink."""
    net: nx.DiGraph = nx.DiGraph()
    for node in graph:
        if node in allowed:
            net.add_edge((node, "in"), (node, "out"), capacity=graph.nodes[node]["dim"])
        else:
            net.add_edge((node, "in"), (node, "out"))
    for a, b in graph.edges:
        net.add_edge((a, "out"), (b, "in"))
        net.add_edge((b, "out"), (a, "in"))
    for node in masked:
        net.add_edge(SOURCE, (node, "in"))
    for node in visible:
        net.add_edge((node, "out"), SINK)
    return net


def locate(graph: nx.DiGraph, masked: Iterable, visible: Iterable, levels: dict | None = None) -> SharedLatents:
    """c for a mask given as its masked and visible observables (see the module doc). ``levels`` may pass the
    precomputed :func:`heights` of ``graph``."""
    masked, visible = set(masked), set(visible)
    levels = levels if levels is not None else heights(graph)
    if not masked or not visible:
        return SharedLatents(frozenset(), 0, {}, float("nan"))
    allowed = common_ancestors(graph, masked, visible)
    net = flow_network(graph, masked, visible, allowed)
    dim, (source_side, _) = nx.minimum_cut(net, SOURCE, SINK, flow_func=boykov_kolmogorov)
    nodes = frozenset(n for n in allowed if (n, "in") in source_side and (n, "out") not in source_side)
    node_levels = {n: levels[n] for n in nodes}
    mean = sum(levels[n] * graph.nodes[n]["dim"] for n in nodes) / dim
    return SharedLatents(nodes, int(dim), node_levels, float(mean))


def locate_pixels(graph: nx.DiGraph, pixel_mask: np.ndarray, levels: dict | None = None) -> SharedLatents:
    """c for a boolean (H, W) pixel mask (True = masked)."""
    return locate(graph, *split_observables(graph, np.asarray(pixel_mask, dtype=bool)), levels)
