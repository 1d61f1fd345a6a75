"""Paper 000 (MI-MAE): the ablations of Tab. 3 as named experiments.

Every row holds the budget equal (``train.equal_samples=true``, checked before anything trains): the same (view,
mask) samples per step, optimizer steps and peak lr. MAE takes 64 images a step, MI-MAE 16 images x 4 masks, as the
paper's 1,024 images x 4 masks "equivalent to 4096": MI-MAE sees each image a quarter as often. The paper fine-tunes
ViT-B on ImageNet-1K for 100 epochs; the cpu scale fine-tunes a small ViT on a slice of Fashion-MNIST (beside the
same ViT from scratch) and reads its kNN, linear probe and mask-mi, so the paper's column is a different protocol,
shown for its direction only.
"""

from __future__ import annotations

from dataclasses import replace

from mimae.experiments.budget import CPU_FINETUNE, CPU_FINETUNE_TEXT, CPU_SCALE_EPOCHS
from mimae.experiments.spec import SMOKE, Experiment, Row, Scale, register
from mimae.report.claims import Claim

PAPER_PROTOCOL = "ImageNet-1K, ViT-B pretrained 50 epochs (MAE 200), fine-tuned 100 epochs, top-1 %"
EQUAL = ("train.equal_samples=true",)
# at the cpu budgets MAE's norm-pix L_rec plateaus near 0.65, so the paper's gate eps_l = 0.5 would never open and
# every MI-MAE row would train L_rec alone (docs/mimae.md): the cpu scales open it at 0.7
CPU_GATE = ("mimae.eps_l=0.7",)
# the MI terms' weights that every run of the shared folder below trained with (the library's defaults then: L_max
# weighted 1 on [CLS], no projector, no L_min), spelled out so that its finished runs stay valid when a default moves
# (they moved since: docs/mimae.md); every run's config holds the mimae section, MAE's too, and a row that varies a
# key sets it after these
MI_KEYS = ("mimae.lambda_max=1", "mimae.projector_dim=0", "mimae.lambda_min=0")
# the paper's MI-MAE losses: lambda2 = 1 on [CLS], lambda3 = 10; and the same with L_min off (lambda3 = 0, the
# library's defaults until a smaller L_max on a projection replaced them)
LITERAL = ("--method", "mimae", *MI_KEYS, "mimae.lambda_min=10")
LAMBDA3_0 = ("--method", "mimae", *MI_KEYS)
# the library's defaults since the cpu-scale confirmation (docs/mimae.md): L_max weighted 0.1 on a 128-d projection,
# spelled out after MI_KEYS; its runs are those of mimae-screen's row of that name
SMALL_LAMBDA2, SMALL_LAMBDA2_KEYS = "small lambda2 + projector", ("mimae.lambda_max=0.1", "mimae.projector_dim=128")

# the smoke scale of an evaluation-heavy table: the probes and the corruptions on a few images
SMOKE_EVAL = ("linear.epochs=1", "linear.train_limit=64", "linear.test_limit=32", "linear.batch_size=16",
              "finetune.epochs=1",
              "finetune.train_limit=64", "finetune.test_limit=32", "finetune.batch_size=16", "lowshot.epochs=1",
              "lowshot.fraction=0.01", "robustness.test_limit=16", "robustness.corruptions=gaussian_noise,contrast",
              "robustness.severities=1,3")
# one folder of runs at the smoke and cpu scales: Tab. 1, 3a, 3c, `methods` and `mimae-screen` train into
# paper000-tab1's, so a row several tables have (MAE, MI-MAE with lambda3 = 10 or 0) trains once a
# seed; they pass the same arguments at each scale (checked: a finished run of other options is refused). 3 blocks
# at the smoke scale, so that the screen's top 2 are not the whole encoder. The cpu scale trains in fp32 on every
# machine: `train.precision=auto` would train in bf16 on CPUs with native bf16 and in fp32 on the others, and the rows
# of one comparison would then differ in their numerics with the machine each ran on.
SHARED = "paper000-tab1"
SHARED_SCALES = {"smoke": SHARED, "cpu": SHARED}  # at the paper scale Tab. 1 trains 4x longer than Tab. 3
SHARED_ARGS = {"smoke": (*SMOKE, *EQUAL, *SMOKE_EVAL, *MI_KEYS, "model.depth=3"),
               "cpu": (*EQUAL, *CPU_GATE, *MI_KEYS, f"train.epochs={CPU_SCALE_EPOCHS}", "train.precision=fp32",
                       *CPU_FINETUNE)}
