"""The plateau gate (``mimae.plateau_steps``): it opens once the running L_rec has stopped improving, not while it
falls; a skipped step does not count; its state resumes; without it the state dict is what older runs saved. A run
whose gate never opened says so (results.json, stderr, its report)."""

import json

import torch

from mimae.objectives.mi_terms import MutualInformationTerms
from mimae.report.run import write_run_report
from tests.conftest import tiny_config, train_tiny


def terms(**overrides) -> MutualInformationTerms:
    cfg = tiny_config(method="mimae", **{"mimae__gate_momentum": 0.0, "mimae__eps_l": 0.0, **overrides}).mimae
    return MutualInformationTerms(cfg, embed_dim=8, input_dim=4)


def feed(mi: MutualInformationTerms, values: list[float], applied: bool = True) -> None:
    for value in values:
        mi.update_gate(value, torch.tensor(applied))


def test_it_opens_after_the_plateau_not_while_the_loss_falls():
    mi = terms(mimae__plateau_steps=3, mimae__plateau_tolerance=0.01)
    feed(mi, [1.0, 0.9, 0.8, 0.7])
    assert not bool(mi.gate_open)
    feed(mi, [0.699, 0.7])  # within 1% of the best: no progress, but only 2 steps
    assert not bool(mi.gate_open)
    feed(mi, [0.7], applied=False)  # a skipped step neither counts nor opens
    assert not bool(mi.gate_open) and int(mi.steps) == 6
    feed(mi, [0.7])
    assert bool(mi.gate_open) and int(mi.gate_step) == 7 and int(mi.best_step) == 4


def test_a_fall_beyond_the_tolerance_restarts_the_count_and_the_state_resumes():
    mi = terms(mimae__plateau_steps=2, mimae__plateau_tolerance=0.01)
    feed(mi, [1.0, 1.0, 0.5])
    assert not bool(mi.gate_open) and int(mi.best_step) == 3
    again = terms(mimae__plateau_steps=2, mimae__plateau_tolerance=0.01)
    again.load_state_dict(mi.state_dict())
    feed(again, [0.5, 0.5])
    assert bool(again.gate_open) and int(again.gate_step) == 5


def test_without_it_the_eps_gate_alone_and_the_saved_state_is_unchanged():
    mi = terms()
    assert "rec_best" not in mi.state_dict() and "best_step" not in mi.state_dict()
    feed(mi, [1.0] * 50)
    assert not bool(mi.gate_open)  # eps_l = 0 never opens


def test_the_summary_gives_the_step_the_terms_started_and_words_when_they_never_did():
    mi = terms()
    assert mi.summary() == ({"gate_step": None, "gate_rec": None}, [])  # no step yet: nothing to say
    feed(mi, [0.75, 0.5])  # momentum 0: the running L_rec is the last value
    values, notes = mi.summary()
    assert values == {"gate_step": None, "gate_rec": 0.5} and len(notes) == 1
    assert notes[0].startswith("the MI terms never started: the running L_rec ended at 0.500, above mimae.eps_l = 0, "
                               "so for all 2 steps the run trained L_rec alone")
    assert terms(mimae__lambda_max=0.0).summary()[1] == []  # no MI term weighted (the control): nothing was missed
    opened = terms(mimae__eps_l=0.7)
    feed(opened, [0.75, 0.5, 0.25])
    assert opened.summary() == ({"gate_step": 2, "gate_rec": 0.25}, [])


def test_a_run_whose_gate_never_opened_says_so_and_one_whose_gate_opened_says_when(tmp_path, capsys):
    closed = train_tiny(tmp_path / "closed", method="mimae", mimae__eps_l=0.0)
    results = json.loads((closed / "results.json").read_text())
    assert results["gate_step"] is None and results["gate_rec"] > 0
    assert results["notes"][0].startswith("the MI terms never started: the running L_rec ended at")
    assert "note: the MI terms never started" in capsys.readouterr().err
    assert f"**Note:** {results['notes'][0]}." in write_run_report(closed)["markdown"].read_text()
    opened = train_tiny(tmp_path / "opened", method="mimae", mimae__eps_l=100.0)
    results = json.loads((opened / "results.json").read_text())
    assert results["gate_step"] == 1 and "notes" not in results
    report = write_run_report(opened)["markdown"].read_text()
    assert f"The MI terms started after step 1 of {results['steps']}, once the running L_rec fell below mimae.eps_l " \
           "= 100." in report and "**Note:**" not in report
    mae = json.loads((train_tiny(tmp_path / "mae") / "results.json").read_text())
    assert "gate_step" not in mae and "notes" not in mae
