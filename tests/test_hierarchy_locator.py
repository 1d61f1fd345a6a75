"""Theorem 1's shared latents c: paper 003 Fig. 4 cases, separation, minimality by brute force, the theory curve."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch

from mimae.hierarchy.graph import LATENT, OBSERVABLE, check_graph, heights, quadtree
from mimae.hierarchy.locator import common_ancestors, locate, locate_pixels, separates, split_observables
from mimae.hierarchy.theory import pixel_masks, theory_curve


def four_by_four(parents_of_quadrant: dict[str, list[str]], dims: dict[str, int]) -> nx.DiGraph:
    """A 4x4-pixel image of 1-pixel observables; quadrant latent ``q{0..3}`` owns the 2x2 pixels of its quadrant;
    the latents above are wired by ``parents_of_quadrant`` (child: parents, in generation order)."""
    graph = nx.DiGraph(channels=3)
    for name, dim in dims.items():
        graph.add_node(name, kind=LATENT, dim=dim, mixing=name)
    for child, parents in parents_of_quadrant.items():
        graph.add_edges_from((p, child) for p in parents)
    for r in range(4):
        for c in range(4):
            graph.add_node(f"x{r}{c}", kind=OBSERVABLE, dim=3, mixing="pixels", region=(r, c, 1))
            graph.add_edge(f"q{2 * (r // 2) + c // 2}", f"x{r}{c}")
    check_graph(graph)
    return graph


def fig4_tree() -> nx.DiGraph:
    """Paper 003 Fig. 4 style: z0 -> (z1 left half, z2 right half) -> the quadrants q0..q3 -> pixels."""
    wiring = {"z1": ["z0"], "z2": ["z0"], "q0": ["z1"], "q2": ["z1"], "q1": ["z2"], "q3": ["z2"]}
    return four_by_four(wiring, {"z0": 1, "z1": 2, "z2": 2, "q0": 3, "q1": 3, "q2": 3, "q3": 3})


def shared_parents_dag() -> nx.DiGraph:
    """Two roots, middle latents with one or two parents (colliders), quadrants below."""
    wiring = {"m1": ["r1"], "m2": ["r1", "r2"], "m3": ["r2"], "q0": ["m1"], "q1": ["m2"], "q2": ["m2"],
              "q3": ["m3"]}
    return four_by_four(wiring, {"r1": 1, "r2": 1, "m1": 2, "m2": 2, "m3": 3, "q0": 3, "q1": 3, "q2": 3, "q3": 3})


def mask_of(masked_pixels: list[tuple[int, int]], invert: bool = False) -> np.ndarray:
    mask = np.zeros((4, 4), dtype=bool)
    for r, c in masked_pixels:
        mask[r, c] = True
    return ~mask if invert else mask


def test_fig4_small_moderate_extreme_masks():
    graph = fig4_tree()
    small = locate_pixels(graph, mask_of([(0, 0)]))  # one pixel: its quadrant mixes in
    assert small.nodes == {"q0"} and small.mean_level == 1
    moderate = locate_pixels(graph, mask_of([(r, c) for r in range(4) for c in range(2)]))  # the left half
    assert moderate.nodes == {"z0"} and moderate.mean_level == 3
    quadrant = locate_pixels(graph, mask_of([(0, 0), (0, 1), (1, 0), (1, 1)]))
    assert quadrant.nodes == {"z1"} and quadrant.mean_level == 2
    extreme = locate_pixels(graph, mask_of([(3, 3)], invert=True))  # one pixel left visible
    assert extreme.nodes == {"q3"} and extreme.mean_level == 1
    assert small.dim == 3 and moderate.dim == 1


def brute_force_min_dim(graph: nx.DiGraph, masked: set, visible: set) -> int:
    allowed = sorted(common_ancestors(graph, masked, visible))
    best = None
    for size in range(len(allowed) + 1):
        for subset in itertools.combinations(allowed, size):
            if separates(graph, subset, masked, visible):
                dim = sum(graph.nodes[n]["dim"] for n in subset)
                best = dim if best is None else min(best, dim)
    return best


@pytest.mark.parametrize("build", [fig4_tree, shared_parents_dag])
def test_c_separates_and_is_minimal_by_brute_force(build):
    graph = build()
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        mask = rng.random((4, 4)) < rng.uniform(0.1, 0.9)
        masked, visible = split_observables(graph, mask)
        if not masked or not visible:
            continue
        shared = locate(graph, masked, visible)
        assert separates(graph, shared.nodes, masked, visible)
        assert not separates(graph, (), masked, visible)
        assert shared.nodes <= common_ancestors(graph, masked, visible)
        assert shared.dim == brute_force_min_dim(graph, masked, visible)
        checked += 1
    assert checked > 40


def test_quadtree_c_separates_and_no_node_can_be_dropped():
    graph = quadtree()
    levels = heights(graph)
    generator = torch.Generator().manual_seed(0)
    for unit, ratio in ((2, 0.3), (4, 0.6), (8, 0.75), (4, 0.9)):
        for mask in pixel_masks(32, unit, ratio, 3, generator):
            masked, visible = split_observables(graph, mask)
            shared = locate(graph, masked, visible, levels)
            assert separates(graph, shared.nodes, masked, visible)
            for node in shared.nodes:
                assert not separates(graph, shared.nodes - {node}, masked, visible), (unit, ratio, node)


def test_partly_masked_block_is_an_error():
    mask = np.zeros((32, 32), dtype=bool)
    mask[0, 0] = True
    with pytest.raises(ValueError, match="multiple of 2 pixels"):
        locate_pixels(quadtree(), mask)


def test_theory_curve_level_rises_with_the_unit_and_is_undefined_without_visible_units():
    graph = quadtree(image_size=16, depth=3, root_dim=4, dim_growth=2)
    result = theory_curve(graph, units=(2, 4, 8), ratios=(0.25, 0.5, 0.9), masks_per_point=4, progress=False)
    level = result["mean_level"]
    assert level.shape == (3, 3)
    assert np.isnan(level[2, 2])  # 4 units of 8px at ratio 0.9 keep none visible
    assert level[0, 0] < level[1, 0] < level[2, 0]
    assert np.allclose(result["level_share"][1, 0].sum(), 1.0)
