"""The benchmarks ``mimae bench`` runs, each returning a JSON-ready dict and the rows of the table it prints.

- ``step``: samples/s of the training step, its split, FLOPs (torch's counter), MFU against a matmul measured in the
  same process on the same device and dtype, peak memory.
- ``lightly``: this project's MAE step against lightly's, alternating rounds, same sizes / batch / images / dtype.
- ``methods``: MI-MAE against MAE per (image, mask) sample, alternating rounds.
- ``knn``: the in-training kNN (init and final, plus the raw-pixel baseline once) as a share of the default job.
- ``data``: images/s the pretraining loader delivers, against the rate the training step consumes them.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mimae.bench.loading import delivery_rate, jpeg_folder
from mimae.bench.machine import matmul_peak, peak_memory, reset_peak_memory
from mimae.bench.rounds import alternate, ratio
from mimae.bench.step import StepBench
from mimae.config import load_config
from mimae.data import image_count, train_test_sets
from mimae.eval.knn import feature_batch, knn_eval, pixel_knn_eval
from mimae.models import build_encoder
from mimae.precision import autocast_dtype

DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def dtype_name(dtype: torch.dtype | None) -> str:
    return DTYPE_NAMES[dtype]


def step_figures(bench: StepBench, rate: float, peak: float) -> dict:
    """FLOPs per sample, achieved FLOP/s at ``rate`` samples/s, and MFU against ``peak`` FLOP/s."""
    flops = bench.flops() / bench.samples_per_step
    return {"gflop_per_sample": flops / 1e9, "achieved_tflops": flops * rate / 1e12,
            "matmul_peak_tflops": peak / 1e12, "mfu": flops * rate / peak}


def step(overrides: dict, device: torch.device, dtype: torch.dtype | None, batch: int, steps: int, rounds: int,
         channels: int) -> dict:
    cfg = load_config(overrides=overrides)
    bench = StepBench(cfg, device, batch, dtype, channels=channels)
    reset_peak_memory(device)
    rates = alternate({"step": bench}, steps, rounds)["step"]
    memory = peak_memory(device)
    phases = bench.split(max(2, steps // 2))
    rate = statistics.median(rates)
    peak = matmul_peak(device, dtype or torch.float32)
    return {"method": cfg.method, "model": cfg.model.dims(), "image_size": cfg.data.image_size,
            "patch_size": cfg.model.patch_size, "channels": channels, "batch": batch, "mask_ratio": cfg.mask.ratio,
            "dtype": dtype_name(dtype), "samples_per_s": rate, "samples_per_s_rounds": rates,
            "step_ms": 1000 * bench.samples_per_step / rate, "split_ms": dataclasses.asdict(phases),
            **step_figures(bench, rate, peak), **memory}


def step_rows(result: dict) -> list[tuple]:
    split = result["split_ms"]
    return [("samples/s", f"{result['samples_per_s']:.1f}"), ("step ms", f"{result['step_ms']:.1f}"),
            *((f"{name} ms (timed apart)", f"{ms:.1f}") for name, ms in split.items()),
            ("GFLOP / sample (fwd+bwd)", f"{result['gflop_per_sample']:.3f}"),
            ("achieved TFLOP/s", f"{result['achieved_tflops']:.3f}"),
            (f"{result['dtype']} matmul peak TFLOP/s", f"{result['matmul_peak_tflops']:.3f}"),
            ("MFU", f"{100 * result['mfu']:.1f}%"),
            (f"peak memory MiB ({result['memory_kind']})", f"{result['peak_memory_mib']:.0f}")]


def lightly(overrides: dict, device: torch.device, dtype: torch.dtype | None, batch: int, steps: int, rounds: int,
            channels: int) -> dict:
    from mimae.bench.lightly_mae import LightlyStepBench
    cfg = load_config(overrides={**overrides, "method": "mae", "mae.norm_pix": False})
    ours = StepBench(cfg, device, batch, dtype, augment=False, channels=channels)
    theirs = LightlyStepBench(cfg, device, ours.prepare()[0], dtype)  # the same fixed, standardized images
    rates = alternate({"mimae": ours, "lightly": theirs}, steps, rounds)
    result = ratio(rates, "mimae", "lightly")
    peak = matmul_peak(device, dtype or torch.float32)
    import lightly as lightly_package
    return {"model": cfg.model.dims(), "image_size": cfg.data.image_size, "patch_size": cfg.model.patch_size,
            "channels": channels, "batch": batch, "mask_ratio": cfg.mask.ratio, "dtype": dtype_name(dtype),
            "lightly_version": lightly_package.__version__, **result, "rates": rates,
            "mimae": step_figures(ours, result["mimae_samples_per_s"], peak)}


def lightly_rows(result: dict) -> list[tuple]:
    return [("mimae MAE samples/s", f"{result['mimae_samples_per_s']:.1f}"),
            (f"lightly {result['lightly_version']} MAE samples/s", f"{result['lightly_samples_per_s']:.1f}"),
            ("mimae / lightly (median of rounds)", f"{result['ratio']:.3f} ({result['ratio_min']:.3f}-"
                                                   f"{result['ratio_max']:.3f}, {result['rounds']} rounds)"),
            ("mimae MFU", f"{100 * result['mimae']['mfu']:.1f}%")]


def methods(overrides: dict, device: torch.device, dtype: torch.dtype | None, batch: int, steps: int, rounds: int,
            channels: int) -> dict:
    """MI-MAE's time per (image, mask) sample over MAE's: MAE at ``batch`` images, MI-MAE at ``batch / N`` images
    of N masked views each, so both steps hold the same samples."""
    cfg = load_config(overrides={**overrides, "method": "mae"})
    mae = StepBench(cfg, device, batch, dtype, channels=channels)
    mimae_cfg = load_config(overrides={**overrides, "method": "mimae"})
    views = StepBench(mimae_cfg, device, 1, dtype, channels=channels).samples_per_step
    mimae = StepBench(mimae_cfg, device, max(1, batch // views), dtype, channels=channels)
    rates = alternate({"mimae": mimae, "mae": mae}, steps, rounds)
    result = ratio(rates, "mae", "mimae")  # MAE's rate / MI-MAE's = MI-MAE's time per sample / MAE's
    return {"model": cfg.model.dims(), "batch_samples": batch, "views": views, "dtype": dtype_name(dtype),
            "mimae_time_per_sample_over_mae": result.pop("ratio"), **result, "rates": rates}


def methods_rows(result: dict) -> list[tuple]:
    return [("MAE samples/s", f"{result['mae_samples_per_s']:.1f}"),
            (f"MI-MAE samples/s (N = {result['views']})", f"{result['mimae_samples_per_s']:.1f}"),
            ("MI-MAE time per sample / MAE's", f"{result['mimae_time_per_sample_over_mae']:.3f} "
                                               f"({result['ratio_min']:.3f}-{result['ratio_max']:.3f})")]


def knn(overrides: dict, device: torch.device, steps: int, rounds: int) -> dict:
    """The default job's in-training kNN (``knn_eval`` at init and at the end, the raw-pixel kNN once) timed, and
    its share of the job, whose training time is estimated from the step benchmark at the job's own batch."""
    cfg = load_config(overrides=overrides)
    dtype = autocast_dtype(cfg.train.precision, device)
    train, _, info = train_test_sets(cfg.data)
    encoder = build_encoder(cfg.model, cfg.data.image_size, info.channels).to(device)
    start = time.perf_counter()
    knn_eval(encoder, cfg, device, progress=False)
    knn_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pixel_knn_eval(cfg)
    pixel_seconds = time.perf_counter() - start
    bench = StepBench(cfg, device, cfg.optim.batch_size, dtype, channels=info.channels)
    rate = statistics.median(alternate({"step": bench}, steps, rounds)["step"])
    samples = cfg.train.epochs * (image_count(train) // cfg.optim.batch_size) * cfg.optim.batch_size
    train_seconds = samples / rate
    total_knn = 2 * knn_seconds + pixel_seconds
    return {"method": cfg.method, "model": cfg.model.dims(), "dtype": dtype_name(dtype),
            "bank": cfg.eval.knn_bank_limit, "queries": cfg.eval.knn_query_limit,
            "eval_batch": feature_batch(cfg, device),
            "knn_seconds": knn_seconds, "pixel_knn_seconds": pixel_seconds, "train_samples": samples,
            "train_samples_per_s": rate, "train_seconds_estimate": train_seconds,
            "knn_share_of_job": total_knn / (train_seconds + total_knn)}


def knn_rows(result: dict) -> list[tuple]:
    return [(f"kNN of the encoder, s (bank {result['bank']}, queries {result['queries']})",
             f"{result['knn_seconds']:.1f}"), ("kNN of the raw pixels, s", f"{result['pixel_knn_seconds']:.1f}"),
            ("training, s (estimated from the step benchmark)", f"{result['train_seconds_estimate']:.0f}"),
            ("kNN share of the job (2 x encoder + pixels)", f"{100 * result['knn_share_of_job']:.1f}%")]


def data(overrides: dict, device: torch.device, dtype: torch.dtype | None, batches: int, steps: int, rounds: int,
         folder: str | None, jpeg_count: int, jpeg_size: int, workers: int | None) -> dict:
    """Delivery rate of the loader for ``cfg``'s dataset and for an ImageFolder of JPEGs trained at
    ``jpeg_size`` px (patch 16), each against the consumption rate of the training step on those images."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = folder or str(jpeg_folder(Path(tmp) / "jpegs", jpeg_count))
        for data_overrides in ({}, {"data.dataset": "imagefolder", "data.data_dir": root,
                                    "data.image_size": jpeg_size, "model.patch_size": 16}):
            case = load_config(overrides={**overrides, **data_overrides})
            delivered = delivery_rate(case, batches, workers)
            channels = train_test_sets(case.data)[2].channels
            bench = StepBench(case, device, case.optim.batch_size, dtype, channels=channels)
            consumed = statistics.median(alternate({"step": bench}, steps, rounds)["step"]) / bench.objective \
                .samples_per_image
            rows.append({**delivered, "train_images_per_s": consumed,
                         "delivered_over_consumed": delivered["images_per_s"] / consumed})
    return {"method": case.method, "dtype": dtype_name(dtype), "cases": rows}


def data_rows(result: dict) -> list[tuple]:
    return [(f"{c['dataset']} {c['image_size']} px, {c['workers']} workers: delivered / consumed img/s",
             f"{c['images_per_s']:.0f} / {c['train_images_per_s']:.1f} = {c['delivered_over_consumed']:.1f}x")
            for c in result["cases"]]
