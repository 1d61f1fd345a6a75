import pytest
import torch

from mimae.config import LinearConfig
from mimae.eval.knn import knn_accuracy
from mimae.eval.linear import LinearProbe, cached_batches, linear_probe_features


def blobs(n=1200, classes=4, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=gen) * 3
    labels = torch.arange(n) % classes
    return centers[labels] + torch.randn(n, dim, generator=gen), labels, gen


PROBE = LinearConfig(epochs=20, warmup_epochs=2, batch_size=64)


@pytest.mark.parametrize("optimizer", ["lars", "sgd"])
def test_separable_features_are_solved_by_the_probe_and_knn(optimizer):
    feats, labels, _ = blobs()
    cfg = LinearConfig(**{**PROBE.__dict__, "optimizer": optimizer})
    _, acc = linear_probe_features(feats[:1000], labels[:1000], feats[1000:], labels[1000:], cfg, 4)
    assert acc >= 99.0
    assert knn_accuracy(feats[:1000], labels[:1000], feats[1000:], labels[1000:]) >= 99.0


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
