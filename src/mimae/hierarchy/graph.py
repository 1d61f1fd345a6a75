"""The graph of paper 003's hierarchical data-generating process (Section 2.1, Assumption 1).

A graph is a ``networkx.DiGraph`` whose edges point from parents to children. Every node has the attributes

- ``kind``: ``"latent"`` or ``"observable"``; observables are blocks of pixels and have no children, so there is no
  edge between two observables;
- ``dim``: its dimension; a node is an invertible mix of its parents and fresh noise, so ``dim`` is at least the sum
  of its parents' dimensions (the rest is exogenous noise);
- ``mixing``: the key of its mixing function; nodes sharing a key share the function (a stationary image model);
- observables only: ``region = (top, left, side)``, the square of pixels they fill; their ``dim`` is
  ``channels * side**2``. The regions tile the image.

The graph attribute ``graph.graph["channels"]`` gives the colour channels. The level of a node is its height: 0 for
observables, 1 for the latents right above them, and one more than its highest child above that.
"""

from __future__ import annotations

import networkx as nx

LATENT, OBSERVABLE = "latent", "observable"


def quadtree(image_size: int = 32, depth: int = 4, branching: int = 2, root_dim: int = 4, dim_growth: int = 2,
             channels: int = 3) -> nx.DiGraph:
    """A tree over the pixel grid: 1 root, then ``branching**2`` children per node for ``depth`` latent levels, then
    the observable pixel blocks (``image_size / branching**depth`` pixels a side).

    Latents ``z{k}_{row}_{col}`` at depth ``k`` (0 = root) have ``root_dim + k * dim_growth`` dimensions and share one
    mixing function per depth; observables are ``x_{row}_{col}``.
    """
    leaves = branching ** depth
    if image_size % leaves:
        raise ValueError(f"image_size={image_size} is not divisible by branching**depth={leaves}")
    side = image_size // leaves
    graph: nx.DiGraph = nx.DiGraph(channels=channels)
    for k in range(depth + 1):
        per_side = branching ** k
        for row in range(per_side):
            for col in range(per_side):
                name = node_name(k, row, col, depth)
                if k < depth:
                    graph.add_node(name, kind=LATENT, dim=root_dim + k * dim_growth, mixing=f"depth{k}")
                else:
                    graph.add_node(name, kind=OBSERVABLE, dim=channels * side * side, mixing="pixels",
                                   region=(row * side, col * side, side))
                if k:
                    graph.add_edge(node_name(k - 1, row // branching, col // branching, depth), name)
    return graph


def node_name(k: int, row: int, col: int, depth: int) -> str:
    """Name of the quadtree node at depth ``k`` (``depth``: the observables' depth)."""
    return f"x_{row}_{col}" if k == depth else f"z{k}_{row}_{col}"


def latents(graph: nx.DiGraph) -> list:
    return [n for n, kind in graph.nodes(data="kind") if kind == LATENT]


def observables(graph: nx.DiGraph) -> list:
    return [n for n, kind in graph.nodes(data="kind") if kind == OBSERVABLE]


def image_size(graph: nx.DiGraph) -> int:
    """Side of the square image the observables tile."""
    return max(top + side for top, _, side in (graph.nodes[n]["region"] for n in observables(graph)))


def heights(graph: nx.DiGraph) -> dict:
    """Level of every node: 0 for observables, else 1 + the highest level among its children."""
    level: dict = {}
    for node in reversed(list(nx.topological_sort(graph))):
        children = list(graph.successors(node))
        level[node] = 1 + max(level[c] for c in children) if children else 0
    return level


def check_graph(graph: nx.DiGraph) -> None:
    """Raise ``ValueError`` naming the node when ``graph`` is not a valid hierarchical model (see the module doc)."""
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError(f"the graph has a cycle: {nx.find_cycle(graph)}")
    channels = graph.graph.get("channels")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"graph.graph['channels'] must be a positive integer, got {channels!r}")
    for node, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind not in (LATENT, OBSERVABLE):
            raise ValueError(f"node {node!r} has kind={kind!r}; expected {LATENT!r} or {OBSERVABLE!r}")
        parents_dim = sum(graph.nodes[p]["dim"] for p in graph.predecessors(node))
        if data.get("dim", 0) < max(1, parents_dim):
            raise ValueError(f"node {node!r} has dim={data.get('dim')!r} but its parents have {parents_dim} "
                             f"dimensions; an invertible mix needs at least as many")
        if kind == OBSERVABLE:
            if graph.out_degree(node):
                raise ValueError(f"observable {node!r} has children {list(graph.successors(node))}")
            if not graph.in_degree(node):
                raise ValueError(f"observable {node!r} has no latent parent")
            side = data["region"][2]
            if data["dim"] != channels * side * side:
                raise ValueError(f"observable {node!r} covers {side}x{side} pixels of {channels} channels but has "
                                 f"dim={data['dim']}")
        elif not any(graph.nodes[d]["kind"] == OBSERVABLE for d in nx.descendants(graph, node)):
            raise ValueError(f"latent {node!r} has no observable descendant")
    _check_tiling(graph)


def _check_tiling(graph: nx.DiGraph) -> None:
    size = image_size(graph)
    covered = [[None] * size for _ in range(size)]
    for node in observables(graph):
        top, left, side = graph.nodes[node]["region"]
        for r in range(top, top + side):
            for c in range(left, left + side):
                if covered[r][c] is not None:
                    raise ValueError(f"observables {covered[r][c]!r} and {node!r} overlap at pixel ({r}, {c})")
                covered[r][c] = node
    holes = [(r, c) for r in range(size) for c in range(size) if covered[r][c] is None]
    if holes:
        raise ValueError(f"the observables leave {len(holes)} pixels uncovered, the first at {holes[0]}")