SMOKE_BUDGET = "seconds: a 3-block ViT, 64 images of 16 px, one epoch"
CPU_BUDGET = (f"the default mini ViT on Fashion-MNIST, {CPU_SCALE_EPOCHS} MAE epochs of (image, mask) "
              "samples per run (the budget curve's choice) in fp32, MI-MAE's gate at eps_l = 0.7")
FINETUNE_BUDGET = f"fine-tuning ({CPU_FINETUNE_TEXT}) beside the same ViT fine-tuned from its initialization"
# Tab. 1's rows, whose runs the other tables share; the lambda3 = 0 row's runs keep the folder named when these were
# the library's default losses
TAB1_MAE, TAB1_LITERAL, TAB1_LAMBDA3_0 = "MAE", "MI-MAE", "MI-MAE, lambda3 = 0"
LAMBDA3_0_RUN = "MI-MAE, library default losses"

# the fine-tuning baselines: the same ViT from its initialization at the seed (one per seed, shared by every row)
SCRATCH = ("finetune-scratch", "lowshot-scratch")
# the cpu scale of the shared folder: every run carries every measure a table that shares it reads, and is evaluated
# once, while its weights exist (an archive keeps none, so an evaluation added later would mean training again)
SHARED_CPU = Scale(SHARED_ARGS["cpu"], ("linear", "lowshot", "finetune", "mask-mi", "rank"), (0, 1, 2),
                   f"{CPU_BUDGET}, scored by the in-training kNN (10,000-image bank), the linear probe (10,000 / 5,000 "
                   f"images), {FINETUNE_BUDGET}, 1% fine-tuning (600 labels, 50 epochs) likewise, mask-mi and "
                   "rank (2,000 test images each)", per_seed=SCRATCH)

SCALES = {
    "smoke": Scale(SHARED_ARGS["smoke"], (), (0,), SMOKE_BUDGET),
    "cpu": Scale(SHARED_ARGS["cpu"], ("linear", "finetune"), (0, 1, 2),
                 f"{CPU_BUDGET}, scored by the in-training kNN (10,000-image bank), the linear probe (10,000 / 5,000 "
                 f"images) and {FINETUNE_BUDGET}", per_seed=("finetune-scratch",)),
    "paper": Scale(("--config", "configs/paper000_ablation.yaml", *EQUAL), ("finetune", "linear"), (0,),
                   "the paper's recipe (configs/paper000_ablation.yaml: ViT-B/16, 224 px, 200 MAE-epochs of "
                   "samples, 1024 images a step); needs GPUs and an ImageNet folder (data.data_dir)"),
}
SHARED_TABLE_SCALES = {**SCALES, "cpu": SHARED_CPU}  # the scales of the tables that share paper000-tab1's runs

TAB3A_MAE, TAB3A_ALL = "(a) L_rec (MAE)", "(f) all (MI-MAE)"
TAB3A_CONTROL = "control: L_rec over 4 orthogonal views"  # MI-MAE's views and budget, no MI term: not the paper's
CONTROL_ARGS = ("--method", "mimae", "mimae.lambda_max=0", "mimae.lambda_min=0", "mimae.train_approx=false")

