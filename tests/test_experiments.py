"""Every named experiment runs end to end at its smoke scale: each row trains with its own settings, and the report
lists the rows in the paper's order with the paper's numbers in their labelled column."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mimae.cli import main
from mimae.config import ConfigError, load_config, parse_overrides
from mimae.experiments.catalog import experiments
from mimae.experiments.spec import SMOKE, SMOKE_SCALE, Experiment, Row, check_budgets, run_experiment
from mimae.experiments.sweep import Point, resolved_config, run_sweep, slug
from mimae.report.claims import Claim
from mimae.report.comparison import BASELINE_LABEL

ROOT = Path(__file__).resolve().parents[1]

RUNNABLE = [name for name, exp in experiments().items() if not exp.unavailable]


def row_config(args: tuple[str, ...]):
    tokens = list(args)
    method = tokens[tokens.index("--method") + 1] if "--method" in tokens else None
    overrides = parse_overrides([t for t in tokens if "=" in t and not t.startswith("-")])
    return load_config(overrides={**overrides, **({"method": method} if method else {})}), overrides


def smoke_groups() -> list[list[str]]:
    """The runnable experiments, those that share their runs at the smoke scale (``runs_of``) in one group (any of
    them may train a shared run first)."""
    groups: dict[str, list[str]] = {}
    for name in RUNNABLE:
        groups.setdefault(experiments()[name].folder("smoke"), []).append(name)
    return list(groups.values())


def check_rows(exp, folder):
    """The sweep trained every row, in the paper's order, with the row's own settings."""
    sweep = json.loads((folder / "sweep.json").read_text())
    assert [p["label"] for p in sweep["points"]] == [row.label for row in exp.rows]
    for point, row in zip(sweep["points"], exp.rows):
        assert point["results"]["steps"] >= 1
        ran = load_config(f"{point['run_dir']}/config.yaml")
        wanted, overrides = row_config(row.args)
        assert ran.method == wanted.method
        for key in overrides:
            section, option = key.split(".")
            assert getattr(getattr(ran, section), option) == getattr(getattr(wanted, section), option), key
    return sweep


@pytest.mark.slow
@pytest.mark.parametrize("names", smoke_groups(), ids=lambda names: "+".join(names))
def test_every_experiment_runs_at_smoke_scale(names, tmp_path):
    for name in names:
        exp = experiments()[name]
        paths = run_experiment(exp, "smoke", tmp_path, say=lambda text: None, runner=main)  # in this process
        text = paths["markdown"].read_text()
        assert text.startswith(f"# {exp.source}: {exp.title}") and paths["html"].is_file()
        if exp.command is not None or exp.page is not None:  # a page of its own: its JSON and figure
            assert paths["json"].is_file() and "![" in text
            if exp.page is not None:  # the budget curve archives as a comparison does
                from mimae.experiments.archive import archive
                runs = archive(tmp_path / name / "smoke", tmp_path / "archived" / name)
                data = json.loads((tmp_path / "archived" / name / "budget.json").read_text())
                assert [f"runs/{run.name}" for run in runs] == data["runs"] and (runs[0] / "eval_along.json").is_file()
                assert (runs[0] / "eval_finetune-along.json").is_file() and "fine-tune: MAE / from scratch" in text
            continue
        sweep = check_rows(exp, tmp_path / exp.folder("smoke") / "smoke")
        lines = [line for line in text.splitlines() if line.startswith("| ")]
        assert [line.split(" | ")[0][2:] for line in lines[1:len(exp.rows) + 1]] == [r.label for r in exp.rows]
        assert BASELINE_LABEL in text
        if any(row.paper for row in exp.rows):
            assert f"{exp.source} (paper)" in lines[0]
        else:  # a page without the paper's numbers has no column for them (paper003-fig5: a figure without values)
            assert "(paper)" not in lines[0]
        header = lines[0]
        for evaluation in exp.scale("smoke").evaluations:  # every evaluation of the scale reached the table
            wanted = {"linear": "linear probe (%)", "lowshot": "1% fine-tune (%)", "finetune": "fine-tune (%)",
                      "robustness": "mCE (%)", "linear-along": "linear probe, epoch 1 (%)",
                      "reconstruct": "SSIM (no mask)",
                      "mask-mi": "mask-mi: shared by views, InfoNCE bound (nats)",
                      "rank": "rank: effective rank of the [CLS] latents (directions)"}[evaluation]
            assert wanted in header, (name, evaluation)
            assert all(point["measures"] for point in sweep["points"])
        if exp.curves:
            assert (paths["markdown"].parent / "figures" / "curves.png").is_file()


def test_list_and_show_name_every_experiment_and_the_unrunnable_ones_say_why(capsys):
    assert main(["experiment", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in experiments())
    assert "not runnable here: needs the COCO" in listed
    assert main(["experiment", "show", "paper000-tab3a"]) == 0
    shown = capsys.readouterr().out
    assert "(f) all (MI-MAE)" in shown and "mimae.lambda_min=10" in shown and "[paper: fine-tune 82.8]" in shown
    # a row that overrides a pinned key shows the value it trains with, once
    assert main(["experiment", "show", "paper000-tab3c"]) == 0
    independent = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  independent  "))
    assert "mimae.lambda_min=10 mimae.masking=independent" in independent and "lambda_min=0" not in independent
    assert main(["experiment", "run", "paper000-tab2", "--scale", "cpu"]) == 2
    assert "cannot run here" in capsys.readouterr().err
    assert main(["experiment", "show", "nope"]) == 2


def test_every_experiment_holds_the_budgets_of_the_rows_it_compares_equal():
    """Every row of every scale makes a valid config, and the rows an experiment compares train the same samples,
    steps and peak lr (checked from the configs, before anything trains)."""
    checked = 0
    for exp in experiments().values():
        if exp.command is not None or exp.unavailable:
            continue
        for scale in exp.scales:
            assert check_budgets(exp.budgets(scale), exp.name, exp.compared_pairs())
            checked += 1
    assert checked >= 40


def unequal_experiment(*rows: Row, claims: tuple[Claim, ...] = ()) -> Experiment:
    return Experiment("toy", "toy", "toy", rows, {"smoke": SMOKE_SCALE}, "none", claims=claims)


def test_the_plan_lists_what_is_left_at_the_pace_of_the_finished_runs(tmp_path, capsys):
    """A finished MAE run that took 600 s for 100 steps and 60 s for its linear probe: a run at step 25 of 100 has
    450 s of pretraining and the probe left, one not started 660 s; mask-mi, which no run measured, is named."""
    import torch

    from mimae.config import save_config
    from mimae.experiments.plan import describe_plan, plan
    scale = replace(SMOKE_SCALE, evaluations=("linear", "mask-mi"), seeds=(0, 1, 2))
    toy = Experiment("toy", "toy", "toy", (Row("MAE", ("--method", "mae")),), {"smoke": scale}, "none")
    runs = tmp_path / "toy" / "smoke"
    done, started = runs / "MAE,seed=0", runs / "MAE,seed=1"
    for run_dir in (done, started):
        run_dir.mkdir(parents=True)
        save_config(load_config(overrides={"method": "mae"}), run_dir / "config.yaml")
    (done / "results.json").write_text(json.dumps({"steps": 100, "train_seconds": 600.0}))
    (done / "sweep_times.json").write_text(json.dumps({"linear": 60.0, "mask-mi": None}))
    (done / "eval_linear.json").write_text("{}")
    torch.save({"step": 100}, done / "checkpoint.pt")
    torch.save({"step": 25}, started / "checkpoint.pt")
    plans, folder = plan(toy, "smoke", tmp_path)
    assert folder == runs
    assert [(p.name, p.state) for p in plans] == [("MAE,seed=0", "evaluations left"),
                                                   ("MAE,seed=1", "started: step 25"), ("MAE,seed=2", "not started")]
    assert plans[0].left == {"mask-mi": None}
    assert describe_plan(plans, folder)[0].split()[-2:] == ["?", "mask-mi"]  # nothing measured: no "0 min"
    assert plans[1].left == {"pretrain": 450.0, "linear": 60.0, "mask-mi": None} and plans[1].seconds == 510.0
    assert plans[2].left == {"pretrain": 600.0, "linear": 60.0, "mask-mi": None} and plans[2].unknown == ["mask-mi"]
    lines = describe_plan(plans, folder)
    assert lines[1].split() == ["MAE,seed=1", "started:", "step", "25", "8", "min", "+", "?", "pretrain,", "linear,",
                                "mask-mi"]  # 510 s; mask-mi unknown
    assert lines[-1] == (f"3 of 3 runs to finish in {runs}: about 20 min one at a time, at the pace of the finished "
                         "runs there; not counted: mask-mi (no finished run measured it)")
    (done / "checkpoint.pt").unlink()  # as restored from an archive: no evaluation can be added
    plans, _ = plan(toy, "smoke", tmp_path)
    assert (plans[0].state, plans[0].left, plans[0].lacking) == ("finished, no weights", {}, ("mask-mi",))
    assert describe_plan(plans, folder)[-1] == ("MAE,seed=0 lacks mask-mi: it finished without its weights (restored "
                                                "from an archive), so it cannot get them")
    assert main(["experiment", "run", "paper000-tab3a", "--scale", "smoke", "--root", str(tmp_path), "--plan",
                 "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert out.split()[:3] == ["MAE,seed=0", "not", "started"]  # row (a): the shared folder's MAE run
    assert "7 of 7 runs to finish" in out
    assert not (tmp_path / "paper000-tab1").exists()  # nothing trained


def test_a_page_shows_only_its_own_source_s_numbers():
    """paper003-fig5 shows the runs of paper003-tab1; Tab. 1's linear-probe numbers are not Fig. 5's (a figure
    without values), so its rows carry none."""
    tab1, fig5 = experiments()["paper003-tab1"], experiments()["paper003-fig5"]
    assert [row.label for row in fig5.rows] == [row.label for row in tab1.rows]
    assert all(row.paper for row in tab1.rows) and not any(row.paper for row in fig5.rows)


def test_the_plan_times_a_run_by_its_own_rows_other_seeds_first():
    """A row's finished seeds set its pace; a row none of whose seeds finished takes its method's median, a method
    none of whose runs finished the median of all, each scaled by the row's FLOPs per step over the lender's."""
    from mimae.experiments.plan import Pace, row_of
    pace = Pace({("fast", "mimae"): [(1000.0, 100)], ("slow", "mimae"): [(3000.0, 100)],
                 ("MAE", "mae"): [(2000.0, 100), (2200.0, 100)]}, {})
    assert row_of("small_lambda2_projector,seed=3") == "small_lambda2_projector"
    assert pace.pretrain_seconds("fast", "mimae", 0) == 1000.0
    assert pace.pretrain_seconds("slow", "mimae", 50) == 1500.0  # pro rata: half its steps left
    assert pace.pretrain_seconds("new", "mimae", 0) == 2000.0  # median of the method's 1000 and 3000
    assert pace.pretrain_seconds("new", "simclr", 0) == 2100.0  # median of all four
    assert Pace({}, {}).pretrain_seconds("MAE", "mae", 0) is None
    # another row's pace is scaled by FLOPs per step: "new" costs 4 steps of "fast" and 2 of "slow"
    pace.flops = {"fast": 1.0, "slow": 2.0, "new": 4.0, "MAE": 1.0}.__getitem__
    assert pace.pretrain_seconds("new", "mimae", 0) == 5000.0  # median of 4 x 1000 and 2 x 3000
    assert pace.pretrain_seconds("fast", "mimae", 0) == 1000.0  # its own row: as measured


def test_a_pause_does_not_set_the_pace(tmp_path):
    """Ten windows of 10 steps at 100 images/s (1 s a step at 100 images a step: 100 s) and one that stood still
    (a 10-step window at 0.5 images/s: 2,000 s): the pace counts the paused window at 3x the median, 30 s."""
    from mimae.config import save_config
    from mimae.experiments.plan import active_seconds, measured_pace
    run_dir = tmp_path / "MAE,seed=0"
    run_dir.mkdir()
    lines = [{"step": 0, "knn_init": 50.0}] + [{"step": 10 * k, "images_per_s": 100.0} for k in range(1, 11)]
    lines.insert(4, {"step": 35, "knn": 60.0})  # evaluation lines carry no window
    lines.append({"step": 110, "images_per_s": 0.5})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert active_seconds(run_dir, 2100.0) == pytest.approx(130.0)
    assert active_seconds(tmp_path / "no-log", 2100.0) == 2100.0
    save_config(load_config(overrides={"method": "mae"}), run_dir / "config.yaml")
    (run_dir / "results.json").write_text(json.dumps({"steps": 110, "train_seconds": 2100.0}))
    assert measured_pace(tmp_path).pretraining == {("MAE", "mae"): [(pytest.approx(130.0), 110)]}


def test_the_budget_check_refuses_unequal_rows_and_accepts_a_declared_difference():
    mae, mimae = Row("MAE", ("--method", "mae")), Row("MI-MAE", ("--method", "mimae"))
    # without equal samples MI-MAE takes 16 images x 4 masks where MAE takes 16 x 1: 4x the samples and the lr
    with pytest.raises(ConfigError, match=r"toy: rows it compares would train unequal budgets .*MI-MAE: 16 images "
                                          r"x 4 samples = 64 samples per step"):
        check_budgets(unequal_experiment(mae, mimae).budgets("smoke"), "toy")
    equal = ("train.equal_samples=true",)
    line = check_budgets(unequal_experiment(Row("MAE", (*mae.args, *equal)), Row("MI-MAE", (*mimae.args, *equal)))
                         .budgets("smoke"), "toy")
    assert line.startswith("Equal budget: every row compared trains 16 (view, mask) samples per step")
    assert "MAE 16 x 1, MI-MAE 4 x 4" in line
    longer = Row("MAE, 4 epochs", (*mae.args, "train.epochs=4"), differs="a budget sweep: 4x the epochs")
    line = check_budgets(unequal_experiment(mae, longer).budgets("smoke"), "toy")
    assert "Declared differences: MAE, 4 epochs: a budget sweep: 4x the epochs." in line
    claim = (Claim("longer is better", "MAE, 4 epochs", "MAE"),)
    toy = unequal_experiment(mae, longer, claims=claim)
    with pytest.raises(ConfigError, match="unequal budgets"):  # a claim between them would compare budgets
        check_budgets(toy.budgets("smoke"), "toy", toy.compared_pairs())
    with pytest.raises(ConfigError, match="unequal budgets"):
        run_experiment(unequal_experiment(mae, mimae), "smoke", "/nonexistent", say=lambda text: None)


def shared_folder_configs() -> dict[tuple[str, str, str], dict]:
    """(experiment, scale, run folder) -> the resolved config, for every point that trains into paper000-tab1's
    folder at the smoke and cpu scales."""
    return {(exp.name, scale, point.name): resolved_config(point.overrides()).to_dict()
            for exp in experiments().values() if exp.command is None and not exp.unavailable
            for scale in ("smoke", "cpu") if scale in exp.scales and exp.folder(scale).startswith("paper000-tab1")
            for point in exp.points(scale, (0,))}


def test_the_shared_runs_stay_valid_if_mimae_defaults_move(monkeypatch):
    """Every config holds the mimae section (MAE's too), and a finished run is refused if its resolved config
    differs; the shared folder's runs pin the MI terms' weights, so moving MI-MAE's defaults (as they moved once, to
    L_max 0.1 on a projection) leaves every one of its runs valid."""
    import mimae.config as config_module
    from mimae.objectives.mi_terms import MIMAEConfig
    before = shared_folder_configs()
    assert len(before) >= 20
    paper_recipe = resolved_config(["--config", str(ROOT / "configs" / "paper000_ablation.yaml"), "--method", "mimae"])

    @dataclasses.dataclass
    class MovedDefaults(MIMAEConfig):
        lambda_max: float = 0.5
        projector_dim: int = 64

    monkeypatch.setitem(config_module.sections(), "mimae", (MovedDefaults, "moved"))
    assert resolved_config(["--method", "mimae"]).mimae.projector_dim == 64  # the defaults did move
    assert shared_folder_configs() == before
    # the paper scale's recipe spells the paper's losses out too
    moved = resolved_config(["--config", str(ROOT / "configs" / "paper000_ablation.yaml"), "--method", "mimae"])
    assert dataclasses.asdict(moved.mimae) == dataclasses.asdict(paper_recipe.mimae)


def test_points_that_share_a_run_folder_train_it_with_the_same_config():
    """``runs_of`` and ``Row.run``: wherever two rows (of one table or of tables training into the same folder)
    land in the same run folder at a scale, they train the very same config, so either table may train it first;
    and each ``Row.run`` lands on a folder another row trains."""
    folders: dict[tuple[str, str, str], list[tuple[str, str, dict]]] = {}
    for exp in experiments().values():
        if exp.command is not None or exp.unavailable:
            continue
        for scale in exp.scales:
            for point in exp.points(scale, (0,)):
                folders.setdefault((scale, exp.folder(scale), point.name), []).append(
                    (exp.name, point.label, resolved_config(point.overrides()).to_dict()))
    shared = {key: rows for key, rows in folders.items() if len(rows) > 1}
    assert len(shared) >= 15
    for key, rows in shared.items():
        assert all(config == rows[0][2] for _, _, config in rows), (key, [(e, label) for e, label, _ in rows])
    for exp in experiments().values():
        for scale in exp.scales:
            for row in exp.rows:
                if row.run and exp.command is None:
                    assert (scale, exp.folder(scale), f"{slug(row.run)},seed=0") in folders, (exp.name, row.label)
    assert experiments()["mimae-screen"].folder("cpu") == experiments()["paper000-tab3a"].folder("cpu") == \
        "paper000-tab1" != experiments()["paper000-tab3a"].folder("paper")
    trained_elsewhere = {point.name for name in ("mimae-screen", "paper000-tab3a", "paper000-tab1")
                         for point in experiments()[name].points("cpu", (0,))}
    assert {point.name for point in experiments()["mimae-confirm"].points("cpu", (0,))} <= trained_elsewhere


def test_a_sweep_refuses_a_finished_run_of_other_options(tmp_path):
    """A run folder another experiment (or an earlier sweep) finished with other options is never taken for this
    point's run: the sweep stops before running anything, naming the key; the same options are accepted."""
    point = Point({}, 0, [*SMOKE, "--method", "mae"], "MAE")
    run_sweep(tmp_path, [point], say=lambda text: None, runner=main)
    other = Point({}, 0, [*SMOKE, "--method", "mae", "optim.base_lr=0.002"], "MAE")
    with pytest.raises(ConfigError, match=r"holds a finished run of other options than MAE,seed=0 asks for "
                                          r"\(trained vs asked\): optim.base_lr \(0.003 vs 0.002\)"):
        run_sweep(tmp_path, [other], say=lambda text: None, runner=main)
    longer = Point({}, 0, [*SMOKE, "--method", "mae", "train.epochs=2"], "MAE")  # a finished run is not extended
    with pytest.raises(ConfigError, match=r"train.epochs \(1 vs 2\)"):
        run_sweep(tmp_path, [longer], say=lambda text: None, runner=main)
    elsewhere = Point({}, 0, [*SMOKE, "--method", "mae", "train.threads=1", "data.num_workers=0"], "MAE")
    assert run_sweep(tmp_path, [elsewhere], say=lambda text: None, runner=main)["points"][0]["results"]


