"""How many directions an encoder's latents use: the effective rank of the [CLS] latents of whole test images.

The collapse rule's spread sign (mask-mi's cosine between different images) sees latents that gather at one point,
not latents that spread along a few directions only (dimensional collapse), nor can it tell latents that concentrate
around a common direction yet differ along many others from ones that have lost them. Measured here on unmasked
test images, the feature the kNN and the linear probe read (the [CLS] token after the final norm), with the same
ViT at the initialization of the run's seed as the baseline:

* ``effective_rank``: exp of the entropy of the normalized singular values of the centered latents (Roy and
  Vetterli 2007; RankMe, Garrido et al. 2023, on centered latents): D when every direction carries as much, 1 when
  one does. It reads the spectrum's shape, not its scale: latents collapsed to one point still have a spectrum of
  round-off, so read it beside ``unit_std``.
* ``unit_std``: the std of the L2-normalized latents over the images, averaged over the D dimensions (SimSiam's
  collapse measure, Chen and He 2021): 0 when every image maps to one point, about 1/sqrt(D) when the latents spread
  evenly over the sphere (``unit_std_even``).
* ``cosine_others``: the mean cosine between the latents of different images.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from mimae.analysis.loading import labelled_test_images, load_pretrained, model_input, with_initializations
from mimae.models.vit import Encoder
from mimae.plotting import measure_bars, write_json


@torch.no_grad()
def cls_latents(encoder: Encoder, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """inputs (N, C, H, W) standardized images -> (N, D) [CLS] latents of the whole images, float32 on the CPU."""
    encoder.eval()
    return torch.cat([encoder.features(images).float().cpu() for images in inputs.split(batch_size)])


def effective_rank(z: torch.Tensor) -> float:
    """z (N, D) -> exp(H(p)) of p = s / sum(s), s the singular values of z minus its mean over the N rows; between
    1 and min(N - 1, D)."""
    s = torch.linalg.svdvals((z - z.mean(dim=0)).double())
    p = s[s > 0] / s.sum()
    return math.exp(float(-(p * p.log()).sum()))


def latent_rank(z: torch.Tensor) -> dict[str, float]:
    """z (N, D) latents -> their effective rank, unit std (beside the even spread's 1/sqrt(D)) and mean cosine
    between different rows."""
    n, d = z.shape
    unit = F.normalize(z.double(), dim=1)
    total = unit.sum(dim=0)
    cosine_others = (float(total @ total) - n) / (n * (n - 1))  # the mean of the Gram matrix off its diagonal
    return {"effective_rank": effective_rank(z), "dims": d, "unit_std": float(unit.std(dim=0).mean()),
            "unit_std_even": 1 / math.sqrt(d), "cosine_others": cosine_others}


def run_latent_rank(checkpoints: list[str | Path], output_dir: str | Path, images: int = 2000, batch_size: int = 256,
                    device: str = "cpu", data_dir: str | None = None, with_init: bool = False) -> dict:
    """``mimae analyze rank``: rank.png (one bar per encoder for each measure) and rank.json.

    Every encoder sees the first ``images`` test images of the first checkpoint's dataset, unmasked. ``with_init``:
    after each checkpoint, the same ViT at the initialization its run started from (its seed), row ``init`` true.
    The JSON's ``seconds``: how long the whole measurement took.
    """
    started = time.perf_counter()
    models = [load_pretrained(path, device, data_dir) for path in checkpoints]
    pixels, _, info = labelled_test_images(models[0].cfg, images)
    if len(pixels) < 2:
        raise ValueError(f"rank needs at least 2 test images, got {len(pixels)}")
    inputs = model_input(pixels, info, device)
    results = [measured.row(latent_rank(cls_latents(measured.encoder, inputs, batch_size)))
               for measured in with_initializations(models, info.channels, device, with_init)]
    out = Path(output_dir)
    figure = measure_bars(results, MEASURES, out / "rank.png", f"[CLS] latents of {len(pixels)} unmasked test images",
                          columns=3)
    data = write_json({"images": len(pixels), "seconds": time.perf_counter() - started, "checkpoints": results},
                      out / "rank.json")
    return {"figures": [figure], "json": data, "checkpoints": results}


MEASURES = (("effective_rank", None, "effective rank of the centered latents", None),
            ("unit_std", "unit_std_even", "std of the unit latents", "even spread, 1/sqrt(D)"),
            ("cosine_others", None, "cosine: different images", None))
