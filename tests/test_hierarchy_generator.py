"""The hierarchical latent model's generator and dataset: shapes, determinism, invertible mixing."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from mimae.config import ConfigError, load_config
from mimae.data.sources import DataNotFoundError, load_dataset
from mimae.hierarchy.config import HierarchyConfig
from mimae.hierarchy.dataset import generate, load, save
from mimae.hierarchy.generator import HierarchicalModel, labels_from_root
from mimae.hierarchy.graph import check_graph, heights, quadtree

SMALL = HierarchyConfig(train_size=64, test_size=48, seed=3)


@pytest.fixture(scope="module")
def model():
    return HierarchicalModel(quadtree(), noise=1.0, nonlinearity=0.5, seed=1)


def test_quadtree_shape_levels_and_dims():
    graph = quadtree(image_size=32, depth=4, branching=2, root_dim=4, dim_growth=2, channels=3)
    levels = heights(graph)
    counts = {lv: sum(1 for v in levels.values() if v == lv) for lv in range(5)}
    assert counts == {0: 256, 1: 64, 2: 16, 3: 4, 4: 1}
    assert graph.nodes["z0_0_0"]["dim"] == 4 and graph.nodes["z3_7_7"]["dim"] == 10
    assert graph.nodes["x_15_15"]["region"] == (30, 30, 2) and graph.nodes["x_15_15"]["dim"] == 12


def test_sample_shapes_and_determinism(model):
    values, images = model.sample(5, seed=7)
    assert images.shape == (5, 3, 32, 32) and images.dtype == torch.float32
    assert values["z0_0_0"].shape == (5, 4) and values["z2_3_1"].shape == (5, 8)
    again_values, again_images = HierarchicalModel(quadtree(), seed=1).sample(5, seed=7)
    assert torch.equal(images, again_images) and torch.equal(values["z3_0_0"], again_values["z3_0_0"])
    assert not torch.equal(images, model.sample(5, seed=8)[1])
    assert not torch.equal(images, HierarchicalModel(quadtree(), seed=2).sample(5, seed=7)[1])
    assert 0.7 < images.std().item() < 1.3  # unit scale, so uint8 quantization keeps the detail


def test_every_node_determines_its_parent(model):
    values, images = model.sample(16, seed=0)
    for child in ("z1_1_0", "z2_3_2", "z3_5_6", "x_9_4"):
        (parent, value), = model.parents_from(child, values[child]).items()
        assert torch.allclose(value, values[parent], atol=1e-9), child


def test_root_recovered_from_one_pixel_block(model):
    """Invert the chain from a 2x2 block of the image up to the root."""
    values, images = model.sample(8, seed=4)
    node, value = "x_13_2", images[:, :, 26:28, 4:6].reshape(8, -1).double()
    while True:
        parents = model.parents_from(node, value)
        if not parents:
            break
        (node, value), = parents.items()
    assert node == "z0_0_0"
    assert torch.allclose(value, values["z0_0_0"], atol=1e-4)  # float32 image -> float64 inversion


def test_sign_gate_off_keeps_a_smooth_mix():
    gated = HierarchicalModel(quadtree(), sign_gate=True, seed=0)
    smooth = HierarchicalModel(quadtree(), sign_gate=False, seed=0)
    v = torch.randn(100, 10, dtype=torch.float64)
    assert torch.equal(gated.gate(gated.gate(v)), v)  # an involution
    assert torch.equal(smooth.gate(v), v)


def test_labels_are_balanced_sectors_of_the_root():
    root = torch.randn(8000, 4, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(labels_from_root(root, 8), minlength=8)
    assert counts.min() > 850 and counts.max() < 1150
    assert labels_from_root(torch.tensor([[1.0, 0.01], [-1.0, -0.01]]), 4).tolist() == [2, 0]


def test_generated_dataset_roundtrip_and_pipeline_choice(tmp_path):
    data = generate(SMALL)
    assert data.train.images.shape == (64, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.test.labels.shape == (48,) and int(data.test.labels.max()) < SMALL.num_classes
    assert len(data.test_latents) == 1 + 4 + 16 + 64 and data.test_latents["z3_2_2"].shape == (48, 10)
    assert torch.equal(generate(SMALL).train.images, data.train.images)
    save(data, tmp_path)
    loaded = load(tmp_path)
    assert torch.equal(loaded.test_latents["z1_0_1"], data.test_latents["z1_0_1"])
    train, test, info = load_dataset("hierarchical", str(tmp_path))
    assert len(train) == 64 and info.channels == 3 and info.num_classes == 8
    assert abs(info.mean[0] - 0.5) < 0.05 and 0.1 < info.std[0] < 0.3
    with pytest.raises(DataNotFoundError, match="mimae hierarchy generate"):
        load(tmp_path / "missing")


def test_bad_graphs_and_configs_are_named():
    graph = quadtree(image_size=8, depth=2, root_dim=2, dim_growth=1)
    graph.nodes["z1_0_1"]["dim"] = 1
    with pytest.raises(ValueError, match="z1_0_1"):
        check_graph(graph)
    cyclic = nx.DiGraph(channels=3)
    cyclic.add_edges_from([("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="cycle"):
        check_graph(cyclic)
    with pytest.raises(ConfigError, match="hierarchy.dim_growth"):
        load_config(overrides={"hierarchy.dim_growth": 5})
    with pytest.raises(ConfigError, match="hierarchy.image_size=30"):
        load_config(overrides={"hierarchy.image_size": 30})
