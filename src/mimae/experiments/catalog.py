"""Every named experiment: importing this module registers the papers' experiments (and lists, with the reason,
those these machines cannot run)."""

from __future__ import annotations

from mimae.experiments import (  # noqa: F401  (each registers them)
    budget,
    methods,
    mimae_variants,
    paper000,
    paper001,
    paper002,
    paper003,
)
from mimae.experiments.spec import EXPERIMENTS, Experiment, register

register(Experiment(
    name="paper000-tab2", source="paper 000, Tab. 2", title="COCO detection / segmentation and ADE20K segmentation",
    rows=(), scales={}, paper_protocol="COCO AP box / AP mask, ADE20K mIoU",
    unavailable="needs the COCO and ADE20K data sets and a ViTDet / UperNet head; mimae has neither",
))


def experiments() -> dict[str, Experiment]:
    return EXPERIMENTS
