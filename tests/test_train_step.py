"""The optimizer step every loop shares, and the metric window."""

import copy

import pytest
import torch
from torch import nn

from mimae.config import load_config
from mimae.optim import make_optimizer
from mimae.train_step import MetricWindow, TrainStep


def regression(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(6, 3)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def batch_forward(model):
    def forward(batch):
        x, y = batch
        loss = (model(x) - y).pow(2).mean()
        return {"loss": loss, "double": 2 * loss.detach()}
    return forward


def test_accumulated_micro_batches_take_the_step_of_the_whole_batch():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 3, generator=gen)
    whole, whole_opt = regression()
    terms_whole = TrainStep(whole, whole_opt, torch.device("cpu"), None)([(x, y)], batch_forward(whole)).terms
    parts, parts_opt = regression()
    micro = [(x[:4], y[:4]), (x[4:], y[4:])]
    result = TrainStep(parts, parts_opt, torch.device("cpu"), None)(micro, batch_forward(parts))
    terms_parts, last = result.terms, result.outputs
    assert result.applied
    for a, b in zip(whole.parameters(), parts.parameters()):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(terms_parts["loss"], terms_whole["loss"])  # mean over micro-batches
    assert not terms_parts["loss"].requires_grad and last["loss"].requires_grad
    assert all(p.grad is None for p in parts.parameters())  # zeroed for the next step


def test_clipping_bounds_the_gradient_norm_and_logs_it():
    model, optimizer = regression()
    step = TrainStep(model, optimizer, torch.device("cpu"), None, clip_grad=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(8, 6), 100 * torch.randn(8, 3)
    terms = step([(x, y)], batch_forward(model)).terms
    assert float(terms["grad_norm"]) > 1e-3  # the norm before clipping
    moved = float(torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]).norm())
    assert moved == pytest.approx(0.1 * 1e-3, rel=1e-4)  # lr x the clipped norm


@pytest.mark.parametrize("dtype, scaled", [(torch.float16, True), (torch.bfloat16, False), (None, False)])
def test_only_fp16_gets_a_gradient_scaler(dtype, scaled):
    model, optimizer = regression()
    assert TrainStep(model, optimizer, torch.device("cpu"), dtype).scaler.is_enabled() == scaled


def test_metric_window_means_over_steps_and_empties():
    window = MetricWindow()
    for value in (1.0, 2.0, 6.0):
        window.add({"loss": torch.tensor(value), "lr_free": torch.tensor(value * 10)})
    assert window.mean() == {"loss": 3.0, "lr_free": 30.0}
    assert window.steps == 0 and window.mean() == {}


def test_metric_window_leaves_steps_not_applied_out_of_the_means_and_reads_counters_with_them():
    window = MetricWindow()
    for value, applied in ((1.0, True), (float("nan"), False), (5.0, True)):
        window.add({"loss": torch.tensor(value)}, torch.tensor(applied))
    assert window.steps == 3
    assert window.mean({"skipped": torch.tensor(7)}) == {"loss": 3.0, "skipped": 7.0}
    window.add({"loss": torch.tensor(float("nan"))}, torch.tensor(False))
    assert window.mean() == {}  # no step of the window was applied: no mean


@pytest.mark.parametrize("optimizer_kind", ["sgd", "fused-adamw"])
def test_a_step_whose_loss_is_not_finite_is_not_applied(optimizer_kind):
    """SGD skips it on the host (one boolean); the fused AdamW of ``make_optimizer`` on the device (found_inf):
    weights, moments and AdamW's step count stay as they were."""
    model, optimizer = regression()
    if optimizer_kind == "fused-adamw":
        optimizer = make_optimizer(model, load_config().optim)
        assert optimizer.param_groups[0]["fused"]
    step = TrainStep(model, optimizer, torch.device("cpu"), None, clip_grad=1.0)
    x, y = torch.randn(8, 6), torch.randn(8, 3)
    assert step([(x, y)], batch_forward(model)).applied  # a good step first, so the optimizer has state
    before = [p.detach().clone() for p in model.parameters()]
    state_before = copy.deepcopy(optimizer.state_dict()["state"])
    y[0, 0] = float("nan")
    result = step([(x, y)], batch_forward(model))
    assert not result.applied and torch.isnan(result.terms["loss"])
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b) and p.grad is None
    for key, values in state_before.items():
        for name, value in values.items():
            assert torch.equal(optimizer.state_dict()["state"][key][name], value), name
    y[0, 0] = 0.0
    assert step([(x, y)], batch_forward(model)).applied
    assert not torch.equal(next(model.parameters()).detach(), before[0])
