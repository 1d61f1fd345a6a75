"""Weighted k-nearest-neighbour classification on frozen features (cosine similarity, as DINO), and the frozen
feature extraction that the kNN and the linear probe share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from mimae.config import Config
from mimae.data import DataInfo, normalize, train_test_sets
from mimae.data.augment import match_channels
from mimae.models import Encoder
from mimae.precision import autocast, autocast_dtype
from mimae.progress import progress


def encoder_input(info: DataInfo, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 images (B, C, H, W) -> the standardized float input of an encoder with ``channels`` input channels
    (grayscale is repeated for an RGB encoder, e.g. published ImageNet weights evaluated on Fashion-MNIST)."""
    return lambda images: match_channels(normalize(images, info), channels)


def feature_batch(cfg: Config, device: torch.device) -> int:
    """Images per forward pass of the evaluations: ``eval.batch_size``, else 128 on a CPU (measured 1.6x the
    throughput of 512 there, docs/benchmarks.md) and 512 on an accelerator."""
    return cfg.eval.batch_size or (128 if torch.device(device).type == "cpu" else 512)


def extract_features(encoder: Encoder, dataset: Dataset, preprocess: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int = 512, device="cpu", autocast_dtype: torch.dtype | None = None,
                     pool: str = "cls", desc: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode a labelled dataset of uint8 images; ``preprocess`` turns a uint8 batch into the encoder's input.

    Returns features (N, D) float32 on CPU and labels (N,) int64.
    """
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with torch.inference_mode():
        for images, target in progress(loader, desc=desc, leave=False):
            with autocast(device, autocast_dtype):
                feats.append(encoder.features(preprocess(images.to(device)), pool).float().cpu())
            labels.append(target)
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels).long()  # outside inference mode: tensors a probe can train on


@torch.no_grad()
def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor, k: int = 20,
                temperature: float = 0.07, num_classes: int | None = None, chunk: int = 1024) -> torch.Tensor:
    """Class predictions (M,) for test features (M, D) from a bank (N, D), labels (N,).

    Each of the k most cosine-similar bank entries votes for its class with weight exp(similarity / temperature).
    """
    num_classes = num_classes or int(train_labels.max()) + 1
    bank = torch.nn.functional.normalize(train_feats.float(), dim=1)
    k = min(k, len(bank))
    preds = []
    for start in range(0, len(test_feats), chunk):
        query = torch.nn.functional.normalize(test_feats[start:start + chunk].float(), dim=1)
        sims, idx = (query @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(query), num_classes)
        votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds)


def knn_accuracy(train_feats, train_labels, test_feats, test_labels, k: int = 20, temperature: float = 0.07,
                 num_classes: int | None = None) -> float:
    """Top-1 accuracy in percent."""
    preds = knn_predict(train_feats, train_labels, test_feats, k, temperature, num_classes)
    return 100.0 * (preds == test_labels).float().mean().item()


def knn_sets(cfg: Config):
    """The kNN bank and queries: the first ``eval.knn_bank_limit`` training images and the first
    ``eval.knn_query_limit`` test images, both of the whole splits (not of the pretraining slice
    ``data.train_limit``), so the in-training check and ``mimae eval knn`` read the same images. (bank, queries,
    info)."""
    return train_test_sets(dataclasses.replace(cfg.data, train_limit=cfg.eval.knn_bank_limit,
                                               test_limit=cfg.eval.knn_query_limit))


def knn_result(cfg: Config, feature: str, train_x, train_y, test_x, test_y, info: DataInfo) -> dict:
    acc = knn_accuracy(train_x, train_y, test_x, test_y, cfg.eval.knn_k, cfg.eval.knn_temperature, info.num_classes)
    return {"protocol": "knn", "feature": feature, "k": cfg.eval.knn_k, "temperature": cfg.eval.knn_temperature,
            "dataset": info.name, "train_images": len(train_x), "test_images": len(test_x), "accuracy": acc}


def knn_eval(encoder: Encoder, cfg: Config, device: torch.device, progress: bool = True) -> dict:
    """kNN top-1 accuracy of the [CLS] feature on the images of :func:`knn_sets`."""
    train, test, info = knn_sets(cfg)
    dtype = autocast_dtype(cfg.train.precision, device)
    preprocess = encoder_input(info, encoder.in_chans)
    bs = feature_batch(cfg, device)
    train_x, train_y = extract_features(encoder, train, preprocess, bs, device, dtype,
                                        desc="kNN bank" if progress else None)
    test_x, test_y = extract_features(encoder, test, preprocess, bs, device, dtype,
                                      desc="kNN queries" if progress else None)
    return knn_result(cfg, "cls", train_x, train_y, test_x, test_y, info)


def pixel_knn_eval(cfg: Config) -> dict:
    """The same kNN on the pixels themselves (standardized as the encoder's input, flattened): the baseline that
    learned features have to beat, on the same bank and queries as :func:`knn_eval`."""
    train, test, info = knn_sets(cfg)
    batch = feature_batch(cfg, torch.device("cpu"))
    return knn_result(cfg, "pixels", *pixel_features(train, info, batch), *pixel_features(test, info, batch), info)


def pixel_features(dataset: Dataset, info: DataInfo, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The images themselves as features: standardized as the encoder's input and flattened, (N, C*H*W), with
    their labels (N,)."""
    batches = [(normalize(images, info).flatten(1), labels) for images, labels in
               DataLoader(dataset, batch_size=batch_size)]
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]).long()