def test_an_experiment_runs_only_the_rows_asked_for_and_its_page_names_the_rest(tmp_path):
    exp = experiments()["paper000-tab3c"]
    with pytest.raises(ConfigError, match="has no row 'nope'; its rows: independent; orthogonal"):
        exp.points("smoke", rows=["nope"])
    points = exp.points("smoke", (0, 1), rows=["MAE, same samples", "independent"])
    assert [(p.label, p.seed) for p in points] == [("independent", 0), ("MAE, same samples", 0),
                                                   ("independent", 1), ("MAE, same samples", 1)]
    tab1 = experiments()["paper000-tab1"]  # the evaluations of the initialization go with the first row run
    assert [p.evaluations for p in tab1.points("smoke", rows=["MI-MAE", "MAE"])] == [tab1.scale("smoke").per_seed, ()]
    paths = run_experiment(exp, "smoke", tmp_path, say=lambda text: None, runner=main, rows=["independent"])
    text = paths["markdown"].read_text()
    assert "| independent |" in text and "| orthogonal |" not in text
    assert ("neither shown nor judged by a claim: orthogonal; orthogonal, lambda3 = 0; independent, "
            "lambda3 = 0; MAE, same samples.") in text


def test_an_evaluation_of_the_initialization_runs_once_a_seed_whichever_row_carries_it(tmp_path):
    """Per-seed evaluations (fine-tuning from scratch) go with the first row that runs, unless a run folder of the
    same seed in the experiment's folder already holds them."""
    exp = experiments()["paper000-tab1"]
    lines = []
    run_experiment(exp, "smoke", tmp_path, say=lines.append, runner=main, rows=["MAE"])
    runs = tmp_path / exp.folder("smoke") / "smoke"
    assert (runs / "MAE,seed=0" / "eval_finetune-scratch.json").is_file()
    run_experiment(exp, "smoke", tmp_path, say=lines.append, runner=main, rows=["MI-MAE"])
    assert not (runs / "MI-MAE,seed=0" / "eval_finetune-scratch.json").exists()
    assert (runs / "MI-MAE,seed=0" / "eval_finetune.json").is_file()
    assert not any("finetune-scratch" in line and "MI-MAE" in line for line in lines)