register(Experiment(
    name="paper000-tab3a", source="paper 000, Tab. 3a", title="which losses MI-MAE needs",
    rows=(
        Row(TAB3A_MAE, ("--method", "mae"), {"fine-tune": 82.2}, run=TAB1_MAE),
        Row("(b) L_rec + l_max", LAMBDA3_0, {"fine-tune": 82.5}, run=LAMBDA3_0_RUN),
        Row(TAB3A_CONTROL, CONTROL_ARGS),
        Row("(c) l_max only", ("--method", "mimae", "mimae.lambda_rec=0", "mimae.lambda_min=0",
                               "mimae.eps_l=1e9"), {"fine-tune": "collapse"}),
        Row("(d) + l_min, no L_approx", (*LITERAL, "mimae.train_approx=false"), {"fine-tune": 82.4}),
        Row("(e) L_rec + l_min + L_approx", (*LITERAL, "mimae.lambda_max=0"), {"fine-tune": 82.4}),
        Row(TAB3A_ALL, LITERAL, {"fine-tune": 82.8}, run=TAB1_LITERAL),
    ),
    scales=SHARED_TABLE_SCALES, paper_protocol=PAPER_PROTOCOL, runs_of=SHARED_SCALES,
    claims=(
        Claim("MI-MAE's losses beat MAE", TAB3A_ALL, TAB3A_MAE),
        Claim("L_max on top of L_rec helps", "(b) L_rec + l_max", TAB3A_MAE),
        Claim("L_max on top of L_rec helps (against the 4-view control)", "(b) L_rec + l_max", TAB3A_CONTROL),
        Claim("adding l_min and L_approx helps", TAB3A_ALL, "(b) L_rec + l_max"),
        Claim("L_approx is needed (q_theta trained)", TAB3A_ALL, "(d) + l_min, no L_approx"),
        Claim("l_max is needed", TAB3A_ALL, "(e) L_rec + l_min + L_approx"),
        Claim("l_max alone collapses (is far below MAE)", TAB3A_MAE, "(c) l_max only"),
    ),
    notes=("The control row is not the paper's: MAE's loss on MI-MAE's 4 orthogonal views at MI-MAE's budget, no MI "
           "term. Against MAE, (b) differs in two things (the views and L_max); against the control in L_max alone.",
           "At the smoke and cpu scales rows (a), (b) and (f) are the runs of paper000-tab1's MAE, MI-MAE with "
           "lambda3 = 0 and MI-MAE, which this table shares.",
           "Row (c) trains L_max alone, so its gate opens at once (mimae.eps_l=1e9): with L_rec off the running "
           "L_rec would never fall below eps_l.",),
))

register(Experiment(
    name="paper000-tab3b", source="paper 000, Tab. 3b", title="the loss weights lambda2 and lambda3",
    rows=tuple(Row(f"lambda2={l2}, lambda3={l3}", ("--method", "mimae", f"mimae.lambda_max={l2}",
                                                   f"mimae.lambda_min={l3}"), {"fine-tune": acc})
               for l2, l3, acc in ((1, 1, 82.6), (1, 10, 82.8), (1, 20, 82.7), (0.1, 10, 82.5), (0.5, 10, 82.7),
                                   (10, 10, 82.6))),
    scales=SCALES, paper_protocol=PAPER_PROTOCOL,
))

register(Experiment(
    name="paper000-tab3c", source="paper 000, Tab. 3c", title="orthogonal vs independent masks",
    rows=(
        Row("independent", (*LITERAL, "mimae.masking=independent"), {"fine-tune": 82.6}),
        Row("orthogonal", LITERAL, {"fine-tune": 82.8}, run=TAB1_LITERAL),
        Row("orthogonal, lambda3 = 0", LAMBDA3_0, run=LAMBDA3_0_RUN),
        Row("independent, lambda3 = 0", (*LAMBDA3_0, "mimae.masking=independent")),
        Row("MAE, same samples", ("--method", "mae"), run=TAB1_MAE),
    ),
    scales=SHARED_TABLE_SCALES, paper_protocol=PAPER_PROTOCOL, runs_of={**SHARED_SCALES, "paper": "paper000-tab3a"},
    claims=(Claim("orthogonal masks beat independent ones", "orthogonal", "independent"),
            Claim("orthogonal masks beat independent ones (lambda3 = 0)",
                  "orthogonal, lambda3 = 0", "independent, lambda3 = 0")),
    notes=("Orthogonal masks are the default (mimae.masking=orthogonal); that row, the lambda3 = 0 row and the "
           "MAE row are the runs of Tab. 3a's rows (f), (b) and (a), which this table shares (at the smoke and cpu "
           "scales those of paper000-tab1's MI-MAE, MI-MAE with lambda3 = 0 and MAE).",
           "The last three rows are not in the paper: MI-MAE without L_min (lambda3 = 0) "
           "under both maskings, the paper's claim tested where its losses do not collapse the latents, and MAE at "
           "the same budget, for reference.",),
))

