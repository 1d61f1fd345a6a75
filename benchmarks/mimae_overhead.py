"""Training time per (image, mask) sample of MI-MAE relative to MAE: same model, same machine, one process.

Each optimizer step sees ``--samples`` (image, mask) samples: MAE ``--samples`` images with one mask each, MI-MAE
``--samples / N`` images with N masks each (its gate forced open, so every loss term is computed and back-propagated).
The two are timed in alternating rounds to cancel drift. Prints the ratio and writes
``benchmarks/results/mimae_overhead.json``.

    flock /tmp/mimae-cpu.lock python benchmarks/mimae_overhead.py              # mini model, fp32, 256 samples/step
    python benchmarks/mimae_overhead.py model.size=tiny train.device=cuda --samples 1024
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mimae.config import load_config, parse_overrides
from mimae.distributed import pick_device
from mimae.objectives import build_objective
from mimae.optim import make_optimizer
from mimae.precision import autocast_dtype

RESULTS = Path(__file__).parent / "results" / "mimae_overhead.json"


class Stepper:
    """One objective with its optimizer and a fixed batch; ``step()`` runs one timed training step."""

    def __init__(self, method: str, overrides: dict, samples: int, device: torch.device):
        torch.manual_seed(0)
        self.cfg = load_config(overrides={**overrides, "method": method})
        self.objective = build_objective(self.cfg, 1).to(device)
        if method == "mimae":
            self.objective.mi.gate_open.fill_(True)
        self.optimizer = make_optimizer(self.objective, self.cfg.optim)
        images = samples // self.objective.views_per_image
        size = self.cfg.data.image_size
        self.images = torch.rand(images, 1, size, size, device=device)
        self.generator = torch.Generator(device).manual_seed(0)
        self.device = device
        self.dtype = autocast_dtype(self.cfg.train.precision, device)

    def step(self) -> float:
        start = time.perf_counter()
        masks = self.objective.draw_masks(self.images.shape[0], self.generator, self.device)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            out = self.objective(self.images, masks)
        out["loss"].backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256, help="(image, mask) samples per step")
    parser.add_argument("--rounds", type=int, default=6, help="alternating timing rounds")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per method per round")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.overrides)
    cfg = load_config(overrides=overrides)
    device = pick_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    steppers = {m: Stepper(m, overrides, args.samples, device) for m in ("mae", "mimae")}
    for stepper in steppers.values():  # warm-up
        stepper.step()
    times: dict[str, list[float]] = {m: [] for m in steppers}
    for _ in tqdm(range(args.rounds), desc="rounds"):
        for method, stepper in steppers.items():
            times[method] += [stepper.step() for _ in range(args.steps)]
    per_sample = {m: statistics.median(t) / args.samples for m, t in times.items()}
    ratio = per_sample["mimae"] / per_sample["mae"]
    result = {"samples_per_step": args.samples, "views": steppers["mimae"].objective.views_per_image,
              "device": str(device), "threads": torch.get_num_threads(), "processor": platform.processor(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "overrides": args.overrides,
              "autocast": str(steppers["mae"].dtype or "none (fp32)"),
              "mimae": {key: getattr(steppers["mimae"].cfg.mimae, key)
                        for key in ("lambda_max", "lambda_min", "projector_dim", "views")},
              "ms_per_sample": {m: 1e3 * v for m, v in per_sample.items()},
              "samples_per_s": {m: 1 / v for m, v in per_sample.items()}, "ratio_mimae_over_mae": ratio,
              "step_seconds": times}
    for method, value in per_sample.items():
        print(f"{method:6s} {1e3 * value:.3f} ms per (image, mask) sample ({1 / value:.0f} samples/s)")
    print(f"MI-MAE / MAE time per sample: {ratio:.3f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