def test_a_row_of_another_encoder_has_its_own_fine_tuning_from_scratch(tmp_path):
    """A Swin row's baseline is the same Swin fine-tuned from its initialization, not the ViT's: the evaluations of
    the initialization run once a seed per encoder, and the page pairs each row with its own encoder's."""
    from mimae.experiments.paper000 import SWIN
    from mimae.experiments.spec import Scale, redraw
    swin = ("--method", "simmim", *SWIN)
    exp = Experiment(name="encoders", source="a test", title="a ViT row and two Swin rows", paper_protocol="none",
                     rows=(Row("MAE", ("--method", "mae")), Row("Swin", swin),
                           Row("Swin at ratio 0.5", (*swin, "mask.ratio=0.5"))),
                     scales={"smoke": Scale(experiments()["paper000-tab1"].scale("smoke").args, ("finetune",), (0,),
                                            "seconds", per_seed=("finetune-scratch",))})
    assert [p.evaluations for p in exp.points("smoke")] == [("finetune-scratch",), ("finetune-scratch",), ()]
    for row in ("MAE", "Swin at ratio 0.5", "Swin"):  # the second Swin row runs first: it carries the Swin's
        run_experiment(exp, "smoke", tmp_path, say=lambda text: None, runner=main, rows=[row])
    runs = tmp_path / "encoders" / "smoke"
    scratch = {name: json.loads((runs / f"{name},seed=0" / "eval_finetune-scratch.json").read_text())["accuracy"]
               for name in ("MAE", "Swin_at_ratio_0.5")}
    assert not (runs / "Swin,seed=0" / "eval_finetune-scratch.json").exists()

    page = redraw(exp, "smoke", runs, tmp_path / "page")
    worse = {record["claim"]: record["worse_mean"] for record in page["against_baseline"]}
    assert worse == {"MAE beats the baseline": scratch["MAE"], "Swin beats the baseline": scratch["Swin_at_ratio_0.5"],
                     "Swin at ratio 0.5 beats the baseline": scratch["Swin_at_ratio_0.5"]}
    text = page["markdown"].read_text()
    assert "| baseline, same protocol (raw pixels; fine-tuning: the same ViT from scratch;" in text
    assert "| baseline, same protocol (raw pixels; fine-tuning: the same Swin from scratch;" in text
    assert "the row's own encoder fine-tuned from its initialization" in text


