"""The budget curve: MAE trained long, one run per seed, every epoch's checkpoint kept and scored (``eval along``)
by the kNN and the linear probe beside the raw pixels under the same protocols, and some of them fine-tuned
(``eval finetune-along``) beside the same ViT fine-tuned from its initialization. It fixes the cpu scale of the
comparisons: the smallest budget at which pretraining beats the pixels, else the smallest at which it beats
fine-tuning from scratch (docs/results/budget)."""

from __future__ import annotations

from mimae.experiments.spec import SMOKE, Experiment, Row, Scale, register
from mimae.report.budget_curve import write_budget_curve

KEEP = "train.keep_checkpoints=true"
# the cpu scale, chosen from the budget curve (docs/results/budget, seeds 0-2): the first kept budget at which MAE
# beats the raw pixels by more than 2 paired se, under the linear probe at its best lr
CPU_SCALE_EPOCHS = 12
# the cpu scale's fine-tuning recipe, as paper000-tab1's, and in words
CPU_FINETUNE = ("finetune.epochs=10", "finetune.train_limit=10000", "finetune.test_limit=5000")
CPU_FINETUNE_TEXT = "10 epochs on 10,000 training images, scored on 5,000 test images"

register(Experiment(
    name="budget", source="mimae",
    title="MAE against its budget: where pretraining beats the raw pixels and training from scratch",
    rows=(Row("MAE", ("--method", "mae")),),
    scales={
        "smoke": Scale((*SMOKE, "train.epochs=2", KEEP, "linear.epochs=2", "linear.train_limit=64",
                        "linear.test_limit=32", "linear.batch_size=16", "along.probe_lrs=1,6.4"),
                       ("along", "finetune-along"), (0,),
                       "seconds: a 2-block ViT, 64 images of 16 px, two epochs",
                       evaluation_args={"along": ("data.train_limit=256", "data.test_limit=128"),
                                        "finetune-along": ("finetune.epochs=1", "finetune.train_limit=32",
                                                           "finetune.test_limit=32", "finetune.batch_size=16")}),
        "cpu": Scale(("train.epochs=16", KEEP), ("along", "finetune-along"), (0, 1, 2),
                     "the default mini ViT trained with MAE for 16 epochs of Fashion-MNIST (937 steps of 64 images an "
                     "epoch, peak lr 7.5e-4, one cosine schedule), scored at epochs 0, 1, 2, 4, 8, 12 and 16 by kNN "
                     "and the linear probe, and fine-tuned at epochs 0 (from scratch), 2, 4 and 16 "
                     f"({CPU_FINETUNE_TEXT})",
                     evaluation_args={"along": ("along.epochs=0,1,2,4,8,12,16",),
                                      "finetune-along": ("along.finetune_epochs=0,2,4,16", *CPU_FINETUNE)}),
    },
    paper_protocol="none: not a table of a paper",
    page=write_budget_curve,
))
