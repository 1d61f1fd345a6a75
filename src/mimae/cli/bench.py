"""``mimae bench``: argument parsing and printing for the benchmarks of :mod:`mimae.bench.suite`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mimae.presets import TINY

BENCHMARKS = {
    "step": "samples/s of the pretraining step, its split, FLOPs, MFU and peak memory",
    "lightly": "this project's MAE step against lightly's (pip install 'mimae[bench]'), alternating rounds",
    "methods": "MI-MAE's time per (image, mask) sample against MAE's, alternating rounds",
    "knn": "the in-training kNN of the default job, as a share of its wall time",
    "data": "images/s the pretraining loader delivers (Fashion-MNIST, JPEG folder) against what the step consumes",
}
# the step, lightly and methods benchmarks' model: ViT-Tiny (192/12/3, decoder 128/2/4), 32 px, patch 4
STEP_MODEL = {"model.size": "tiny", "data.image_size": 32, "model.patch_size": 4}
SMOKE = {**TINY, "eval.knn_bank_limit": 200, "eval.knn_query_limit": 100, "data.train_limit": 512,
         "optim.batch_size": 16}

EPILOG = """\
Examples:
  mimae bench all                                   # every benchmark at its documented size (minutes)
  mimae bench step --precision bf16 --batch 256
  mimae bench lightly --rounds 8 model.size=small
  mimae bench data --folder /data/imagenet          # a folder with train/ and val/ class folders
  mimae bench all --smoke                           # seconds: that every benchmark runs
Each writes its JSON (with the machine: CPU, torch's CPU capability, threads, device) to --out.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks: step throughput and MFU, lightly side by side, data, kNN",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    bench.add_argument("name", choices=(*BENCHMARKS, "all"), help="; ".join(f"{k}: {v}" for k, v in
                                                                          BENCHMARKS.items()))
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                       help="autocast dtype (auto: bf16 where the device has it natively, else fp32)")
    bench.add_argument("--batch", type=int, default=128, help="images per step (step, lightly; methods: samples)")
    bench.add_argument("--channels", type=int, default=3, help="input channels of the step benchmarks")
    bench.add_argument("--steps", type=int, default=5, help="steps per timed round")
    bench.add_argument("--rounds", type=int, default=6, help="timed rounds (alternating in side-by-sides)")
    bench.add_argument("--folder", default=None, help="data: an ImageFolder (train/, val/) instead of generated JPEGs")
    bench.add_argument("--jpegs", type=int, default=512, help="data: generated JPEGs (320 x 256 px)")
    bench.add_argument("--workers", type=int, default=None, help="data: loader workers (default: the training's)")
    bench.add_argument("--smoke", action="store_true", help="a tiny model, one step per round: seconds")
    bench.add_argument("--out", default="benchmarks/results", help="folder of the JSON results")
    bench.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    bench.set_defaults(func=cmd_bench)


def run_one(name: str, args: argparse.Namespace, overrides: dict):
    """(result, rows) of one benchmark."""
    import torch

    from mimae.bench import suite
    from mimae.distributed import pick_device
    from mimae.precision import autocast_dtype
    device = pick_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    steps, rounds = (1, 2) if args.smoke else (args.steps, args.rounds)
    batch = 8 if args.smoke else args.batch
    torch.manual_seed(0)
    if name in ("step", "lightly", "methods"):
        result = getattr(suite, name)({**STEP_MODEL, **overrides}, device, dtype, batch, steps, rounds, args.channels)
    elif name == "knn":
        result = suite.knn(overrides, device, steps, rounds)
    else:
        result = suite.data(overrides, device, dtype, 2 if args.smoke else 20, steps, rounds, args.folder,
                            16 if args.smoke else args.jpegs, 32 if args.smoke else 224, args.workers)
    return result, getattr(suite, f"{name}_rows")(result)


def cmd_bench(args: argparse.Namespace) -> int:
    from mimae.bench.machine import describe
    from mimae.config import parse_overrides
    from mimae.distributed import pick_device
    overrides = {**(SMOKE if args.smoke else {}), **parse_overrides(args.overrides)}
    machine = describe(pick_device(args.device))
    print(f"{machine['cpu']} ({machine['cpu_capability']}, {machine['threads']} threads), torch {machine['torch']}, "
          f"{machine.get('device_name', machine['device'])}")
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        start = time.perf_counter()
        result, rows = run_one(name, args, overrides)
        print(f"\n{name}: {BENCHMARKS[name]}")
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            print(f"  {label:<{width}}  {value}")
        path = out / f"{name}{'_smoke' if args.smoke else ''}.json"
        path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d"), "machine": machine,
                                    "command": ["mimae", *sys.argv[1:]] if sys.argv else [], "result": result,
                                    "seconds": time.perf_counter() - start}, indent=1) + "\n")
        print(f"  -> {path}")
    return 0
