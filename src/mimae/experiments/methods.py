"""The five methods side by side: MAE, MI-MAE (the library's default, lambda3 = 0 and the paper's literal
lambda3 = 10), U-MAE, SimCLR and MR-SimCLR, every one trained on the same (view, mask) samples, optimizer steps
and peak lr (``train.equal_samples``: MI-MAE's 4 masks per image and SimCLR's 2 crops count as 4 and 2 samples),
read by the kNN and the linear probe beside the raw pixels under the same protocol, fine-tuning beside the same ViT
from scratch, and mask-mi (what the views of an image share, beside the same ViT at initialization).

Not a table of one paper: the question a user asks first (which method, at my budget?). The MAE and MI-MAE rows are
the runs of paper000-tab1 (and Tab. 3a, 3c), shared with them.
"""

from __future__ import annotations

from dataclasses import replace

from mimae.experiments.paper000 import (
    LAMBDA3_0,
    LAMBDA3_0_RUN,
    LITERAL,
    SCALES,
    SHARED,
    SHARED_CPU,
    SMALL_LAMBDA2,
    SMALL_LAMBDA2_KEYS,
    TAB1_LAMBDA3_0,
    TAB1_LITERAL,
    TAB1_MAE,
)
from mimae.experiments.spec import Experiment, Row, register
from mimae.report.claims import Claim

LIBRARY_DEFAULT = "MI-MAE, library default (lambda2 = 0.1 on a projection)"
# mask-mi and rank on every run and its initialization at the smoke scale: 64 images and a quick fit (the cpu scale:
# their 2,000 test images)
SMOKE_ANALYSES = ("mask-mi", "rank")
SMOKE_ANALYSIS_ARGS: dict[str, tuple[str, ...]] = {"mask-mi": ("--images", "64", "--fit-steps", "5"),
                                                   "rank": ("--images", "64")}

register(Experiment(
    name="methods", source="papers 000-002", title="MAE, MI-MAE, U-MAE, SimCLR and MR-SimCLR at equal samples",
    rows=(
        Row("MAE", ("--method", "mae"), run=TAB1_MAE),
        Row(LIBRARY_DEFAULT, ("--method", "mimae", *SMALL_LAMBDA2_KEYS), run=SMALL_LAMBDA2),
        Row(TAB1_LAMBDA3_0, LAMBDA3_0, run=LAMBDA3_0_RUN),
        Row("MI-MAE, the paper's losses (lambda3 = 10)", LITERAL, run=TAB1_LITERAL),
        Row("U-MAE", ("--method", "umae")),
        Row("SimCLR", ("--method", "simclr")),
        Row("MR-SimCLR", ("--method", "mr-simclr")),
    ),
    scales={"smoke": replace(SCALES["smoke"], evaluations=SMOKE_ANALYSES, evaluation_args=SMOKE_ANALYSIS_ARGS),
            "cpu": SHARED_CPU},
    paper_protocol="none (the papers compare these methods only in pairs, each under its own recipe)",
    runs_of=SHARED,
    claims=(
        Claim("MI-MAE beats MAE (paper 000)", "MI-MAE, the paper's losses (lambda3 = 10)", "MAE"),
        Claim("MI-MAE beats MAE (the library's default)", LIBRARY_DEFAULT, "MAE"),
        Claim("MI-MAE beats MAE (lambda3 = 0)", TAB1_LAMBDA3_0, "MAE"),
        Claim("U-MAE beats MAE (paper 001)", "U-MAE", "MAE"),
        Claim("MR-SimCLR beats SimCLR (paper 002)", "MR-SimCLR", "SimCLR"),
    ),
    notes=("Each row trains its own method's defaults but for the budget (augmentation: SimCLR and MR-SimCLR crop and "
           "colour-distort two views per image, the masked autoencoders see one crop); the (view, mask) samples, "
           "optimizer steps and peak lr are equal, so at the cpu scale MI-MAE sees each image once per 4 samples "
           "and SimCLR once per 2.",),
))
