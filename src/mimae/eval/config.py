"""The evaluation protocols' sections: the in-training kNN (``eval``), the linear probe, the budget curve
(``along``), fine-tuning, low-shot fine-tuning and corruption robustness. Each protocol reads its own section; a
resumed run may change any of them (they do not change what trains)."""

from __future__ import annotations

from dataclasses import dataclass

from mimae.config import Config, param, parse_floats, register_section

# the linear probe's base_lr values (per 256) the budget curve tries and the probe chooses from
PROBE_LRS = "0.1,0.3,1,3,6.4"


@dataclass
class EvalConfig:
    knn_k: int = param(20, "neighbours of the kNN classifier", low=1)
    knn_temperature: float = param(0.07, "temperature of the kNN vote weights", low=1e-4)
    batch_size: int | None = param(None, "images per forward pass when extracting features (None: 128 on a CPU, "
                                         "where a smaller batch stays in cache and runs faster, 512 on a GPU)", low=1)
    knn_bank_limit: int | None = param(10000, "training images used as the kNN bank (None: all); full-resolution "
                                              "encoding is ~4x dearer than masked training, so the in-training "
                                              "check uses a slice", low=1)
    knn_query_limit: int | None = param(5000, "test images classified by kNN (None: all)", low=1)


@dataclass
class LinearConfig:
    epochs: int = param(90, "linear-probe epochs (MAE: 90)", low=1)
    warmup_epochs: float = param(10.0, "linear warmup of the probe, epochs (MAE: 10)", low=0.0)
    batch_size: int = param(256, "probe batch size (MAE: 16384 on ImageNet; lr scales with it)", low=1)
    base_lr: float = param(6.4, "probe learning rate per 256 images; 6.4 at the default batch of 256 is the lr "
                                "MAE's probe runs at (0.1 per 256 at its batch of 16,384), which LARS needs on "
                                "small data", low=0.0)
    optimizer: str = param("lars", "LARS (MAE's probe) or SGD with momentum 0.9", choices=("lars", "sgd"))
    weight_decay: float = param(0.0, "probe weight decay (MAE: 0)", low=0.0)
    reextract: bool = param(False, "re-encode the training images every epoch with RandomResizedCrop + flip, as "
                                   "MAE's probe does (one encoder pass per image per epoch); default: encode the "
                                   "un-augmented images once and train on the cached features")
    crop_scale_min: float = param(0.08, "smallest crop area fraction when reextract=true", low=0.01, high=1.0)
    train_limit: int | None = param(10000, "training images the probe learns from (None: all)", low=1)
    test_limit: int | None = param(5000, "test images it is scored on (None: all)", low=1)
    seed: int = param(0, "seed of the probe's initialization, data order and augmentation", low=0)
    lr_choices: str = param(PROBE_LRS, "base_lr values the cached probe also chooses from: each trained on the "
                                       "training slice less its last validation_images and scored on those, the "
                                       "best refit on the whole slice and scored on the test images, for the "
                                       "encoder and the pixels alike ('linear probe, lr chosen'); empty: none")
    validation_images: int = param(2000, "training images held out to choose the lr (at most a fifth of the "
                                          "training slice)", low=1)

    def validate(self, cfg: Config) -> None:
        parse_floats(self.lr_choices, "linear.lr_choices")


@dataclass
class AlongConfig:
    epochs: str = param("all", "the kept epoch checkpoints `mimae eval along` scores: all, or a list such as "
                               "0,1,2,4,8,16")
    probe_lrs: str = param(PROBE_LRS, "the linear probe's base_lr values (per 256) tried on every checkpoint and on "
                                      "the raw pixels; each accuracy is kept and the best is read off")
    finetune_epochs: str = param("all", "the kept epoch checkpoints `mimae eval finetune-along` fine-tunes (the "
                                        "finetune section's recipe): all, or a list such as 0,2,16; epoch 0 is "
                                        "the initialization, so its fine-tuning is the from-scratch baseline")


@dataclass
class FinetuneConfig:
    epochs: int = param(100, "fine-tuning epochs (paper 000 / MAE: 100)", low=1)
    warmup_epochs: float = param(5.0, "linear warmup, epochs (MAE: 5)", low=0.0)
    batch_size: int = param(128, "images per step (lr scales with it)", low=2)
    base_lr: float = param(1e-3, "learning rate per 256 images (paper 000: 1e-3)", low=0.0)
    min_lr: float = param(1e-6, "learning rate at the end of the cosine schedule", low=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay (none on biases, norms and tokens)", low=0.0)
    layer_decay: float = param(0.75, "layer-wise lr decay: block i of d gets lr * layer_decay^(d - i)",
                               low=0.0, high=1.0)
    drop_path: float = param(0.1, "stochastic depth rate of the encoder while fine-tuning", low=0.0, high=1.0)
    mixup: float = param(0.8, "mixup alpha (0: off)", low=0.0)
    cutmix: float = param(1.0, "cutmix alpha (0: off)", low=0.0)
    label_smoothing: float = param(0.1, "label smoothing", low=0.0, high=1.0)
    rand_augment: str = param("rand-m9-mstd0.5-inc1-mmax9", "timm RandAugment policy, empty for none (MAE: "
                              "rand-m9-mstd0.5-inc1; mmax9 keeps posterize at >= 1 bit, as Pillow now requires)")
    reprob: float = param(0.25, "random-erasing probability", low=0.0, high=1.0)
    crop_scale_min: float = param(0.08, "smallest RandomResizedCrop area fraction", low=0.01, high=1.0)
    train_limit: int | None = param(None, "training images (None: all)", low=1)
    test_limit: int | None = param(None, "test images it is scored on (None: all)", low=1)
    seed: int = param(0, "seed of the head, data order, augmentation and drop path", low=0)


@dataclass
class LowShotConfig:
    fraction: float = param(0.01, "fraction of the training labels kept, per class (paper 000: 1%)",
                            low=1e-5, high=1.0)
    seed: int = param(0, "seed of the class-balanced subset", low=0)
    subset_file: str | None = param(None, "JSON file with the subset's indices: read if it exists, else written "
                                          "(default: lowshot_subset.json beside the checkpoint)")
    epochs: int = param(50, "fine-tuning epochs on the subset (the fine-tune section gives the rest)", low=1)


@dataclass
class RobustnessConfig:
    classifier: str = param("linear", "classifier scored on the corrupted images: the linear probe (linear "
                                      "section) or a fine-tuned model (finetune section; paper 000 Tab. 5)",
                            choices=("linear", "finetune"))
    corruptions: str = param("all", "comma-separated corruption names, or all (the 15 of ImageNet-C)")
    severities: str = param("1,2,3,4,5", "comma-separated severities in 1..5")
    test_limit: int | None = param(1000, "test images corrupted (None: all)", low=1)
    baseline: str | None = param(None, "robustness JSON of the baseline model the corruption errors are divided "
                                       "by (mCE); None: report errors only")
    seed: int = param(0, "seed of the random corruptions", low=0)


register_section("eval", EvalConfig, "evaluation")
register_section("linear", LinearConfig, "linear probe")
register_section("finetune", FinetuneConfig, "fine-tuning")
register_section("along", AlongConfig, "the budget curve: scores of a run's kept epoch checkpoints")
register_section("lowshot", LowShotConfig, "low-shot fine-tuning")
register_section("robustness", RobustnessConfig, "corruption robustness")
