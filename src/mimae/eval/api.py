"""Evaluate an encoder, or a checkpoint, with the frozen-feature kNN protocol."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from mimae import checkpoint as ckpt
from mimae.config import Config, config_from_dict
from mimae.data import normalize, train_test_sets
from mimae.eval.knn import extract_features, knn_accuracy
from mimae.models import ViTEncoder
from mimae.objectives.base import build_encoder


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX; elsewhere bf16 matrix products are emulated and many times slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision name on a device, or None for fp32.

    ``auto`` picks bf16 on GPUs that support it (else fp16) and on CPUs with native bf16 (else fp32); an explicit
    ``bf16`` is honoured on any CPU and falls back to fp32 on GPUs without it.
    """
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return torch.bfloat16 if bf16_ok else torch.float16
        return {"bf16": torch.bfloat16 if bf16_ok else None, "fp16": torch.float16}.get(precision)
    if precision == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if precision == "bf16" else None


def first(dataset: Dataset, n: int | None) -> Dataset:
    """The first ``n`` items of a dataset (all of it when ``n`` is None or larger)."""
    return dataset if n is None or n >= len(dataset) else Subset(dataset, range(n))


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[ViTEncoder, Config]:
    """The pretrained encoder of a checkpoint (file or run folder), in eval mode, and the run's config."""
    state = ckpt.load(path)
    cfg = config_from_dict(state["config"])
    encoder = build_encoder(cfg, state["in_chans"])
    encoder.load_state_dict(ckpt.encoder_state(state))
    return encoder.to(device).eval(), cfg


def knn_eval(encoder: ViTEncoder, cfg: Config, device: torch.device, progress: bool = True) -> dict:
    """kNN top-1 accuracy of the [CLS] feature: the first ``eval.knn_bank_limit`` training images as the bank, the
    first ``eval.knn_query_limit`` test images as the queries."""
    train, test, info = train_test_sets(cfg.data)
    train, test = first(train, cfg.eval.knn_bank_limit), first(test, cfg.eval.knn_query_limit)
    dtype = autocast_dtype(cfg.train.precision, device)
    bs = cfg.eval.batch_size

    def preprocess(images: torch.Tensor) -> torch.Tensor:
        return normalize(images, info)

    train_x, train_y = extract_features(encoder, train, preprocess, bs, device, dtype,
                                        desc="kNN bank" if progress else None)
    test_x, test_y = extract_features(encoder, test, preprocess, bs, device, dtype,
                                      desc="kNN queries" if progress else None)
    acc = knn_accuracy(train_x, train_y, test_x, test_y, cfg.eval.knn_k, cfg.eval.knn_temperature, info.num_classes)
    return {"protocol": "knn", "feature": "cls", "k": cfg.eval.knn_k, "temperature": cfg.eval.knn_temperature,
            "dataset": info.name, "train_images": len(train), "test_images": len(test), "accuracy": acc}


def knn_checkpoint(path: str | Path, output: str | Path | None = None, device: str = "auto",
                   full: bool = False) -> dict:
    """``mimae eval knn``: evaluate a checkpoint and write the JSON result (default: beside the checkpoint).

    ``full`` uses the whole training split as the bank and the whole test split as queries.
    """
    from mimae.distributed import pick_device
    dev = pick_device(device)
    encoder, cfg = load_encoder(path, dev)
    if full:
        cfg.eval.knn_bank_limit = cfg.eval.knn_query_limit = None
    result = {"checkpoint": str(ckpt.resolve(path)), **knn_eval(encoder, cfg, dev)}
    output = Path(output) if output else ckpt.resolve(path).parent / "eval_knn.json"
    output.write_text(json.dumps(result, indent=2))
    result["output"] = str(output)
    return result
