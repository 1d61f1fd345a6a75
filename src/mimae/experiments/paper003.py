"""Paper 003 (what MAE learns, by mask ratio and masking unit): Tab. 1's linear probe as a named experiment.

The paper probes ViT-B (patch 8) on ImageNet-1K; the cpu scale trains the default mini ViT (patch 4) on
Fashion-MNIST at 32 px. The masking units keep the paper's multiples of the ViT patch (1x, 2x, 4x: the paper's 8, 16
and 32 px are 4, 8 and 16 px here), so each unit row carries the paper's number of the same multiple.
"""

from __future__ import annotations

from mimae.experiments.spec import SMOKE, Experiment, Row, Scale, register

RATIOS = {0.1: 47.45, 0.25: 53.58, 0.5: 60.07, 0.75: 67.41, 0.9: 62.97}  # paper: unit 16 (2x the ViT patch)
UNITS = {1: 62.57, 2: 68.96, 4: 73.31}  # multiple of the ViT patch -> paper's IN1K linear probe, ratio 0.75


def mae_row(label: str, ratio: float, multiple: int, paper: float) -> Row:
    """MAE at ``ratio`` with a masking unit of ``multiple`` ViT patches: 4 px patches here, 8 px at the paper
    scale."""
    return Row(label, ("--method", "mae", f"mask.ratio={ratio}", f"mask.unit={4 * multiple}"),
               {"linear (IN1K)": paper}, ("--method", "mae", f"mask.ratio={ratio}", f"mask.unit={8 * multiple}"))


register(Experiment(
    name="paper003-tab1", source="paper 003, Tab. 1", title="linear probe by mask ratio and masking unit",
    rows=(
        *(mae_row(f"ratio {r}, unit 2x patch", r, 2, accuracy) for r, accuracy in RATIOS.items()),
        *(mae_row(f"ratio 0.75, unit {m}x patch", 0.75, m, accuracy) for m, accuracy in UNITS.items() if m != 2),
    ),
    scales={
        "smoke": Scale((*SMOKE, "data.image_size=32"), (), (0,),
                       "seconds: a 2-block ViT, 64 images of 32 px (units of 16 px must fit), one epoch"),
        "cpu": Scale(("train.epochs=2",), ("linear",), (0, 1, 2),
                     "the default mini ViT (patch 4) on Fashion-MNIST at 32 px, 2 epochs per run, scored by the "
                     "in-training kNN and the linear probe (10,000 / 5,000 images)"),
        "paper": Scale(("--config", "configs/paper003_imagenet_vitb_patch8.yaml"), ("linear",), (0,),
                       "the paper's setting (configs/paper003_imagenet_vitb_patch8.yaml: ViT-B, ViT patch 8, "
                       "units of 8 / 16 / 32 px); needs GPUs and ImageNet"),
    },
    paper_protocol="ImageNet-1K linear probe of ViT-B (ViT patch 8), top-1 %",
    notes=("Ratio rows mask in units of twice the ViT patch, as the paper's ratio rows (unit 16 px, patch 8).",),
))
