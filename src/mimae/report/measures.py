"""What a finished run measured, by name: the kNN of the run itself and every result file the evaluations and
analyses of a sweep leave in its folder, each read into one or more named numbers with a label and a unit.

``eval_<protocol>.json`` gives its ``accuracy`` (and, where it carries one, the same protocol on the raw pixels);
``eval_robustness.json`` its clean and mean corruption errors (the per-corruption errors stay with the run for the
mCE, which needs a baseline: :func:`mean_corruption_errors`); ``eval_linear_along.json`` the linear probe of each kept
epoch checkpoint; ``analysis_reconstruct/reconstruct_metrics.json`` the decoded image's SSIM, FSIM, PSNR and MSE
at the evaluation ratio nearest 0 (paper 003 Fig. 5: the validation images without masking);
``analysis_mask_mi/mask_mi.json`` the mask-invariant information of the run's encoder and ``analysis_rank/rank.json``
how many directions its latents use, each beside its initialization (``... (init)``, the baseline of these measures).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from mimae.eval.robustness import mean_corruption_error
from mimae.eval.suite import PROTOCOLS
from mimae.run_folder import EVAL_PATTERN, eval_name

RECONSTRUCT_FILE = "analysis_reconstruct/reconstruct_metrics.json"
ROBUSTNESS_FILE = eval_name("robustness")
MASK_MI_FILE = "analysis_mask_mi/mask_mi.json"
CHOSEN_LR = "linear_lr_chosen"  # eval_linear.json's probe at the lr it chose on held-out training images
# mask_mi.json's numbers that a comparison shows, under their measure names
MASK_MI_KEYS = {"infonce": "mask_mi_shared", "retrieval": "mask_mi_retrieval", "club": "mask_mi_club",
                "cosine_siblings": "mask_mi_cos_siblings", "cosine_others": "mask_mi_cos_others"}
RANK_FILE = "analysis_rank/rank.json"
RANK_KEYS = {"effective_rank": "rank_effective", "unit_std": "rank_unit_std"}
# the analyses of a run's encoder measured beside its initialization: their file and numbers, under measure names
BESIDE_INIT = {MASK_MI_FILE: MASK_MI_KEYS, RANK_FILE: RANK_KEYS}


@dataclass(frozen=True)
class Measure:
    label: str
    unit: str = "%"
    higher_is_better: bool = True
    judged: bool = True  # a claim "A beats B" is judged on it (False: a diagnostic shown beside, as mask-mi)


MEASURES = {
    "knn_final": Measure("kNN, end of pretraining"), "knn_pixels": Measure("kNN, raw pixels"),
    **{name: Measure(PROTOCOLS[name].label)
       for name in ("knn", "linear", "lowshot", "finetune", "lowshot-scratch", "finetune-scratch")},
    "knn_full": Measure("kNN, full bank"),
    "linear_lr_chosen": Measure("linear probe, lr chosen on held-out training images"),
    "clean_error": Measure("robustness: clean error", higher_is_better=False),
    "corruption_error": Measure("robustness: mean corruption error", higher_is_better=False),
    "mce": Measure("mCE", higher_is_better=False),
    "ssim": Measure("SSIM (no mask)", ""), "fsim": Measure("FSIM (no mask)", ""),
    "psnr": Measure("PSNR (no mask)", "dB"), "mse": Measure("MSE (no mask)", "", higher_is_better=False),
    "mask_mi_shared": Measure("mask-mi: shared by views, InfoNCE bound", "nats", judged=False),
    "mask_mi_retrieval": Measure("mask-mi: view retrieval, top-1", judged=False),
    "mask_mi_club": Measure("mask-mi: input beyond it, CLUB", "nats", higher_is_better=False, judged=False),
    "mask_mi_cos_siblings": Measure("mask-mi: cosine of sibling views", "", judged=False),
    "mask_mi_cos_others": Measure("mask-mi: cosine of different images", "", higher_is_better=False, judged=False),
    "rank_effective": Measure("rank: effective rank of the [CLS] latents", "directions", judged=False),
    "rank_unit_std": Measure("rank: std of the unit [CLS] latents", "", judged=False),
}


def describe(name: str) -> Measure:
    """The label and unit of a measure name, including the derived ones (``linear (pixels)``, ``linear @ 2``)."""
    if name in MEASURES:
        return MEASURES[name]
    base, _, rest = name.partition(" ")
    if rest == "(pixels)" and base in MEASURES:
        return Measure(f"{MEASURES[base].label}, raw pixels", MEASURES[base].unit)
    if rest == "(init)" and base in MEASURES:
        return Measure(f"{MEASURES[base].label}, initialization", MEASURES[base].unit, judged=False)
    if base == "linear_along":
        return Measure(f"linear probe, epoch {rest.removeprefix('@ ')}")
    return Measure(name, "")


def header(name: str) -> str:
    measure = describe(name)
    return f"{measure.label} ({measure.unit})" if measure.unit else measure.label


# the baseline of a protocol that fine-tunes is the same encoder fine-tuned from its initialization (eval *-scratch)
SCRATCH = {"finetune": "finetune-scratch", "lowshot": "lowshot-scratch"}


def baseline_measure(name: str) -> str:
    """The name of the baseline of a measure under the same protocol: the raw pixels for the kNN and the linear
    probe, the same encoder from scratch for fine-tuning, the same encoder at initialization for mask-mi and rank."""
    if name.startswith(("mask_mi_", "rank_")):
        return f"{name} (init)"
    return "knn_pixels" if name == "knn_final" else SCRATCH.get(name, f"{name} (pixels)")


def along_measure(epoch: int) -> str:
    return f"linear_along @ {epoch}"


def read_measures(run_dir: Path, results: dict) -> tuple[dict[str, float], dict | None]:
    """A finished run's named numbers, and its corruption errors ({corruption: {severity: error %}}) if it has any."""
    measures = {key: results[key] for key in ("knn_final", "knn_pixels") if results.get(key) is not None}
    errors = None
    for path in sorted(run_dir.glob(EVAL_PATTERN)):
        result = json.loads(path.read_text())
        if result.get("protocol") == "along":  # the budget curve has a page of its own
            continue
        name = path.stem.removeprefix("eval_")  # eval_knn_full.json -> knn_full
        if isinstance(result.get("accuracy"), (int, float)) and "along" not in result:
            measures[name] = result["accuracy"]
        if "accuracy" in result.get("pixels", {}):
            measures[baseline_measure(name)] = result["pixels"]["accuracy"]
        for source, measure in ((result, CHOSEN_LR), (result.get("pixels", {}), baseline_measure(CHOSEN_LR))):
            if name == "linear" and source.get("lr_chosen"):
                measures[measure] = source["lr_chosen"]["accuracy"]
        for point in result.get("along", []):
            measures[along_measure(point["epoch"])] = point["accuracy"]
        if path.name == ROBUSTNESS_FILE:
            measures["clean_error"] = result["clean_error"]
            measures["corruption_error"] = result["mean_error"]
            errors = result["errors"]
    reconstruct = run_dir / RECONSTRUCT_FILE
    if reconstruct.is_file():
        checkpoint = json.loads(reconstruct.read_text())["checkpoints"][0]
        unmasked = min(checkpoint["by_ratio"], key=lambda row: row["ratio"])
        measures.update(unmasked["decoded"])
    for file, keys in BESIDE_INIT.items():
        path = run_dir / file
        if path.is_file():
            for row in json.loads(path.read_text())["checkpoints"][:2]:  # the run's encoder, then its initialization
                suffix = " (init)" if row.get("init") else ""
                measures.update({f"{name}{suffix}": row[key] for key, name in keys.items()})
    return measures, errors


def mean_corruption_errors(errors: list[dict | None], baseline: list[dict]) -> list[float | None]:
    """The mCE of each run's corruption errors against the mean errors of the baseline runs (per corruption and
    severity), as ImageNet-C's mCE against AlexNet: 100 when a run errs exactly as the baseline's mean."""
    if not baseline:
        return [None] * len(errors)
    mean = {c: {s: statistics.mean(b[c][s] for b in baseline) for s in baseline[0][c]} for c in baseline[0]}
    return [mean_corruption_error(e, mean)["mce"] if e is not None else None for e in errors]
