"""Paper 003's hierarchical latent variable model: the graph and its generator, Theorem 1's shared latents c, the
theory's prediction over mask ratios and units, and per-level probes of a pretrained encoder."""

from mimae.hierarchy.generator import HierarchicalModel
from mimae.hierarchy.graph import check_graph, heights, quadtree
from mimae.hierarchy.locator import SharedLatents, locate, locate_pixels
from mimae.hierarchy.probe import fit_r2, level_r2
from mimae.hierarchy.theory import theory_curve

__all__ = ["HierarchicalModel", "SharedLatents", "check_graph", "fit_r2", "heights", "level_r2", "locate",
           "locate_pixels", "quadtree", "theory_curve"]
