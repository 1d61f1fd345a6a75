"""Pretraining objectives, one file per method, registered by name."""

from mimae.objectives import (  # noqa: F401  (register the methods)
    mae,  # noqa: F401  (registers the method)
    mimae,  # noqa: F401  (registers the method)
    mrcl,
    simmim,
    umae,
)
from mimae.objectives.base import REGISTRY, Objective, build_objective, register

__all__ = ["REGISTRY", "Objective", "build_objective", "register"]