def test_a_page_redrawn_from_an_archive_keeps_the_tables_row_order_and_its_notes(tmp_path):
    """The rows in the table's order; after the intro the paragraphs of the page's notes.txt (a wrapped one joined),
    then those given."""
    from mimae.experiments.spec import redraw
    exp = Experiment(name="order", source="a test", title="rows not in alphabetical order",
                     rows=(Row("zeta", ("--method", "mae")), Row("alpha", ("--method", "mae", "mask.ratio=0.5"))),
                     scales={"smoke": SMOKE_SCALE}, paper_protocol="none")
    run_experiment(exp, "smoke", tmp_path, say=lambda text: None, runner=main)
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "notes.txt").write_text("Partial: seed 0 of zeta\nand of alpha.\n\n\nRun on two cores.\n")
    text = redraw(exp, "smoke", tmp_path / "order" / "smoke", tmp_path / "again", ["Given."])["markdown"].read_text()
    assert text.index("| zeta | 1 |") < text.index("| alpha | 1 |")
    assert text.index("\nPartial: seed 0 of zeta and of alpha.\n") < text.index("\nRun on two cores.\n") \
        < text.index("\nGiven.\n") < text.index("## Against the baseline")


def test_an_analysis_page_is_redrawn_from_the_json_and_figures_its_command_wrote(tmp_path):
    """No command runs: the page comes from the JSON in the source folder (copied beside the page with its figure),
    its notes.txt under the intro; a folder without the JSON is refused in one line."""
    from mimae.experiments.spec import Command, redraw
    exp = Experiment(name="analysis", source="a test", title="an analysis", rows=(),
                     scales={"smoke": SMOKE_SCALE}, paper_protocol="none",
                     command=Command(("analyze", "nothing"), "result.json", lambda r: f"value {r['value']}"))
    source, page = tmp_path / "source", tmp_path / "page"
    source.mkdir()
    (source / "result.json").write_text('{"value": 7}')
    (source / "figure.png").write_bytes(b"png")
    page.mkdir()
    (page / "notes.txt").write_text("Seeds 0-2.\n")
    text = redraw(exp, "smoke", source, page)["markdown"].read_text()
    assert text.index("Reproduces a test at the smoke scale") < text.index("\nSeeds 0-2.\n") < text.index("value 7")
    assert (page / "result.json").read_text() == '{"value": 7}' and (page / "figure.png").read_bytes() == b"png"
    assert redraw(exp, "smoke", page, page)["markdown"].read_text() == text  # in place: the same page
    with pytest.raises(ConfigError, match="holds no result.json"):
        redraw(exp, "smoke", tmp_path / "empty", tmp_path / "other")


