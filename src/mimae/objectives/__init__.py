"""Pretraining objectives, one file per method, registered by name."""

from mimae.objectives import mae  # noqa: F401  (registers the method)
from mimae.objectives import mimae  # noqa: F401  (registers the method)
from mimae.objectives import mrcl, simmim, umae  # noqa: F401  (register the methods)
from mimae.objectives.base import REGISTRY, Objective, build_objective, register

__all__ = ["REGISTRY", "Objective", "build_objective", "register"]
