"""Mask-invariant information of a frozen encoder: paper 000's premise, measured for any ViT encoder.

Paper 000 asks an encoder to keep what differently masked views of an image share (maximize I between the views'
latents) and to drop the rest of its input (minimize I(z; X)). This module measures both for any encoder (MAE,
MI-MAE, U-MAE, MRCL, SimMIM, a random initialization), on test images it never trained on:

Each image is cut into N views by N orthogonal masks (disjoint visible sets of 1/N of the units each, one
permutation per image), and each view is encoded from its visible patches alone; z is its [CLS] token after the
final norm, L2-normalized (as MI-MAE's terms read it). The images are split in half: estimators are fitted on the
first half and scored on the second, so no number is a fitted model's own training loss.

* ``infonce``: a lower bound on I(z_i; z_j) between sibling views (nats): a critic (a linear map to
  ``critic_dim`` dims, cosine over a learned temperature) is fitted with the InfoNCE loss of Eq. 7-8 on the first
  half and scored on batches of ``batch_images`` images of the second; the bound cannot exceed
  ``log((K*N - 1) / (N - 1))`` for K images a batch (``infonce_ceiling``).
* ``retrieval``: top-1 over every view of the second half: is a view's nearest other view (cosine of z, no fitting)
  one of its N - 1 siblings? Chance is (N - 1) / (M*N - 1) (``retrieval_chance``).
* ``club``: the information about the view's input beyond what it shares: a CLUB estimate of I(x; z) in nats, x
  the view's pixels (hidden patches zeroed), with q_theta(z | x) (paper 000's approximation network) fitted afresh
  by maximum likelihood on the first half and scored on batches of the second (negatives: the other views of the
  batch). ``club_log_likelihood`` is q_theta's held-out mean log q(z | x), how well it fits.
* ``cosine_siblings`` and ``cosine_others``: the plain geometry, the mean cosine between views of one image and
  between views of different images.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mimae.analysis.loading import (
    labelled_test_images,
    load_pretrained,
    model_input,
    unit_images,
    with_initializations,
)
from mimae.analysis.mask_geometry import masked_views
from mimae.config import ConfigError
from mimae.estimators import club, gaussian_log_prob, gaussian_log_prob_matrix, info_nce, info_nce_bound, view_positives
from mimae.masking import orthogonal_masks
from mimae.models.vit import Encoder, ViTEncoder
from mimae.objectives.mi_terms import ApproximationNetwork
from mimae.plotting import measure_bars, write_json


@dataclass(frozen=True)
class Fitting:
    """How the critic and q_theta are fitted: Adam at ``lr`` for ``steps`` steps of ``batch_images`` images (all
    their views), from a seeded initialization."""

    steps: int = 300
    batch_images: int = 256
    lr: float = 1e-3
    critic_dim: int = 128
    q_hidden: int = 256
    seed: int = 0


# -- the views' latents ------------------------------------------------------------------------------------------

@torch.no_grad()
def view_latents(encoder: Encoder, inputs: torch.Tensor, keep: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """inputs (M, C, H, W) standardized images, keep (M, N, K) visible patch indices -> z (M, N, D): each view's
    [CLS] token after the final norm, L2-normalized, float32 on the CPU."""
    encoder.eval()
    out = []
    for images, ids in zip(inputs.split(batch_size), keep.split(batch_size)):
        cls = encoder(images, ids.to(images.device))[:, 0].float()
        out.append(F.normalize(cls, dim=-1).reshape(len(images), keep.shape[1], -1).cpu())
    return torch.cat(out)


def halves(count: int) -> tuple[slice, slice]:
    """The images the estimators are fitted on (the first half) and scored on (the second)."""
    return slice(0, count // 2), slice(count // 2, count)


def batches(count: int, size: int) -> list[slice]:
    """Consecutive batches of ``size`` items (the last may be smaller; dropped if it has one item)."""
    return [slice(start, min(start + size, count)) for start in range(0, count, size) if count - start > 1]


# -- shared information: a fitted InfoNCE critic ------------------------------------------------------------------

class Critic(nn.Module):
    """score(z_a, z_b) = cos(W z_a, W z_b) / tau, tau learned (initialized at 0.1)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.project = nn.Linear(dim, out_dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(0.1)))

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """The InfoNCE loss of Eq. 7-8 over the views of z (B, N, D): positives the sibling views."""
        b, n, _ = z.shape
        flat = F.normalize(self.project(z.reshape(b * n, -1)), dim=-1)
        positives, excluded = view_positives(b, n, z.device)
        return info_nce(flat @ flat.T / self.log_tau.exp(), positives, excluded)