def test_every_claim_names_two_rows_of_its_experiment():
    claims = [(exp, claim) for exp in experiments().values() for claim in exp.claims]
    assert len(claims) >= 15
    for exp, claim in claims:
        labels = [row.label for row in exp.rows]
        assert claim.better in labels and claim.worse in labels and claim.better != claim.worse, (exp.name, claim)


def test_git_keeps_the_runs_of_an_archive_under_docs_results():
    """Only the top-level runs/ folder is ignored: an archive's runs/ under docs/results/ is committed."""
    import shutil
    import subprocess
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
    assert ignored("runs/mae/checkpoint.pt")
    assert not ignored("docs/results/paper000-tab3a/runs/a,seed=0/results.json")


def test_absolute_paths_become_relative_only_where_a_path_starts(tmp_path, monkeypatch):
    """A page written outside the working directory reaches its runs through the root (``../../../tmp/.../runs``):
    that relative path holds the text of the working directory's prefix, which must not be cut out of it."""
    from mimae.experiments.archive import make_relative
    work, page = tmp_path / "work", tmp_path / "pages" / "cpu"
    runs = work / "runs"
    runs.mkdir(parents=True)
    page.mkdir(parents=True)
    monkeypatch.chdir(work)
    through_root = "../" * (len(page.parts) - 1) + str(runs)[1:]
    (page / "comparison.json").write_text(json.dumps(
        {"run": f"{runs}/r0", "note": f"{work}/notes.txt", "kept": f"{through_root}/r1"}))
    make_relative(page, {f"{runs}/": f"{through_root}/"})
    assert json.loads((page / "comparison.json").read_text()) == {
        "run": f"{through_root}/r0", "note": "notes.txt", "kept": f"{through_root}/r1"}


