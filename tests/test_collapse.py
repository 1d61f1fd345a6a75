"""The collapse rule (mimae.report.collapse) on constructed runs: InfoNCE at chance, kNN at or below init, latents
whose spread is near 0; and the rule for a run whose MI terms never started."""

import json
import math

import torch

from mimae.report.collapse import collapse, latent_spread, never_started
from mimae.report.measures import MASK_MI_FILE, read_measures

MI_RESULTS = {"effective_batch": 16, "views_per_image": 4, "knn_init": 60.0, "knn_final": 70.0}


def write_metrics(folder, l_max_values):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"step": i, "loss": 1.0, "max_mi": v} for i, v in enumerate(l_max_values)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_infonce_at_chance_is_collapse_and_a_trained_one_is_not(tmp_path):
    chance = math.log(16 * 4 - 1)  # 64 views a step: 4.14 nats
    collapsed = write_metrics(tmp_path / "collapsed", [3.0, chance - 0.02])
    healthy = write_metrics(tmp_path / "healthy", [chance, 2.0])  # at chance early, trained by the end
    wanted = f"L_max {chance - 0.02:.2f} at chance (ln(63) = {chance:.2f}, within 0.1 nats or above)"
    assert collapse(collapsed, MI_RESULTS, {}) == wanted
    assert collapse(healthy, MI_RESULTS, {}) is None


def test_the_logged_chance_is_used_where_the_positives_are_not_the_sibling_views(tmp_path):
    """An EMA-target run's InfoNCE has the B images of a step as candidates: chance ln(16), not ln(63)."""
    folder = write_metrics(tmp_path / "target", [2.0, math.log(16)])
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    lines[-1] = json.dumps({**json.loads(lines[-1]), "infonce_chance": math.log(16)})
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    chance = f"{math.log(16):.2f}"
    assert collapse(folder, MI_RESULTS, {}) == f"L_max {chance} at chance ({chance}, within 0.1 nats or above)"
    assert collapse(write_metrics(tmp_path / "unlogged", [2.0, math.log(16)]), MI_RESULTS, {}) is None  # ln(63) assumed


def test_knn_at_or_below_its_initialization_is_collapse(tmp_path):
    folder = tmp_path / "mae"
    folder.mkdir()
    below = collapse(folder, {"knn_init": 63.2, "knn_final": 61.6}, {})
    assert below == "kNN 61.60 at or below its initialization's 63.20"
    assert collapse(folder, {"knn_init": 63.2, "knn_final": 76.5}, {}) is None
    assert collapse(folder, {"knn_final": 76.5}, {}) is None  # no kNN at initialization: nothing to say


def write_mask_mi(folder, cosine_end, cosine_init):
    """The two rows of a mask-mi analysis with its initialization (`mimae analyze mask-mi --with-init`)."""
    path = folder / MASK_MI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"infonce": 1.0, "retrieval": 1.0, "club": 1.0, "cosine_siblings": 0.9}
    rows = [{**row, "init": False, "cosine_others": cosine_end}, {**row, "init": True, "cosine_others": cosine_init}]
    path.write_text(json.dumps({"checkpoints": rows}))


def test_latents_whose_spread_is_near_0_are_collapse(tmp_path):
    names = ("collapsed", "concentrated", "healthy", "x")
    collapsed, concentrated, healthy, unmeasured = (write_metrics(tmp_path / name, [2.0]) for name in names)
    write_mask_mi(collapsed, 0.9999, 0.92)  # Tab. 3a's (e): every image at one point
    write_mask_mi(concentrated, 0.9764, 0.9214)  # SimCLR: less spread than at initialization, kNN far above it
    write_mask_mi(healthy, 0.60, 0.92)  # MAE: 0.60 against 0.92
    verdicts = {folder.name: collapse(folder, MI_RESULTS, read_measures(folder, MI_RESULTS)[0])
                for folder in (collapsed, concentrated, healthy, unmeasured)}
    assert verdicts == {"collapsed": f"latent spread {math.sqrt(1e-4):.3f}, near 0 (its initialization's "
                                     f"{math.sqrt(0.08):.3f})", "concentrated": None, "healthy": None, "x": None}
    assert latent_spread(read_measures(unmeasured, MI_RESULTS)[0]) is None

    def flagged(fraction_of_line):  # a run whose spread is this fraction of 0.1 x its initialization's
        folder = write_metrics(tmp_path / f"at-{fraction_of_line}", [2.0])
        write_mask_mi(folder, 1 - (0.1 * fraction_of_line) ** 2 * 0.08, 0.92)
        return collapse(folder, MI_RESULTS, read_measures(folder, MI_RESULTS)[0]) is not None

    assert flagged(0.98) and not flagged(1.02)


def test_the_spread_is_the_std_of_unit_latents():
    """sqrt(1 - mean cosine of different vectors) against the root of the total variance of the unit vectors."""
    generator = torch.Generator().manual_seed(0)
    for shift in (0.0, 1.0, 3.0):  # from spread out to pointing one way
        latents = torch.randn(4000, 32, generator=generator, dtype=torch.float64) + shift
        z = torch.nn.functional.normalize(latents, dim=1)
        cosine = z @ z.T
        others = cosine[~torch.eye(len(z), dtype=torch.bool)].mean().item()
        std = z.var(dim=0, unbiased=False).sum().sqrt().item()
        assert math.isclose(math.sqrt(1 - others), std, rel_tol=1e-3), (shift, others, std)


def test_a_run_whose_weighted_mi_terms_never_started_did_not_test_its_method():
    closed = {"gate_step": None, "gate_rec": 0.812}
    assert never_started(closed, 0.1, 0.0) == "its MI terms never started (running L_rec 0.812 at the end)"
    assert never_started({"gate_step": None, "gate_rec": None}, 0.0, 1.0) == "its MI terms never started"
    assert never_started({"gate_step": 70, "gate_rec": 0.69}, 0.1, 0.0) is None  # opened at step 70
    assert never_started(closed, 0.0, 0.0) is None  # nothing weighted (the control): it trained what it asked for
    assert never_started({"knn_final": 70.0}, 0.1, 0.0) is None  # MAE, or a run from before gate_step: unknown
