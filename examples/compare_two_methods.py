"""MAE against MI-MAE at an equal budget, paired by seed, from Python.

Both methods train the same (image, mask) samples, optimizer steps and peak lr (``train.equal_samples``: MI-MAE
takes a quarter of the images per step, each masked 4 ways); at a seed they share initial weights and data order,
so the per-seed differences are paired. Scored by the kNN on Fashion-MNIST (installed with the data package).

    python examples/compare_two_methods.py --epochs 2 --seeds 0 1 2
"""

import argparse
import statistics

import mimae

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--out", default="runs/compare")
parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more config overrides")
args = parser.parse_args()

shared = {"train.epochs": args.epochs, "train.equal_samples": True,
          **dict(item.split("=", 1) for item in args.set)}
accuracy = {}
for method in ("mae", "mimae"):
    for seed in args.seeds:
        run = f"{args.out}/{method}-seed{seed}"
        mimae.pretrain({**shared, "method": method, "train.seed": seed}, run, resume="auto")
        accuracy[method, seed] = mimae.evaluate("knn", run)["accuracy"]
differences = [accuracy["mimae", s] - accuracy["mae", s] for s in args.seeds]
for seed, d in zip(args.seeds, differences):
    print(f"seed {seed}: MAE {accuracy['mae', seed]:.2f}, MI-MAE {accuracy['mimae', seed]:.2f}, d {d:+.2f}")
d = statistics.mean(differences)
if len(differences) > 1:
    se = statistics.stdev(differences) / len(differences) ** 0.5
    print(f"MI-MAE - MAE, paired over {len(differences)} seeds: {d:+.2f} +- {se:.2f} (2 se resolves {2 * se:.2f})")
else:
    print(f"MI-MAE - MAE at one seed: {d:+.2f} (no spread: give --seeds several)")
