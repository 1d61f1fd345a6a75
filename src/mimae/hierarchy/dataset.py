"""The ``hierarchical`` dataset: images of the quadtree model with their labels and ground-truth latents.

``mimae hierarchy generate --output DIR`` writes ``DIR/hierarchical.pt``; ``data.dataset=hierarchical
data.data_dir=DIR`` pretrains on it. Without ``data.data_dir`` the dataset is generated in memory from the default
``hierarchy`` section, so the plain choice is always the same documented dataset. The latents of the test split are
kept for the probes (:mod:`mimae.hierarchy.probe`): the test images are never seen in pretraining.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from mimae.config import Config, apply_mapping
from mimae.data.sources import DataInfo, DataNotFoundError, TensorImages, register_dataset
from mimae.hierarchy.config import HierarchyConfig
from mimae.hierarchy.generator import HierarchicalModel, labels_from_root, quantize
from mimae.hierarchy.graph import LATENT, quadtree
from mimae.progress import progress

DATASET_FILE = "hierarchical.pt"
SPLITS = {"train": 0, "test": 1}


@dataclass
class HierarchicalData:
    """train / test uint8 images with labels, the normalization info, the test latents {node: (N, dim) float32} and
    the generating graph."""

    train: TensorImages
    test: TensorImages
    info: DataInfo
    test_latents: dict[str, torch.Tensor]
    graph: nx.DiGraph
    config: HierarchyConfig


def graph_from_config(cfg: HierarchyConfig) -> nx.DiGraph:
    cfg.check()
    return quadtree(cfg.image_size, cfg.depth, cfg.branching, cfg.root_dim, cfg.dim_growth, cfg.channels)


def model_from_config(cfg: HierarchyConfig) -> HierarchicalModel:
    return HierarchicalModel(graph_from_config(cfg), cfg.noise, cfg.nonlinearity, cfg.sign_gate, cfg.seed)


def sample_split(model: HierarchicalModel, n: int, seed: int, split: str, num_classes: int,
                 chunk: int = 2000) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` images of a split in chunks: uint8 images (n, C, H, W), labels (n,), latents {node: (n, dim)}."""
    root = model.order[0]
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    latents: dict[str, list[torch.Tensor]] = {node: [] for node in model.order
                                              if model.graph.nodes[node]["kind"] == LATENT}
    for index, start in enumerate(progress(range(0, n, chunk), desc=f"generating {split}", leave=False)):
        chunk_seed = int(np.random.SeedSequence([seed, SPLITS[split], index]).generate_state(1)[0])
        values, pixels = model.sample(min(chunk, n - start), chunk_seed)
        images.append(quantize(pixels))
        labels.append(labels_from_root(values[root], num_classes))
        for node in latents:
            latents[node].append(values[node].float())
    return torch.cat(images), torch.cat(labels), {node: torch.cat(v) for node, v in latents.items()}


def generate(cfg: HierarchyConfig) -> HierarchicalData:
    """Both splits of the quadtree model described by ``cfg`` (deterministic from ``cfg.seed``)."""
    model = model_from_config(cfg)
    train_images, train_labels, _ = sample_split(model, cfg.train_size, cfg.seed, "train", cfg.num_classes)
    test_images, test_labels, test_latents = sample_split(model, cfg.test_size, cfg.seed, "test", cfg.num_classes)
    scaled = train_images.float() / 255.0
    info = DataInfo("hierarchical", cfg.channels, cfg.num_classes, tuple(scaled.mean(dim=(0, 2, 3)).tolist()),
                    tuple(scaled.std(dim=(0, 2, 3)).tolist()))
    return HierarchicalData(TensorImages(train_images, train_labels), TensorImages(test_images, test_labels), info,
                            test_latents, model.graph, cfg)


def save(data: HierarchicalData, folder: str | Path) -> Path:
    """Write ``folder/hierarchical.pt`` (loadable with ``torch.load(weights_only=True)``)."""
    path = Path(folder) / DATASET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": dataclasses.asdict(data.config), "mean": data.info.mean, "std": data.info.std,
                "train_images": data.train.images, "train_labels": data.train.labels,
                "test_images": data.test.images, "test_labels": data.test.labels,
                "test_latents": data.test_latents}, path)
    return path


def load(folder: str | Path | None = None) -> HierarchicalData:
    """The dataset saved in ``folder``, or the default one generated in memory when ``folder`` is None."""
    if folder is None:
        return generate(HierarchyConfig())
    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        raise DataNotFoundError(f"{path} does not exist; write it with `mimae hierarchy generate --output {folder}`")
    state = torch.load(path, weights_only=True)
    cfg = Config()
    apply_mapping(cfg, {"hierarchy": state["config"]})
    hcfg = cfg.hierarchy
    info = DataInfo("hierarchical", hcfg.channels, hcfg.num_classes, tuple(state["mean"]), tuple(state["std"]))
    return HierarchicalData(TensorImages(state["train_images"], state["train_labels"]),
                            TensorImages(state["test_images"], state["test_labels"]), info, state["test_latents"],
                            graph_from_config(hcfg), hcfg)


@register_dataset("hierarchical")
def load_hierarchical(data_dir: str | None) -> tuple[TensorImages, TensorImages, DataInfo]:
    """``(train, test, info)`` of ``data.dataset=hierarchical`` (:func:`mimae.data.load_dataset`)."""
    data = load(data_dir)
    return data.train, data.test, data.info
