"""Weighted k-nearest-neighbour classification on frozen features (cosine similarity, as DINO)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mimae.models import ViTEncoder


@torch.no_grad()
def extract_features(encoder: ViTEncoder, dataset: Dataset, preprocess: Callable[[torch.Tensor], torch.Tensor],
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
    for images, target in tqdm(loader, desc=desc, leave=False, disable=desc is None):
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            feats.append(encoder.features(preprocess(images.to(device)), pool).float().cpu())
        labels.append(target)
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels).long()


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
