"""Paper 002 (MRCL): Tab. 1, contrastive learning with and without masked reconstruction, and the ablations of
Figs. 3-5 (mask ratio, reconstruction weight, masked vs visible patch weights) on MR-Barlow Twins, as named
experiments.

The paper's numbers are ImageNet-1K linear probing of ViT-B after 600 epochs; the cpu scale trains the default
mini ViT on Fashion-MNIST and reads the kNN and the linear probe, so the paper's column is another protocol and data
set, shown for its direction.
"""

from __future__ import annotations

from mimae.experiments.spec import SMOKE_SCALE, Experiment, Row, Scale, register
from mimae.report.claims import Claim

PAPER_SCALE = Scale(("--config", "configs/paper002_imagenet_vitb.yaml"), ("linear",), (0,),
                    "the paper's ImageNet recipe (configs/paper002_imagenet_vitb.yaml: ViT-B/16, 600 epochs, "
                    "batch 512); needs GPUs and an ImageNet folder")
CPU_SCALE = Scale(("train.epochs=2",), ("linear",), (0, 1, 2),
                  "the default mini ViT on Fashion-MNIST, 2 epochs of two views per image, scored by the "
                  "in-training kNN and the linear probe (10,000 / 5,000 images)")

register(Experiment(
    name="paper002-tab1", source="paper 002, Tab. 1", title="contrastive learning with masked reconstruction",
    rows=(
        Row("SimCLR", ("--method", "simclr"), {"linear": 73.1}),
        Row("MR-SimCLR", ("--method", "mr-simclr"), {"linear": 80.0}),
        Row("Barlow Twins", ("--method", "barlow"), {"linear": 74.1}),
        Row("MR-Barlow Twins", ("--method", "mr-barlow"), {"linear": 80.4}),
        Row("BYOL", ("--method", "byol")),
        Row("MR-BYOL", ("--method", "mr-byol")),
    ),
    scales={
        "smoke": SMOKE_SCALE,
        "cpu": CPU_SCALE,
        "paper": PAPER_SCALE,
    },
    claims=tuple(Claim(f"masked reconstruction improves {name}", f"MR-{name}", name)
                 for name in ("SimCLR", "Barlow Twins", "BYOL")),
    paper_protocol="ImageNet-1K linear probe, ViT-B, 600 epochs, top-1 %",
    notes=("The BYOL pair has no ViT-B number in the paper's Tab. 1 (its BYOL row is a ResNet-50).",),
))

BASELINE = Row("Barlow Twins (no reconstruction: the paper's dotted line)", ("--method", "barlow"))


def mr_barlow(label: str, *args: str) -> Row:
    return Row(label, ("--method", "mr-barlow", *args))


def ablation(name: str, title: str, rows: tuple[Row, ...], claim: str, curve: str) -> Experiment:
    return register(Experiment(
        name=name, source=f"paper 002, Fig. {name[-1]}", title=title, rows=(BASELINE, *rows), curves=(curve,),
        scales={"smoke": SMOKE_SCALE, "cpu": CPU_SCALE, "paper": PAPER_SCALE},
        paper_protocol="ImageNet-1K linear probe, ViT-B (the paper draws it as a figure; no values in its text)",
        notes=(f"The paper's claim: {claim}; its figure's values are not in its text, so the page has no paper "
               "column.",)))


ablation("paper002-fig3", "MR-Barlow Twins: the mask ratio",
         tuple(mr_barlow(f"mask ratio {r}", f"mask.ratio={r}", "mrcl.masked_weight=0.01",
                         "mrcl.unmasked_weight=0.01") for r in (0.0, 0.1, 0.2, 0.4, 0.75)),
         "a reversed U over the mask ratio, best at 20%; reconstruction without masking (ratio 0) already above "
         "the plain Barlow Twins", "mask.ratio")
ablation("paper002-fig4", "MR-Barlow Twins: the reconstruction weight (alpha = beta)",
         tuple(mr_barlow(f"alpha = beta = {w:g}", "mask.ratio=0.1", f"mrcl.masked_weight={w}",
                         f"mrcl.unmasked_weight={w}") for w in (0.01, 0.1, 1.0, 10.0)),
         "alpha = beta = 10 is best for MR-Barlow Twins, 1.25 points above the plain Barlow Twins, with a "
         "threshold on either side", "mrcl.masked_weight")
ablation("paper002-fig5", "MR-Barlow Twins: masked vs visible patch weights (alpha / beta)",
         tuple(mr_barlow(f"alpha / beta = {q:g}", "mask.ratio=0.1", "mrcl.masked_weight=10",
                         f"mrcl.unmasked_weight={10 / q:g}") for q in (0.25, 1.0, 4.0, 16.0)),
         "alpha / beta = 4 (more weight on the masked patches) is best for MR-Barlow Twins, a reversed U",
         "mrcl.unmasked_weight")