def test_an_archived_experiment_has_no_weights_nor_absolute_paths_and_its_runs_count_as_finished(tmp_path,
                                                                                                 monkeypatch, capsys):
    import shutil
    monkeypatch.chdir(tmp_path)
    exp = experiments()["paper001-tab1"]
    run_experiment(exp, "smoke", "runs", say=lambda text: None, runner=main)
    assert main(["experiment", "archive", exp.name, "--scale", "smoke", "--root", "runs", "--out", "kept"]) == 0
    assert f"archived the report and {len(exp.rows)} runs (no weights) in kept" in capsys.readouterr().out
    kept = tmp_path / "kept"
    files = [f for f in kept.rglob("*") if f.is_file()]
    assert not [f for f in files if f.suffix == ".pt"] and len(list((kept / "runs").iterdir())) == len(exp.rows)
    assert all(str(tmp_path) not in f.read_text() for f in files if f.suffix in {".md", ".html", ".json", ".yaml"})
    assert (kept / "report.html").is_file() and (kept / "figures").is_dir()
    assert main(["report", "kept/runs", "--out", "again"]) == 0  # the small files alone make the page
    assert "MAE" in (tmp_path / "again" / "report.md").read_text()
    shutil.rmtree("runs")
    restore = ["experiment", "restore", exp.name, "--scale", "smoke", "--root", "runs", "--from"]
    assert main([*restore, "kept"]) == 0
    assert f"restored {len(exp.rows)} runs into runs/{exp.name}/smoke" in capsys.readouterr().out
    assert main([*restore, "kept"]) == 0  # nothing twice
    assert "restored 0 runs" in capsys.readouterr().out
    assert main([*restore, "nope"]) == 2
    lines = []
    run_experiment(exp, "smoke", "runs", say=lines.append, runner=main)
    assert f"{len(exp.rows)} finished before, 0 to run" in lines[0]
    # an evaluation asked later cannot be added to a run without weights: said, not a failure, the rows still shown
    asks_more = replace(exp, scales={"smoke": replace(exp.scale("smoke"), evaluations=("knn-full",))})
    lines = []
    paths = run_experiment(asks_more, "smoke", "runs", say=lines.append, runner=main)
    assert sum("finished without its weights (restored from an archive), so knn-full cannot be added" in line
               for line in lines) == len(exp.rows)
    assert all(f"| {row.label} |" in paths["markdown"].read_text() for row in exp.rows)
    assert main(["experiment", "archive", "paper000-tab3a", "--scale", "smoke", "--root", "runs", "--out", "x"]) == 2


def test_effective_keeps_the_last_override_of_a_key_in_its_place():
    from mimae.experiments.spec import effective
    assert effective(["--method", "mimae", "a=1", "b=0", "a=2", "c.d=x=y"]) == ["--method", "mimae", "b=0", "a=2",
                                                                               "c.d=x=y"]
    assert effective([]) == []
