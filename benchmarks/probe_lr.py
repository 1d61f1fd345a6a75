"""The linear probe's accuracy against its learning rate, on one checkpoint's features and on the raw pixels, the
same images, epochs and batch: the measurement behind docs/evaluation.md's table.

    python benchmarks/probe_lr.py --checkpoint runs/mae
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from mimae.data import first, train_test_sets
from mimae.eval.knn import feature_batch, pixel_features
from mimae.eval.linear import frozen_features, linear_probe_features
from mimae.runs import load_encoder

PROBES = [("lars", 0.1), ("lars", 1.0), ("lars", 6.4), ("lars", 20.0), ("sgd", 0.1), ("sgd", 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    parser.add_argument("--output", default="docs/results/probe_lr.json")
    args = parser.parse_args()
    encoder, cfg, _ = load_encoder(args.checkpoint)
    lin = cfg.linear
    encoded = frozen_features(encoder, cfg, torch.device("cpu"), {"train": lin.train_limit, "test": lin.test_limit})
    train, test, info = train_test_sets(cfg.data)
    batch = feature_batch(cfg, "cpu")
    features = {"encoder": (*encoded["train"], *encoded["test"]),
                "pixels": (*pixel_features(first(train, lin.train_limit), info, batch),
                           *pixel_features(first(test, lin.test_limit), info, batch))}
    rows = []
    for optimizer, base_lr in PROBES:
        probe = copy.deepcopy(lin)
        probe.optimizer, probe.base_lr = optimizer, base_lr
        row = {"optimizer": optimizer, "base_lr": base_lr, "lr": base_lr * probe.batch_size / 256}
        for name, (tx, ty, vx, vy) in features.items():
            row[name] = linear_probe_features(tx, ty, vx, vy, probe, info.num_classes)[1]
        print(f"{optimizer} base_lr {base_lr:g}: encoder {row['encoder']:.2f}  pixels {row['pixels']:.2f}", flush=True)
        rows.append(row)
    result = {"checkpoint": str(args.checkpoint), "train_images": len(features["encoder"][0]),
              "test_images": len(features["encoder"][2]), "epochs": lin.epochs, "batch_size": lin.batch_size,
              "probe_seed": lin.seed, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "rows": rows}
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
