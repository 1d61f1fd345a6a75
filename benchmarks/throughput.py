"""Training throughput (images/s) of one pretraining step in fp32 and bf16 autocast, same model, same process.

Usage: python benchmarks/throughput.py [--method mae] [--steps 8] [--batch 128] [key=value ...]
Prints a table and writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mimae.config import load_config, parse_overrides
from mimae.objectives import build_objective
from mimae.optim import make_optimizer


def images_per_second(cfg, dtype: torch.dtype | None, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    objective = build_objective(cfg, 1)
    optimizer = make_optimizer(objective, cfg.optim)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 1, cfg.data.image_size, cfg.data.image_size)
    timings = []
    for _ in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = objective(images, objective.draw_masks(batch, gen))
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - start)
    return batch / (sum(timings[2:]) / steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="mae")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    overrides = {"method": args.method, **parse_overrides(args.overrides)}
    cfg = load_config(overrides=overrides)
    rows = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        rows[name] = images_per_second(cfg, dtype, args.steps, args.batch)
        print(f"{name}: {rows[name]:8.1f} images/s")
    rows["bf16_over_fp32"] = rows["bf16"] / rows["fp32"]
    print(f"bf16 / fp32: {rows['bf16_over_fp32']:.3f}")
    out = Path(__file__).parent / "results" / "throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"method": args.method, "model": cfg.model.dims(), "batch": args.batch,
                               "threads": torch.get_num_threads(), "cpu_capability":
                               torch.backends.cpu.get_cpu_capability(), **rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
