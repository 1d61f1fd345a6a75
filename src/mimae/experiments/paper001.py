"""Paper 001 (U-MAE) as named experiments: Tab. 1, MAE against U-MAE under the linear probe and fine-tuning;
Fig. 3, the distances of masked views over the mask ratio (an analysis, no training); Fig. 5a, the coefficient of
the uniformity term; Fig. 5b, the linear probe along training.

The paper's CIFAR-10 / ViT-Tiny column is the one a single machine can approach; the cpu scale trains the default
mini ViT on Fashion-MNIST instead and reads the linear probe, so the paper's numbers are another protocol and data
set, shown for their direction.
"""

from __future__ import annotations

from mimae.experiments.spec import SMOKE, SMOKE_SCALE, Command, Experiment, Row, Scale, register
from mimae.report.claims import Claim
from mimae.report.page import table

CPU_LINEAR = Scale(("train.epochs=2",), ("linear",), (0, 1, 2),
                   "the default mini ViT on Fashion-MNIST, 2 epochs (119,808 (image, mask) samples) per run, scored "
                   "by the in-training kNN and the linear probe (10,000 / 5,000 images)")

register(Experiment(
    name="paper001-tab1", source="paper 001, Tab. 1", title="MAE vs U-MAE: linear probe and fine-tuning",
    rows=(
        Row("MAE", ("--method", "mae"), {"linear": 52.0, "fine-tune": 89.6}),
        Row("U-MAE (library: weight 0.01)", ("--method", "umae")),
        Row("U-MAE (paper text: weight 0.001)", ("--method", "umae", "umae.weight=0.001"),
            {"linear": 69.4, "fine-tune": 89.4}),
    ),
    scales={
        "smoke": SMOKE_SCALE,
        "cpu": CPU_LINEAR,
        "paper": Scale(("--config", "configs/paper001_cifar10_vit_tiny.yaml"), ("linear", "finetune"), (0,),
                       "the paper's CIFAR-10 / ViT-Tiny recipe (configs/paper001_cifar10_vit_tiny.yaml: 2000 "
                       "epochs, batch 4096); needs GPUs"),
    },
    claims=(Claim("U-MAE beats MAE in the linear probe", "U-MAE (paper text: weight 0.001)", "MAE"),
            Claim("U-MAE beats MAE in the linear probe (the library's weight)", "U-MAE (library: weight 0.01)",
                  "MAE")),
    paper_protocol="CIFAR-10, ViT-Tiny, 2000 epochs; linear evaluation and fine-tuning top-1 %",
    notes=("The library's U-MAE weight is 0.01, as the authors' released code; the paper's text says 0.001 (both "
           "rows are run).",),
))

register(Experiment(
    name="paper001-fig5a", source="paper 001, Fig. 5a", title="U-MAE: the coefficient of the uniformity term",
    rows=tuple(Row(f"weight {w:g}" + (" (the MAE loss)" if w == 0 else ""), ("--method", "umae", f"umae.weight={w}"))
               for w in (0.0, 0.001, 0.01, 0.1)),
    curves=("umae.weight",),
    scales={"smoke": SMOKE_SCALE, "cpu": CPU_LINEAR,
            "paper": Scale(("--config", "configs/paper001_cifar10_vit_tiny.yaml"), ("linear",), (0,),
                           "the paper's CIFAR-10 / ViT-Tiny recipe (configs/paper001_cifar10_vit_tiny.yaml); the "
                           "paper's own figure is ImageNet-100; needs GPUs")},
    paper_protocol="ImageNet-100 linear evaluation, ViT-B (the paper draws it as a figure; no values in its text)",
    notes=("The paper's claim: 'an appropriate coefficient is important'; its text gives neither the coefficients "
           "nor the accuracies, so the page has no paper column. Weight 0 is the MAE loss through the U-MAE code.",),
))


