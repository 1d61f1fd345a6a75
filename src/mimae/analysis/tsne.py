"""t-SNE of frozen encoder features, colored by class (paper 001 Fig. 4, paper 003 Fig. 8), checkpoints side by side.

Each checkpoint embeds the same class-balanced set of test images (its [CLS] token after the final norm, as kNN and
the linear probe read it). Besides the picture, the silhouette score of the classes (cosine, in feature space, and
Euclidean, in the 2D embedding) puts a number on how well the classes separate: 1 is perfect, 0 is no structure.
"""

from __future__ import annotations

from pathlib import Path

import torch
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from mimae.analysis.loading import labelled_test_images, load_pretrained, model_input
from mimae.plotting import panel_grid, save_figure, write_json

CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}


def class_balanced(labels: torch.Tensor, classes: list[int], per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` items of each class in ``classes`` (fewer if a class has fewer). (M,)."""
    return torch.cat([(labels == c).nonzero().flatten()[:per_class] for c in classes])


@torch.no_grad()
def encode(encoder, images: torch.Tensor, info, batch_size: int, device: str) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> [CLS] features (N, D) float32 on the CPU."""
    encoder.eval()
    return torch.cat([encoder.features(model_input(batch, info, device)).float().cpu()
                      for batch in images.split(batch_size)])


def tsne_embedding(features: torch.Tensor, seed: int, perplexity: float = 30.0) -> torch.Tensor:
    """(N, D) -> (N, 2) t-SNE (PCA initialization, as scikit-learn's default)."""
    perplexity = min(perplexity, (len(features) - 1) / 3)
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features.numpy())
    return torch.from_numpy(points)


def run_tsne(checkpoints: list[str | Path], output_dir: str | Path, per_class: int = 200, num_classes: int = 10,
             perplexity: float = 30.0, batch_size: int = 256, seed: int = 0, device: str = "cpu",
             data_dir: str | None = None) -> dict:
    """``mimae analyze tsne``: tsne.png (one panel per checkpoint) and tsne.json (points, labels, silhouettes).

    Uses the first ``per_class`` test images of each of the first ``num_classes`` classes (at most 10 are drawn).
    """
    models = [load_pretrained(path, device, data_dir) for path in checkpoints]
    images, labels, info = labelled_test_images(models[0].cfg)
    classes = list(range(min(num_classes, info.num_classes, 10)))
    chosen = class_balanced(labels, classes, per_class)
    images, labels = images[chosen], labels[chosen]
    names = CLASS_NAMES.get(info.name, tuple(f"class {c}" for c in range(info.num_classes)))
    fig, axes = panel_grid(len(models), columns=3, panel_size=(4.6, 4.4))
    results = []
    for ax, model in zip(axes, models):
        features = encode(model.objective.encoder, images, info, batch_size, device)
        points = tsne_embedding(features, seed, perplexity)
        result = {"checkpoint": str(model.path), "label": model.label,
                  "silhouette_features_cosine": float(silhouette_score(features.numpy(), labels.numpy(),
                                                                       metric="cosine")),
                  "silhouette_tsne": float(silhouette_score(points.numpy(), labels.numpy())), "points": points}
        results.append(result)
        for c in classes:
            at = labels == c
            ax.scatter(points[at, 0], points[at, 1], s=4, color=f"C{c}", label=names[c])
        ax.set_title(f"{model.label}\nsilhouette: features {result['silhouette_features_cosine']:.3f}, "
                     f"t-SNE {result['silhouette_tsne']:.3f}", fontsize=8)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, markerscale=3, frameon=False)
    figure = save_figure(fig, Path(output_dir) / "tsne.png",
                         f"t-SNE of [CLS] features, {len(labels)} test images of {len(classes)} classes")
    data = write_json({"classes": [names[c] for c in classes], "labels": labels, "perplexity": perplexity,
                       "seed": seed, "checkpoints": results}, Path(output_dir) / "tsne.json")
    return {"figures": [figure], "json": data,
            "checkpoints": [{k: v for k, v in r.items() if k != "points"} for r in results]}
