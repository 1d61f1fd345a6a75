"""Paper 002 (MRCL): Tab. 1, contrastive learning with and without masked reconstruction, as a named experiment.

The paper's numbers are ImageNet-1K linear probing of ViT-B after 600 epochs; the cpu scale trains the default
mini ViT on Fashion-MNIST and reads the kNN and the linear probe, so the paper's column is another protocol and data
set, shown for its direction.
"""

from __future__ import annotations

from mimae.experiments.spec import SMOKE_SCALE, Experiment, Row, Scale, register

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
        "cpu": Scale(("train.epochs=2",), ("linear",), (0, 1, 2),
                     "the default mini ViT on Fashion-MNIST, 2 epochs of two views per image, scored by the "
                     "in-training kNN and the linear probe (10,000 / 5,000 images)"),
        "paper": Scale(("--config", "configs/paper002_imagenet_vitb.yaml"), ("linear",), (0,),
                       "the paper's ImageNet recipe (configs/paper002_imagenet_vitb.yaml: ViT-B/16, 600 epochs, "
                       "batch 512); needs GPUs and an ImageNet folder"),
    },
    paper_protocol="ImageNet-1K linear probe, ViT-B, 600 epochs, top-1 %",
    notes=("The BYOL pair has no ViT-B number in the paper's Tab. 1 (its BYOL row is a ResNet-50).",),
))