def geometry_page(result: dict) -> str:
    """The page of ``analyze mask-geometry``: the figure, the sweet spot of each pairing beside the paper's, and
    the distances per ratio."""
    pairings = list(result["by_ratio"])
    rows = [(f"{row['ratio']:g}", *(f"{result['by_ratio'][p][i][k]:.2f}" for p in pairings
                                    for k in ("intra", "inter")),
             *(f"{result['by_ratio'][p][i]['relative']:.4f}" for p in pairings))
            for i, row in enumerate(result["by_ratio"][pairings[0]])]
    head = ("mask ratio", *(f"{k} L2 ({p} masks)" for p in pairings for k in ("intra", "inter")),
            *(f"intra / inter ({p} masks)" for p in pairings))
    spots = ", ".join(f"{p} masks: {r:g}" for p, r in result["sweet_spot"].items())
    return "\n".join([
        f"{result['images']} {result['dataset']} test images (all pairs), patch {result['patch']} px, masking unit "
        f"{result['unit']} px, {result['repeats']} mask draws per ratio; `own`: a mask per image (as in training), "
        "`shared`: one mask for all images of a draw.", "",
        f"**Sweet spot** (the ratio of the smallest intra / inter): {spots}. The paper's: 0.7 (paper 001, Sec. 4.2).",
        "", "![mask geometry](mask_geometry.png)", "", *table(head, rows)])


register(Experiment(
    name="paper001-fig3", source="paper 001, Fig. 3", title="masked-view distances over the mask ratio",
    rows=(),
    scales={
        "smoke": Scale(("--images", "40", "--repeats", "2", "--ratios", "0", "0.25", "0.5", "0.75"), (), (0,),
                       "seconds: 40 Fashion-MNIST test images, 2 mask draws, 4 ratios"),
        "cpu": Scale((), (), (0,), "2,000 Fashion-MNIST test images at 32 px (patch 4), 10 mask draws per ratio, "
                                   "ratios 0 to 0.95"),
        "paper": Scale(("data.dataset=imagefolder", "data.image_size=224", "model.patch_size=16"), (), (0,),
                       "an ImageNet-100 folder (add data.data_dir=...) at 224 px, patch 16, as the paper's caption; "
                       "its text runs CIFAR-10"),
    },
    paper_protocol="ImageNet-100 (caption) / CIFAR-10 (text): the sweet spot of intra / inter at 0.7",
    command=Command(("analyze", "mask-geometry", "--output-dir", "{out}"), "mask_geometry.json", geometry_page),
    notes=("The analysis needs no training: it measures distances between masked pixels. The paper does not say "
           "whether a pair of images shares its mask; both are measured.",),
))

register(Experiment(
    name="paper001-fig5b", source="paper 001, Fig. 5b", title="MAE vs U-MAE: the linear probe along training",
    rows=(
        Row("MAE", ("--method", "mae")),
        Row("U-MAE", ("--method", "umae")),
    ),
    scales={
        "smoke": Scale((*SMOKE, "train.epochs=2", "train.keep_checkpoints=true", "linear.epochs=1",
                        "linear.train_limit=64", "linear.test_limit=32", "linear.batch_size=16"), ("linear-along",),
                       (0,),
                       "seconds: a 2-block ViT, 64 images of 16 px, two epochs; a one-epoch probe per checkpoint"),
        "cpu": Scale(("train.epochs=4", "train.keep_checkpoints=true"), ("linear-along",), (0, 1, 2),
                     "the default mini ViT on Fashion-MNIST, 4 epochs (239,616 samples), the linear probe (10,000 "
                     "/ 5,000 images) at initialization and after each epoch"),
        "paper": Scale(("--config", "configs/paper001_cifar10_vit_tiny.yaml", "train.keep_checkpoints=true"),
                       ("linear-along",), (0,),
                       "the paper's CIFAR-10 / ViT-Tiny recipe, the probe at every kept epoch (its figure is "
                       "ImageNet-100); needs GPUs"),
    },
    paper_protocol="ImageNet-100 linear evaluation along training (a figure; no values in the paper's text)",
    notes=("The paper's claim: U-MAE's probe is above MAE's at every training length. Epoch 0 is the shared "
           "initialization of each seed.",),
))