FIG2_RATIOS = (0.5, 0.75, 0.9)
FIG2_BATCH = "optim.batch_size=120"
register(Experiment(
    name="paper000-fig2", source="paper 000, Fig. 2", title="mask ratio: complete masking vs a fixed 4 masks",
    rows=(
        *(Row(f"r={r}, complete (N={max(2, round(1 / (1 - r)))})",
              (*LITERAL, f"mask.ratio={r}", "mimae.views=complete")) for r in FIG2_RATIOS if r != 0.75),
        *(Row(f"r={r}, fixed N=4", (*LITERAL, f"mask.ratio={r}", "mimae.views=4")) for r in FIG2_RATIOS),
        Row("r=0.75, N=6", (*LITERAL, "mask.ratio=0.75", "mimae.views=6"), {"fine-tune": 82.9}),
        Row("r=0.75, N=8", (*LITERAL, "mask.ratio=0.75", "mimae.views=8"), {"fine-tune": 82.7}),
    ),
    scales={name: Scale((*scale.args, FIG2_BATCH), scale.evaluations, (0, 1) if name == "cpu" else scale.seeds,
                        scale.budget) for name, scale in SCALES.items()},
    paper_protocol=PAPER_PROTOCOL,
    notes=(f"Every row takes 120 (view, mask) samples a step ({FIG2_BATCH}: the smallest batch that 2, 4, 6, 8 and "
           "10 masks per image divide), so every row trains the same steps at the same peak lr.",
           "The paper draws the ratio curves without printing their values; its text gives 82.9 and 82.7 for 6 "
           "and 8 masks at r = 0.75 (and 82.8 for the default N = 4, Tab. 3). At r = 0.75 complete masking is "
           "N = 4, the fixed row. At r = 0.5, 4 masks of half the image cannot have disjoint visible sets: the "
           "orthogonal masking then overlaps them, with a warning.",),
))

register(Experiment(
    name="paper000-tab4", source="paper 000, Tab. 4", title="MAE vs MI-MAE on a smaller ViT (ViT-S)",
    rows=(
        Row("ViT-S, MAE", ("--method", "mae", "model.size=small"), {"fine-tune": 78.4, "linear": 50.5}),
        Row("ViT-S, MI-MAE", (*LITERAL, "model.size=small"), {"fine-tune": 79.8, "linear": 53.1}),
    ),
    scales={"smoke": SCALES["smoke"],
            "cpu": replace(SCALES["cpu"], seeds=(0, 1),
                           budget=f"{CPU_BUDGET}, on ViT-S (384 wide, 12 blocks, patch 4), scored by the in-training "
                                  f"kNN, the linear probe and {FINETUNE_BUDGET}"),
            "paper": SCALES["paper"]},
    paper_protocol="ImageNet-1K, fine-tune and linear probe top-1 %",
    claims=(Claim("MI-MAE beats MAE on ViT-S", "ViT-S, MI-MAE", "ViT-S, MAE"),),
    notes=("At the smoke scale model.size is overridden by the explicit tiny dimensions.",),
))

TAB1_PAPER = ("--config", "configs/paper000_ablation.yaml", *EQUAL, "train.epochs=800")
# the SimMIM rows' Swin: two stages (an 8 px output stride, 16 masking units of 8 px at 32 px) at the small scales;
# Swin-B at the paper scale, as SimMIM pretrains it (192 px, patch 4, window 6, 32 px masking units)
SWIN = ("model.backbone=swin", "model.swin_depths=2,2")
SWIN_B = ("model.backbone=swin", "model.patch_size=4", "model.embed_dim=128", "model.num_heads=4",
          "model.swin_depths=2,2,18,2", "model.swin_window=6", "data.image_size=192", "mask.unit=32")

SWIN_ROWS = "a Swin (at the paper scale Swin-B at 192 px, as SimMIM), compared only with each other"
MAE_VS_MIMAE = (Claim("MI-MAE beats MAE", "MI-MAE", "MAE"),)


def mae_vs_mimae(mae: dict[str, float | str], mimae: dict[str, float | str]) -> tuple[Row, ...]:
    """MAE and MI-MAE with the paper's losses, carrying the paper's numbers, and MI-MAE without L_min (not a row of
    the paper)."""
    return (Row(TAB1_MAE, ("--method", "mae"), mae), Row(TAB1_LITERAL, LITERAL, mimae),
            Row(TAB1_LAMBDA3_0, LAMBDA3_0, run=LAMBDA3_0_RUN))


