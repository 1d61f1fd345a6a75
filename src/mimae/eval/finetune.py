"""End-to-end fine-tuning, MAE protocol, built from timm's parts.

The pretrained encoder becomes a timm ``VisionTransformer`` with MAE's fine-tuning head (mean of the patch tokens,
a fresh ``fc_norm``, a linear head) and drop path; it trains with AdamW under layer-wise lr decay
(``timm.optim.create_optimizer_v2``), a per-iteration warmup + cosine schedule, timm's training transform
(RandomResizedCrop, flip, RandAugment, random erasing), mixup/cutmix with label smoothing (``timm.data.Mixup``,
``SoftTargetCrossEntropy``), and is scored on the un-augmented test images.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
from timm.data import Mixup, create_transform
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer
from timm.optim import create_optimizer_v2
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import to_pil_image

from mimae.config import Config
from mimae.data import DataInfo, image_count, normalize
from mimae.data.loader import default_workers, init_worker
from mimae.eval.config import FinetuneConfig
from mimae.eval.knn import feature_batch
from mimae.export import to_timm
from mimae.models import Encoder
from mimae.optim import learning_rate, set_learning_rate
from mimae.precision import autocast, autocast_dtype
from mimae.progress import progress as progress_bar
from mimae.train_step import TrainStep


class Transformed(Dataset):
    """A dataset of uint8 (C, H, W) images passed through a PIL transform (timm's training transform)."""

    def __init__(self, base: Dataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return image_count(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return self.transform(to_pil_image(image)), label


def train_transform(cfg: FinetuneConfig, info: DataInfo, image_size: int):
    """MAE's fine-tuning transform through timm: RandomResizedCrop (bicubic), flip, RandAugment, normalize,
    random erasing (per-pixel noise)."""
    return create_transform(input_size=(info.channels, image_size, image_size), is_training=True,
                            scale=(cfg.crop_scale_min, 1.0), auto_augment=cfg.rand_augment or None,
                            interpolation="bicubic", re_prob=cfg.reprob, re_mode="pixel", re_count=1,
                            mean=info.mean, std=info.std)


def seed_everything(seed: int) -> None:
    """torch, numpy and random: timm's Mixup draws from numpy, RandAugment from random."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@torch.no_grad()
def classifier_accuracy(model: torch.nn.Module, dataset: Dataset, info: DataInfo, batch_size: int,
                        device: torch.device, dtype: torch.dtype | None = None) -> float:
    """Top-1 accuracy (percent) of a classifier of normalized images on un-augmented uint8 images."""
    model.eval()
    correct = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        with autocast(device, dtype):
            logits = model(normalize(images.to(device), info))
        correct += (logits.argmax(1).cpu() == labels).sum().item()
    return 100.0 * correct / image_count(dataset)


def finetune(encoder: Encoder, train: Dataset, test: Dataset, info: DataInfo, cfg: Config,
             device: torch.device, epochs: int | None = None,
             progress: bool = True) -> tuple[VisionTransformer | SwinTransformer, dict]:
    """Fine-tune a copy of ``encoder`` on ``train`` (uint8 images) for ``epochs`` (default ``cfg.finetune.epochs``);
    returns the timm classifier and a JSON-ready result with its test accuracy."""
    ft = cfg.finetune
    epochs = epochs or ft.epochs
    seed_everything(ft.seed)
    model = to_timm(encoder, info.num_classes, global_pool="avg", drop_path_rate=ft.drop_path).to(device)
    batch = min(ft.batch_size, image_count(train)) // 2 * 2  # mixup pairs images: an even batch
    if batch < 2:
        raise ValueError(f"fine-tuning needs at least 2 training images, got {image_count(train)}")
    loader = DataLoader(Transformed(train, train_transform(ft, info, cfg.data.image_size)), batch_size=batch,
                        shuffle=True, drop_last=True, num_workers=default_workers(train, cfg.data.num_workers),
                        worker_init_fn=init_worker, generator=torch.Generator().manual_seed(ft.seed))
    mixing = ft.mixup > 0 or ft.cutmix > 0
    mixup = Mixup(mixup_alpha=ft.mixup, cutmix_alpha=ft.cutmix, label_smoothing=ft.label_smoothing,
                  num_classes=info.num_classes) if mixing else None
    criterion = SoftTargetCrossEntropy() if mixing else LabelSmoothingCrossEntropy(ft.label_smoothing)
    peak = ft.base_lr * batch / 256
    optimizer = create_optimizer_v2(model, "adamw", lr=peak, weight_decay=ft.weight_decay,
                                    layer_decay=ft.layer_decay)
    dtype = autocast_dtype(cfg.train.precision, device)
    train_step = TrainStep(model, optimizer, device, dtype)  # a gradient scaler where dtype is fp16
    total, warmup = epochs * len(loader), round(ft.warmup_epochs * len(loader))

    def forward(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, targets = batch
        return {"loss": criterion(model(images), targets)}

    step, start = 0, time.perf_counter()
    first_loss: torch.Tensor | None = None
    last_loss: torch.Tensor | None = None
    for _ in progress_bar(range(epochs), desc="fine-tuning", leave=False, enabled=progress):
        model.train()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            if mixup is not None:
                images, labels = mixup(images, labels)
            set_learning_rate(optimizer, learning_rate(step, total, warmup, peak, ft.min_lr))
            last_loss = train_step([(images, labels)], forward).terms["loss"]  # stays on the device
            first_loss = last_loss if first_loss is None else first_loss
            step += 1
    train_seconds = time.perf_counter() - start
    accuracy = classifier_accuracy(model, test, info, feature_batch(cfg, device), device, dtype)
    result = {"protocol": "finetune", "head": "global average pool + fc_norm + Linear",
              "epochs": epochs, "warmup_epochs": ft.warmup_epochs, "batch_size": batch, "base_lr": ft.base_lr,
              "lr": peak, "layer_decay": ft.layer_decay, "weight_decay": ft.weight_decay,
              "drop_path": ft.drop_path, "mixup": ft.mixup, "cutmix": ft.cutmix,
              "label_smoothing": ft.label_smoothing, "rand_augment": ft.rand_augment, "reprob": ft.reprob,
              "seed": ft.seed, "dataset": info.name, "train_images": image_count(train),
              "test_images": image_count(test), "steps": step,
              "first_loss": float("nan") if first_loss is None else float(first_loss),
              "last_loss": float("nan") if last_loss is None else float(last_loss), "accuracy": accuracy,
              "train_seconds": train_seconds}
    return model, result
