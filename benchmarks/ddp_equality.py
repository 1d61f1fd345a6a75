"""How far 2 DDP processes of B/2 images are from 1 process of B images, for every method, through the Trainer.

The setting of ``tests/test_trainer_distributed.py`` (a tiny ViT, 8 images, two optimizer steps, gloo on CPU; the
test asserts the bounds, this prints the measured differences), plus MI-MAE's L_max of one global batch computed
over all views (what the Trainer does now) and as the mean of per-process halves (what it did before L_max was
gathered).

Usage (from the repository root, which holds the tests it borrows the setting from): python -m benchmarks.ddp_equality.
Prints a table and writes benchmarks/results/ddp_equality.json.
"""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch.nn import functional as F

from mimae.engine import Trainer
from tests.conftest import free_port
from tests.test_trainer_distributed import GLOBAL_BATCH, VARIANTS, WORLD, equality_worker, two_steps, variant_config

RESULTS = Path(__file__).parent / "results" / "ddp_equality.json"


def relative_gradient_gap(ddp: list[dict], single: list[dict]) -> float:
    """Largest |2-process gradient - 1-process gradient| over steps and parameters, over the step's largest."""
    gaps = []
    for mine, reference in zip(ddp, single):
        scale = max(g.abs().max() for g in reference.values())
        gaps += [((mine[k] - v).abs().max() / scale).item() for k, v in reference.items()]
    return max(gaps)


def main() -> None:
    torch.set_num_threads(1)
    out = tempfile.mkdtemp()
    mp.spawn(equality_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    ranks = [torch.load(f"{out}/rank{r}.pt", weights_only=True) for r in range(WORLD)]
    rows = []
    for name, method, overrides in VARIANTS:
        single = two_steps(Trainer(variant_config(method, overrides, GLOBAL_BATCH), f"{out}/single-{name}"),
                           slice(None))
        row = {"variant": name,
               "max_param_diff": max((r[name]["params"][k] - v).abs().max().item()
                                     for r in ranks for k, v in single["params"].items()),
               "max_relative_grad_diff": max(relative_gradient_gap(r[name]["grads"], single["grads"]) for r in ranks)}
        if single["max_mi"] is not None:
            row.update(l_max_one_process=single["max_mi"].item(), l_max_two_processes=ranks[0][name]["max_mi"].item())
        rows.append(row)
    objective = Trainer(variant_config("mimae", {}, GLOBAL_BATCH), f"{out}/halves").objective
    z = F.normalize(torch.randn(GLOBAL_BATCH, 4, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    half = GLOBAL_BATCH // WORLD
    halves = {"all_views": objective.mi.max_mi(z)[0].item(),
              "mean_of_per_process_halves": sum(objective.mi.max_mi(z[i * half:(i + 1) * half])[0].item()
                                                for i in range(WORLD)) / WORLD}
    print("| variant | max abs param diff | max grad diff / max grad | L_max 1 proc | L_max 2 procs |")
    print("|---|---|---|---|---|")
    for r in rows:
        lmax = (f"{r['l_max_one_process']:.4f} | {r['l_max_two_processes']:.4f}" if "l_max_one_process" in r
                else " | ")
        print(f"| {r['variant']} | {r['max_param_diff']:.1e} | {r['max_relative_grad_diff']:.1e} | {lmax} |")
    print(f"L_max of one global batch ({GLOBAL_BATCH} images x 4 views): {halves['all_views']:.4f} over all views, "
          f"{halves['mean_of_per_process_halves']:.4f} as the mean of {WORLD} per-process halves")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                                   "capability": torch.backends.cpu.get_cpu_capability(), "world": WORLD,
                                   "global_batch": GLOBAL_BATCH, "steps": 2, "optimizer": "SGD at the Trainer's lr",
                                   "variants": rows, "l_max_one_global_batch": halves}, indent=2))


if __name__ == "__main__":
    main()
