import pytest
import torch

from mimae.eval.config import LinearConfig
from mimae.eval.knn import knn_accuracy
from mimae.eval.linear import LinearProbe, cached_batches, chosen_lr_probe, linear_probe_features, probe_optimizer


def blobs(n=1200, classes=4, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=gen) * 3
    labels = torch.arange(n) % classes
    return centers[labels] + torch.randn(n, dim, generator=gen), labels, gen


PROBE = LinearConfig(epochs=20, warmup_epochs=2, batch_size=64)


@pytest.mark.parametrize("optimizer, base_lr", [("lars", LinearConfig().base_lr), ("sgd", 0.1)])
def test_separable_features_are_solved_by_the_probe_and_knn(optimizer, base_lr):
    """The default LARS probe and an SGD probe both solve separable blobs in 20 short epochs."""
    feats, labels, _ = blobs()
    cfg = LinearConfig(**{**PROBE.__dict__, "optimizer": optimizer, "base_lr": base_lr})
    _, acc = linear_probe_features(feats[:1000], labels[:1000], feats[1000:], labels[1000:], cfg, 4)
    assert acc >= 99.0
    assert knn_accuracy(feats[:1000], labels[:1000], feats[1000:], labels[1000:]) >= 99.0


def test_the_probe_chooses_its_lr_on_held_out_training_features_never_on_the_test_set():
    """lr 0 leaves the probe at its initialization (near chance), 6.4 solves the blobs: the choice is 6.4, made on
    the last fifth of the training features (200 of 1000, fewer than validation_images), then refit on all 1000 as
    the plain probe at that lr is; shuffled test labels change the test accuracy, not the choice."""
    feats, labels, gen = blobs()
    cfg = LinearConfig(**{**PROBE.__dict__, "lr_choices": "0,6.4"})
    chosen = chosen_lr_probe(feats[:1000], labels[:1000], feats[1000:], labels[1000:], cfg, 4)
    assert chosen is not None and chosen["base_lr"] == 6.4 and chosen["validation_images"] == 200
    assert chosen["validation"]["6.4"] >= 99.0 > 60.0 > chosen["validation"]["0"]
    refit = linear_probe_features(feats[:1000], labels[:1000], feats[1000:], labels[1000:],
                                  LinearConfig(**{**PROBE.__dict__, "base_lr": 6.4}), 4)[1]
    assert chosen["accuracy"] == refit
    shuffled = labels[1000:][torch.randperm(200, generator=gen)]
    blind = chosen_lr_probe(feats[:1000], labels[:1000], feats[1000:], shuffled, cfg, 4)
    assert blind["validation"] == chosen["validation"] and blind["base_lr"] == 6.4 and blind["accuracy"] < 50.0
    assert chosen_lr_probe(feats[:1000], labels[:1000], feats[1000:], labels[1000:],
                           LinearConfig(**{**PROBE.__dict__, "lr_choices": ""}), 4) is None


def test_random_labels_stay_near_chance():
    feats, _, gen = blobs()
    noise = torch.randint(0, 4, (1200,), generator=gen)
    _, acc = linear_probe_features(feats[:1000], noise[:1000], feats[1000:], noise[1000:], PROBE, 4)
    assert 10.0 < acc < 40.0  # chance is 25%; 200 test points
    assert 10.0 < knn_accuracy(feats[:1000], noise[:1000], feats[1000:], noise[1000:]) < 40.0


def test_probe_is_batchnorm_without_affine_then_linear():
    probe = LinearProbe(8, 3)
    assert not probe.norm.affine and probe.head.weight.shape == (3, 8)
    assert probe.head.weight.std() < 0.02 and probe.head.bias.abs().sum() == 0


def test_cached_batches_cover_each_feature_once_per_epoch():
    feats = torch.arange(10.0).unsqueeze(1)
    batches, steps = cached_batches(feats, torch.arange(10), 3)
    seen = torch.cat([f for f, _ in batches(torch.Generator().manual_seed(0))]).flatten()
    assert steps == 3 and len(seen) == 9 and len(set(seen.tolist())) == 9  # last partial batch dropped


def mae_lars_steps(weight, bias, grads, lr, weight_decay=0.0, momentum=0.9, trust=0.001):
    """MAE's LARS (util/lars.py, from MoCo v3) written out: for a matrix, d = g + wd w scaled by
    trust ||w|| / ||d||; vectors unscaled, no decay; mu = momentum mu + d; p -= lr mu."""
    params, mus = [weight.clone(), bias.clone()], [torch.zeros_like(weight), torch.zeros_like(bias)]
    for step_grads in grads:
        for i, (p, g) in enumerate(zip(params, step_grads)):
            if p.ndim > 1:
                g = g + weight_decay * p
                g = g * (trust * p.norm() / g.norm())
            mus[i] = momentum * mus[i] + g
            params[i] = p - lr * mus[i]
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_the_lars_probe_takes_maes_lars_steps(weight_decay):
    """Three steps of the probe's optimizer move the weight and bias exactly as MAE's LARS does (trust 0.001)."""
    probe = LinearProbe(6, 3)
    weight, bias = probe.head.weight.detach().clone(), probe.head.bias.detach().clone()
    optimizer = probe_optimizer(probe, LinearConfig(base_lr=0.5, weight_decay=weight_decay))
    gen = torch.Generator().manual_seed(0)
    grads = [(torch.randn(3, 6, generator=gen), torch.randn(3, generator=gen)) for _ in range(3)]
    for g_weight, g_bias in grads:
        probe.head.weight.grad, probe.head.bias.grad = g_weight.clone(), g_bias.clone()
        optimizer.step()
    expected_weight, expected_bias = mae_lars_steps(weight, bias, grads, 0.5, weight_decay)
    torch.testing.assert_close(probe.head.weight.detach(), expected_weight)
    torch.testing.assert_close(probe.head.bias.detach(), expected_bias)
