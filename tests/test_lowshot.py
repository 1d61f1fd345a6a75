import json

import pytest
import torch

from mimae.config import ConfigError, load_config
from mimae.data import train_test_sets
from mimae.eval.lowshot import class_balanced_subset, dataset_labels, load_or_make_subset, lowshot_train_set


@pytest.fixture(scope="module")
def labels():
    """The 60,000 Fashion-MNIST training labels (6,000 per class)."""
    return dataset_labels(train_test_sets(load_config().data)[0])


def test_one_percent_is_class_balanced_and_without_repeats(labels):
    idx = class_balanced_subset(labels, 0.01, seed=0)
    assert len(idx) == 600 and len(set(idx.tolist())) == 600
    assert torch.equal(torch.bincount(labels[idx]), torch.full((10,), 60))
    assert torch.equal(idx, idx.sort().values)


def test_subset_is_seeded_and_stable(labels):
    a, b = class_balanced_subset(labels, 0.01, 0), class_balanced_subset(labels, 0.01, 0)
    c = class_balanced_subset(labels, 0.01, 1)
    assert torch.equal(a, b)
    assert len(set(a.tolist()) & set(c.tolist())) < 60  # a different seed picks (almost) other images


def test_rare_classes_keep_at_least_one_image():
    labels = torch.tensor([0] * 300 + [1] * 20)
    idx = class_balanced_subset(labels, 0.01, 0)
    assert torch.bincount(labels[idx]).tolist() == [3, 1]


def test_saved_subset_is_reused_by_a_second_method(tmp_path, labels):
    path = tmp_path / "subset.json"
    first = load_or_make_subset(path, labels, 0.01, 0, "fashion-mnist")
    saved = json.loads(path.read_text())
    assert saved["per_class"] == {str(c): 60 for c in range(10)} and saved["indices"] == first.tolist()
    # the file wins over the arguments: a second method gets exactly the same images
    again = load_or_make_subset(path, labels, 0.5, 7, "fashion-mnist")
    assert torch.equal(first, again)
    with pytest.raises(ConfigError, match="lowshot.subset_file"):
        load_or_make_subset(path, labels[:1000], 0.01, 0, "fashion-mnist")


def test_lowshot_train_set_is_a_view_of_those_images(tmp_path):
    train = train_test_sets(load_config(overrides={"data.train_limit": 2000}).data)[0]
    subset = lowshot_train_set(train, tmp_path / "s.json", 0.01, 0, "fashion-mnist")
    image, label = subset[0]
    assert len(subset) == 20 and image.shape == (1, 32, 32) and label == int(train.labels[subset.indices[0]])
