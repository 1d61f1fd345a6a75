"""The plateau gate (``mimae.plateau_steps``): it opens once the running L_rec has stopped improving, not while it
falls; a skipped step does not count; its state resumes; without it the state dict is what older runs saved."""

import torch

from mimae.objectives.mi_terms import MutualInformationTerms
from tests.conftest import tiny_config


def terms(**overrides) -> MutualInformationTerms:
    cfg = tiny_config(method="mimae", mimae__gate_momentum=0.0, mimae__eps_l=0.0, **overrides).mimae
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
