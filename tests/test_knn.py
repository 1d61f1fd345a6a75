import torch

from mimae.eval.knn import knn_accuracy, knn_predict


def test_knn_matches_a_direct_weighted_vote():
    gen = torch.Generator().manual_seed(0)
    bank, labels = torch.randn(50, 8, generator=gen), torch.randint(0, 3, (50,), generator=gen)
    queries = torch.randn(7, 8, generator=gen)
    preds = knn_predict(bank, labels, queries, k=5, temperature=0.1, num_classes=3)
    b = torch.nn.functional.normalize(bank, dim=1)
    for i, q in enumerate(torch.nn.functional.normalize(queries, dim=1)):
        sims = b @ q
        top = sims.argsort(descending=True)[:5]
        votes = [sum(float(torch.exp(sims[j] / 0.1)) for j in top if labels[j] == c) for c in range(3)]
        assert preds[i].item() == max(range(3), key=votes.__getitem__)


def test_separable_features_are_perfect_and_random_labels_near_chance():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=gen) * 5
    labels = torch.arange(400) % 4
    feats = centers[labels] + torch.randn(400, 16, generator=gen)
    assert knn_accuracy(feats[:300], labels[:300], feats[300:], labels[300:]) == 100.0
    noise = torch.randint(0, 4, (400,), generator=gen)
    acc = knn_accuracy(feats[:300], noise[:300], feats[300:], noise[300:])
    assert 5.0 < acc < 45.0
