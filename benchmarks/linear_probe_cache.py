"""Linear probe with cached features vs the re-extracting protocol, on the same checkpoint, in one run.

Cached: the un-augmented training images are encoded once and the probe trains on those features for all epochs.
Re-extracting (MAE's protocol): every epoch encodes freshly augmented images (RandomResizedCrop + flip). Both use
the same probe, optimizer, schedule, epochs and test images; the script prints the wall times, their ratio and both
accuracies, and writes them as JSON.

    python benchmarks/linear_probe_cache.py --checkpoint runs/mae --train-limit 512 --test-limit 2000
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from mimae.distributed import pick_device
from mimae.eval.linear import linear_eval
from mimae.runs import load_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    parser.add_argument("--epochs", type=int, default=90)
    parser.add_argument("--train-limit", type=int, default=512, help="training images of the probe")
    parser.add_argument("--test-limit", type=int, default=2000, help="test images")
    parser.add_argument("--batch-size", type=int, default=128, help="probe batch size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="benchmarks/results/linear_probe_cache.json")
    args = parser.parse_args()

    device = pick_device(args.device)
    encoder, cfg, _ = load_encoder(args.checkpoint, device)
    cfg.linear.epochs, cfg.linear.batch_size = args.epochs, args.batch_size
    cfg.linear.train_limit, cfg.linear.test_limit = args.train_limit, args.test_limit
    rows = {}
    for reextract in (False, True):
        cfg.linear.reextract = reextract
        rows["reextract" if reextract else "cached"] = linear_eval(encoder, cfg, device)[1]
    ratio = rows["reextract"]["seconds"] / rows["cached"]["seconds"]

    print(f"linear probe, {args.epochs} epochs, {args.train_limit} training / {args.test_limit} test images, "
          f"{device}, {torch.get_num_threads()} threads")
    print("| protocol | encode s | probe s | total s | accuracy % |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['encode_seconds']:.1f} | {r['probe_seconds']:.1f} | {r['seconds']:.1f} | "
              f"{r['accuracy']:.2f} |")
    print(f"re-extracting / cached wall time: {ratio:.1f}x")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "checkpoint": str(args.checkpoint), "epochs": args.epochs, "train_images": args.train_limit,
        "test_images": args.test_limit, "device": str(device), "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "results": rows, "time_ratio": ratio}, indent=2))
    print(f"written: {output}")


if __name__ == "__main__":
    main()