def fit_critic(z: torch.Tensor, fitting: Fitting) -> Critic:
    """A :class:`Critic` fitted on z (M, N, D) by minimizing the InfoNCE loss over random batches of images."""
    generator = torch.Generator().manual_seed(fitting.seed)
    with torch.random.fork_rng():
        torch.manual_seed(fitting.seed)
        critic = Critic(z.shape[-1], fitting.critic_dim)
    optimizer = torch.optim.Adam(critic.parameters(), lr=fitting.lr)
    for _ in range(fitting.steps):
        chosen = torch.randperm(len(z), generator=generator)[:fitting.batch_images]
        loss = critic.loss(z[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return critic


@torch.no_grad()
def infonce_bound(critic: Critic, z: torch.Tensor, batch_images: int) -> float:
    """The InfoNCE lower bound (nats) of ``critic`` on z (M, N, D), averaged over consecutive batches of images."""
    n = z.shape[1]
    bounds = [float(info_nce_bound(critic.loss(z[part]), (part.stop - part.start) * n - 1, n - 1))
              for part in batches(len(z), batch_images)]
    return sum(bounds) / len(bounds)


def infonce_ceiling(batch_images: int, views: int) -> float:
    """The largest bound a batch of ``batch_images`` images with ``views`` views each can show: log((K*N-1)/(N-1))."""
    return math.log((batch_images * views - 1) / (views - 1))


# -- retrieval and geometry ----------------------------------------------------------------------------------------

def view_retrieval(z: torch.Tensor) -> float:
    """Top-1 retrieval (%) over all views of z (M, N, D), unit vectors: the share of views whose most similar other
    view (cosine) belongs to the same image."""
    m, n, _ = z.shape
    flat = z.reshape(m * n, -1)
    similarity = flat @ flat.T
    similarity.fill_diagonal_(float("-inf"))
    image_of = torch.arange(m).repeat_interleave(n)
    return 100.0 * float((image_of[similarity.argmax(dim=1)] == image_of).float().mean())


def retrieval_chance(images: int, views: int) -> float:
    """Top-1 retrieval (%) of a random ranking: (N - 1) siblings among M*N - 1 other views."""
    return 100.0 * (views - 1) / (images * views - 1)


def cosine_geometry(z: torch.Tensor) -> dict[str, float]:
    """Mean cosine between sibling views and between views of different images; z (M, N, D) unit vectors."""
    m, n, _ = z.shape
    flat = z.reshape(m * n, -1)
    similarity = flat @ flat.T
    positives, excluded = view_positives(m, n)
    return {"cosine_siblings": float(similarity[positives].mean()),
            "cosine_others": float(similarity[~(positives | excluded)].mean())}


# -- information about the input: CLUB with a freshly fitted q_theta ---------------------------------------------

def fit_q(x: torch.Tensor, z: torch.Tensor, fitting: Fitting) -> ApproximationNetwork:
    """q_theta(z | x) fitted by maximum likelihood on pairs x (M, Dx), z (M, Dz) (Eq. 9 of paper 000)."""
    generator = torch.Generator().manual_seed(fitting.seed)
    with torch.random.fork_rng():
        torch.manual_seed(fitting.seed)
        q = ApproximationNetwork(x.shape[-1], z.shape[-1], fitting.q_hidden)
    optimizer = torch.optim.Adam(q.parameters(), lr=fitting.lr)
    for _ in range(fitting.steps):
        chosen = torch.randperm(len(z), generator=generator)[:fitting.batch_images]
        mu, logvar = q(x[chosen])
        loss = -gaussian_log_prob(z[chosen], mu, logvar).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return q


@torch.no_grad()
def club_estimate(q: ApproximationNetwork, x: torch.Tensor, z: torch.Tensor, batch: int) -> dict[str, float]:
    """CLUB (nats) of q on pairs x (M, Dx), z (M, Dz), averaged over consecutive batches (each pair's negatives: the
    other z of its batch); and the mean held-out log-likelihood log q(z | x)."""
    estimates, likelihoods = [], []
    for part in batches(len(z), batch):
        mu, logvar = q(x[part])
        estimates.append(float(club(gaussian_log_prob_matrix(z[part], mu, logvar))))
        likelihoods.append(float(gaussian_log_prob(z[part], mu, logvar).mean()))
    return {"club": sum(estimates) / len(estimates), "club_log_likelihood": sum(likelihoods) / len(likelihoods)}


# -- one encoder, several encoders ---------------------------------------------------------------------------------

def mask_mi(z: torch.Tensor, x: torch.Tensor, fitting: Fitting) -> dict[str, float]:
    """Every measure of the module docstring from views' latents z (M, N, D) and inputs x (M, N, Dx)."""
    fit, score = halves(len(z))
    n = z.shape[1]
    held_out = z[score]
    critic = fit_critic(z[fit], fitting)
    q = fit_q(x[fit].flatten(0, 1), z[fit].flatten(0, 1), fitting)
    return {"infonce": infonce_bound(critic, held_out, fitting.batch_images),
            "infonce_ceiling": infonce_ceiling(min(fitting.batch_images, len(held_out)), n),
            "retrieval": view_retrieval(held_out), "retrieval_chance": retrieval_chance(len(held_out), n),
            **club_estimate(q, x[score].flatten(0, 1), held_out.flatten(0, 1), fitting.batch_images * n),
            **cosine_geometry(held_out)}


def run_mask_mi(checkpoints: list[str | Path], output_dir: str | Path, images: int = 2000, views: int = 4,
                fitting: Fitting = Fitting(), mask_seed: int = 0, batch_size: int = 256, device: str = "cpu",
                data_dir: str | None = None, with_init: bool = False) -> dict:
    """``mimae analyze mask-mi``: mask_mi.png (one bar per encoder for each measure) and mask_mi.json.

    Every encoder sees the same ``images`` test images and the same ``views`` orthogonal masks of each (drawn with
    ``mask_seed`` on the masking unit of the first checkpoint's run). ``with_init``: after each checkpoint, the same
    ViT at the initialization its run started from (its seed), the baseline of every measure (row ``init`` true).
    The JSON's ``seconds``: how long the whole measurement took.
    """
    started = time.perf_counter()
    models = [load_pretrained(path, device, data_dir) for path in checkpoints]
    first = models[0].cfg
    pixels, _, info = labelled_test_images(first, images)
    patch = first.model.patch_size
    grid = (first.data.image_size // patch, first.data.image_size // patch)
    masks = orthogonal_masks(len(pixels), grid, 1 - 1 / views, views, first.mask.resolved()[1] // patch,
                             torch.Generator().manual_seed(mask_seed))
    x = torch.stack([masked_views(unit_images(pixels), masks.mask[:, v], patch) for v in range(views)], dim=1)
    inputs = model_input(pixels, info, device)
    results = []
    for measured in with_initializations(models, info.channels, device, with_init):
        if not isinstance(measured.encoder, ViTEncoder):
            raise ConfigError(f"{measured.model.path}: mask-mi encodes the visible patches of each view alone, "
                              f"which takes a ViT encoder, not {type(measured.encoder).__name__}")
        z = view_latents(measured.encoder, inputs, masks.keep, batch_size)
        results.append(measured.row(mask_mi(z, x, fitting)))
    out = Path(output_dir)
    title = (f"{len(pixels)} test images, {views} orthogonal views each (estimators fitted on {len(pixels) // 2}, "
             f"scored on the rest)")
    figure = measure_bars(results, MEASURES, out / "mask_mi.png", title)
    data = write_json({"images": len(pixels), "views": views, "fitting": asdict(fitting), "mask_seed": mask_seed,
                       "seconds": time.perf_counter() - started, "checkpoints": results}, out / "mask_mi.json")
    return {"figures": [figure], "json": data, "checkpoints": results}


MEASURES = (("infonce", "infonce_ceiling", "shared: InfoNCE bound (nats)", "ceiling"),
            ("retrieval", "retrieval_chance", "view retrieval, top-1 (%)", "chance"),
            ("club", None, "input beyond it: CLUB (nats)", None),
            ("cosine_siblings", "cosine_others", "cosine: sibling views", "different images"))