register(Experiment(
    name="paper000-tab1", source="paper 000, Tab. 1", title="MAE vs MI-MAE (and SimMIM vs MI-SimMIM) on ImageNet",
    rows=(
        *mae_vs_mimae({"FT": 83.3, "LIN": 65.6, "FT 1%": 45.4}, {"FT": 83.9, "LIN": 67.9, "FT 1%": 48.2}),
        Row("SimMIM (Swin)", ("--method", "simmim", *SWIN), {"FT": 83.8, "LIN": 56.7},
            ("--method", "simmim", *SWIN_B), differs=SWIN_ROWS),
        Row("MI-SimMIM (Swin)", ("--method", "mi-simmim", *MI_KEYS, "mimae.lambda_min=10", *SWIN),
            {"FT": 84.1, "LIN": 59.1, "FT 1%": 49.1},
            ("--method", "mi-simmim", *MI_KEYS, "mimae.lambda_min=10", *SWIN_B),
            differs=SWIN_ROWS),
    ),
    scales={
        "smoke": Scale(SHARED_ARGS["smoke"], ("linear", "lowshot", "finetune"), (0,),
                       f"{SMOKE_BUDGET}; probes of one epoch on 64 images", per_seed=SCRATCH),
        "cpu": SHARED_CPU,
        "paper": Scale(TAB1_PAPER, ("finetune", "linear", "lowshot"), (0,),
                       "the paper's recipe (configs/paper000_ablation.yaml) at 800 MAE-epochs of samples (MI-MAE: "
                       "200 epochs of N = 4 masks); needs GPUs and an ImageNet folder"),
    },
    claims=(*MAE_VS_MIMAE, Claim("MI-SimMIM beats SimMIM", "MI-SimMIM (Swin)", "SimMIM (Swin)")),
    paper_protocol="ImageNet-1K top-1 %: FT fine-tune, LIN linear probe, FT 1% fine-tune on 1% of the labels; "
                   "ViT-B (MAE 800 epochs, MI-MAE 200), SimMIM rows on Swin-B (SimMIM 800 epochs, MI-SimMIM 400)",
    notes=("The paper's SimMIM and MI-SimMIM rows are Swin-B (mask tokens before the first stage, as SimMIM); "
           "at the smoke and cpu scales they run a two-stage Swin of the mini width (timm's SwinTransformer, "
           "model.backbone=swin), at the paper scale Swin-B at 192 px; they have no mask-mi, which encodes each view's "
           "visible patches alone (a Swin takes mask tokens). The paper's second MAE pair "
           "(1600 vs 400 epochs: 83.6 / 68.0 / 51.1 vs 84.1 / 69.3 / 52.3) is the paper scale with train.epochs=1600.",
           "MI-MAE, lambda3 = 0: the paper's losses without L_min (the library's defaults until the cpu-scale "
           "confirmation moved them, docs/mimae.md); not a row of the paper."),
))

register(Experiment(
    name="paper000-tab5", source="paper 000, Tab. 5", title="robustness: corruption error of MAE vs MI-MAE",
    rows=mae_vs_mimae({"IN-1K acc": 83.3, "IN-A acc": 35.9, "IN-C mCE": 51.7},
                      {"IN-1K acc": 83.9, "IN-A acc": 37.4, "IN-C mCE": 49.5}),
    scales={
        "smoke": Scale((*SMOKE, *EQUAL, *SMOKE_EVAL), ("robustness",), (0,),
                       "seconds: a 2-block ViT, 64 images of 16 px, one epoch; 2 corruptions x 2 severities on 16 "
                       "images"),
        "cpu": Scale((*EQUAL, *CPU_GATE, "train.epochs=2"), ("robustness",), (0, 1, 2),
                     "the default mini ViT on Fashion-MNIST, 119,808 (image, mask) samples per run; the linear probe "
                     "(10,000 / 5,000 images) scored on 1,000 test images under the 15 ImageNet-C corruptions x 5 "
                     "severities"),
        "paper": Scale(("--config", "configs/paper000_ablation.yaml", *EQUAL, "robustness.classifier=finetune",
                        "robustness.test_limit=null"), ("robustness",), (0,),
                       "the paper's recipe; the fine-tuned model scored on the ImageNet validation images under "
                       "mimae's ImageNet-C corruptions; needs GPUs and ImageNet"),
    },
    claims=MAE_VS_MIMAE,
    paper_protocol="ImageNet-1K and ImageNet-A top-1 %, ImageNet-C mCE (against AlexNet, lower is better) of "
                   "fine-tuned ViT-B",
    mce_baseline="MAE",
    notes=("Our mCE divides by the MAE row's errors (the paper's by AlexNet's), so only the MI-MAE rows' distance "
           "from 100 compares with the paper's 51.7 -> 49.5 (a 4% relative drop). The corruptions are mimae's "
           "implementation of ImageNet-C's 15 (docs/evaluation.md), applied to the test images; ImageNet-A has no "
           "counterpart here.",),
))
