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


def test_the_pixel_baseline_is_scikit_learns_cosine_knn_on_the_standardized_pixels():
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from mimae.data import normalize
    from mimae.eval.knn import knn_sets, pixel_knn_eval
    from tests.conftest import tiny_config

    cfg = tiny_config(eval__knn_bank_limit=300, eval__knn_query_limit=100)
    result = pixel_knn_eval(cfg)
    bank, queries, info = knn_sets(cfg)
    x = np.stack([normalize(img[None], info).flatten().numpy() for img, _ in bank])
    y = np.array([label for _, label in bank])
    qx = np.stack([normalize(img[None], info).flatten().numpy() for img, _ in queries])
    qy = np.array([label for _, label in queries])
    knn = KNeighborsClassifier(20, metric="cosine", weights=lambda d: np.exp((1 - d) / 0.07), algorithm="brute")
    expected = 100 * (knn.fit(x, y).predict(qx) == qy).mean()
    assert result["feature"] == "pixels" and (result["train_images"], result["test_images"]) == (300, 100)
    assert abs(result["accuracy"] - expected) < 1e-6
