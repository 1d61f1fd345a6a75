"""The mutual-information losses of MI-MAE (paper 000, Eq. 7-10, Alg. 1), reusable on any masked-image objective.

An objective that encodes N masked views of each image adds :class:`MutualInformationTerms` as a sub-module and
calls it once per step::

    z = mi.latent(tokens)                                 # (B*N, 1+K, D) encoder tokens -> (B*N, Dz)
    x = visible_patch_summary(patch_tokens, masks.keep)   # (B, N, Dx), what q_theta conditions on (detached)
    terms = mi(z.reshape(B, N, -1), x)                    # named terms; terms["loss"] is what to add to L_rec
    ...
    mi.update_gate(rec)                                   # in the objective's after_step

Gradient routing (Alg. 1): ``terms["loss"]`` reaches the encoder (and the optional projector) through z by
L_max and L_min, and the approximation network q_theta only through L_approx, which sees z detached. L_min reads
q_theta's outputs detached, so q_theta never learns from L_min. Nothing here touches a decoder.

Across processes (DDP), L_max is the InfoNCE over the global batch of views (Eq. 7 sums over all N*B views): the
latents are gathered with a correct backward, as NT-Xent's are; so are the CLUB negatives with
``club_negatives=batch``. The MI terms compute in float32 with autocast off.

The eps_l gate (Assumption 3) keeps L_max and L_min off (weight 0) until the running mean of the reconstruction loss
falls below eps_l, then on for good. The running mean is of the global L_rec, so the gate is the same in every
process; it is updated on the device (no host sync). Its state lives in buffers, so checkpoints carry it and a
resumed run keeps it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from mimae import distributed
from mimae.config import ConfigError, param, register_section
from mimae.distributed import gather_with_grad
from mimae.estimators import club, gaussian_log_prob, gaussian_log_prob_matrix, info_nce, info_nce_bound, view_positives
from mimae.masking import complete_masking_views
from mimae.models import Encoder
from mimae.models.heads import mlp_head
from mimae.models.patches import normalized_pixel_target
from mimae.precision import float32_loss

if TYPE_CHECKING:
    from mimae.config import Config


@dataclass
class MIMAEConfig:
    views: str = param("auto", "N: masks per image of mimae and mi-simmim, all encoded in one batched forward: a "
                               "number >= 2; auto: the method's own (4 for mimae; 2 for mi-simmim, paper 000's "
                               "SimMIM rows); complete: as many as cover the image, max(2, round(1 / (1 - "
                               "mask.ratio))) (paper 000 Fig. 2)")
    masking: str = param("orthogonal", "orthogonal: the N visible sets partition the image; independent: N "
                                       "independent random masks (Tab. 3c)", choices=("orthogonal", "independent"))
    lambda_rec: float = param(1.0, "lambda1: weight of L_rec (0 turns the reconstruction loss off)", low=0.0)
    lambda_max: float = param(0.1, "lambda2: weight of L_max, the InfoNCE across views (0: off; the default 0.1 "
                                    "on a projection beat MAE's linear probe at 5 paired seeds, see docs/mimae.md; "
                                    "the paper: 1 on [CLS])", low=0.0)
    lambda_min: float = param(0.0, "lambda3: weight of L_min, the CLUB upper bound (0: off, the default: it cost "
                                   "2 kNN points at small scale, see docs/mimae.md; the paper: 10)", low=0.0)
    min_ramp_steps: int = param(0, "ramp lambda3 linearly from 0 over this many steps after the gate opens "
                                   "(0: no ramp)", low=0)
    train_approx: bool = param(True, "train q_theta with L_approx (false: q_theta stays at initialization, "
                                     "Tab. 3a row d)")
    tau: float = param(0.07, "InfoNCE temperature of L_max", low=1e-4)
    crops: int = param(1, "augmented crops of each image (MAE's RandomResizedCrop + flip, drawn independently), each "
                          "masked with mimae.views masks; with 2 or more, L_max's positives are the views of the "
                          "image's other crops (views that differ beyond the mask, as CAN's 2 crops), and a view's "
                          "own crop is left out of its candidates; samples per image: crops x views; mimae only",
                       low=1)
    positives: str = param("views", "what L_max pulls a view's latent towards: its sibling views (the paper), or "
                                    "target: the unmasked image's latent under an EMA copy of the encoder and "
                                    "projector, reached through a predictor, with stop-gradient (as CMAE, data2vec, "
                                    "MSN); mimae only", choices=("views", "target"))
    latent_block: int = param(0, "the encoder block whose output the MI terms read: 0, the encoder's output after "
                                 "its final norm (the paper); k, the output of block k, so L_max and L_min reach "
                                 "blocks 1..k only and the blocks above learn from L_rec alone; mimae only", low=0)
    top_blocks: int = param(0, "L_max and L_min reach only the top k blocks and the final norm: they read the "
                               "encoder's output recomputed from block depth-k's detached input (one more pass "
                               "through those blocks; reconstruction below, contrast above, as Layer Grafted "
                               "Pre-training); 0: every block; mimae only", low=0)
    target_momentum: float = param(0.996, "EMA momentum of the target encoder and projector (positives=target)",
                                   low=0.0, high=1.0)
    predictor_hidden: int = param(256, "hidden width of the predictor in front of L_max (positives=target)", low=1)
    latent: str = param("cls", "encoder output the MI terms act on: the [CLS] token or the mean of the visible "
                               "tokens", choices=("cls", "mean"))
    projector_dim: int = param(128, "width of an MLP projector between the latent and the MI terms (0: none, the "
                                    "MI terms act on the latent itself, as the paper; at weight 1 that cost 5 points "
                                    "of fine-tuning against MAE, see docs/mimae.md)", low=0)
    projector_hidden: int = param(256, "hidden width of that projector", low=1)
    normalize_latent: bool = param(True, "L2-normalize z before the MI terms (InfoNCE is cosine either way, so "
                                          "this only changes CLUB and q_theta: both on the unit sphere)")
    club_negatives: str = param("views", "the sum over k in L_min: the image's own N views (paper Eq. 10) or all "
                                         "B*N views of the batch (CLUB)", choices=("views", "batch"))
    approx_input: str = param("embed", "X_j fed to q_theta: mean of the view's visible patch embeddings, or of its "
                                       "normalized pixel patches (both detached)", choices=("embed", "pixels"))
    approx_lr_scale: float = param(1.0, "q_theta's learning rate as a multiple of the encoder's (a larger value "
                                        "keeps q_theta ahead of the encoder, so the CLUB estimate stays an upper "
                                        "bound)", low=1e-3)
    approx_hidden: int = param(256, "hidden width of q_theta's two branches", low=1)
    logvar_bound: float = param(5.0, "q_theta's log-variance is squashed into (-bound, bound) (relu_sigma: the "
                                     "floor of sigma is exp(-bound / 2))", low=0.1)
    approx_variance: str = param("logvar", "q_theta's variance branch: a tanh-bounded log-variance, or relu_sigma, "
                                           "a standard deviation through a ReLU as paper 000 section 5.4",
                                 choices=("logvar", "relu_sigma"))
    approx_mean_activation: str = param("none", "last activation of q_theta's mean branch: none, or leaky_relu as "
                                                "the paper (cannot fit negative latents well)",
                                        choices=("none", "leaky_relu"))
    eps_l: float = param(0.5, "the gate: L_max and L_min start once the running L_rec falls below eps_l "
                              "(latched; 0 never opens; a large value opens it at once)", low=0.0)
    gate_momentum: float = param(0.9, "EMA momentum of the running L_rec the gate reads", low=0.0, high=0.999)
    plateau_steps: int = param(0, "also open the gate once the running L_rec has not improved by more than "
                                  "plateau_tolerance (relative) for this many applied steps: L_rec has plateaued, "
                                  "as the paper's Assumption 3 reads (0: eps_l alone)", low=0)
    plateau_tolerance: float = param(0.01, "the relative improvement of the running L_rec that counts as progress "
                                          "(plateau_steps)", low=0.0, high=1.0)

    def validate(self, cfg: Config) -> None:
        view_count(self.views, 0.5, 2)  # its form: a number >= 2, auto or complete
        for key, value in (("positives", self.positives != "views"), ("latent_block", self.latent_block),
                           ("top_blocks", self.top_blocks), ("crops", self.crops > 1)):
            if value and cfg.method != "mimae":
                raise ConfigError(f"mimae.{key}={getattr(self, key)} is MI-MAE's option (method mimae), not "
                                  f"{cfg.method}'s")
        depth = cfg.model.depth
        if self.crops > 1 and self.positives != "views":
            raise ConfigError(f"mimae.crops={self.crops} pairs views across crops; mimae.positives={self.positives} "
                              "pairs them with a target: set one of them")
        if self.latent_block and self.top_blocks:
            raise ConfigError("mimae.latent_block and mimae.top_blocks split the encoder two ways: set one of them")
        for key in ("latent_block", "top_blocks"):
            if getattr(self, key) >= depth:
                raise ConfigError(f"mimae.{key}={getattr(self, key)} must be below model.depth={depth}")


class InfoNCE(NamedTuple):
    """L_max and what it says: the loss, the lower bound on MI it implies (nats), and its value at chance, log of
    the candidates in each denominator (every score equal: the latents tell no image from another)."""

    loss: torch.Tensor
    bound: torch.Tensor
    chance: float


def view_count(views: str, ratio: float, default: int) -> int:
    """N from ``mimae.views``: the number, the method's ``default`` for auto, the complete-masking count for
    complete."""
    if views == "auto":
        return default
    if views == "complete":
        return complete_masking_views(ratio)
    if not views.isdigit() or int(views) < 2:
        raise ConfigError(f"mimae.views={views!r} is not a number >= 2, auto or complete")
    return int(views)


register_section("mimae", MIMAEConfig, "MI-MAE objective (paper 000), and the MI terms of mi-simmim")


class ApproximationNetwork(nn.Module):
    """q_theta(z | x) = N(mu(x), diag(exp(logvar(x)))) (paper 000 section 5.4).

    Two branches, each Linear-GELU-Linear then a last Linear; the mean branch ends in ``mean_activation``
    ("leaky_relu" as the paper, or "none": a LeakyReLU mean reaches negative values only through 100x larger
    pre-activations, while latents after a LayerNorm are half negative); the variance branch predicts a log-variance
    squashed into (-logvar_bound, logvar_bound) by a scaled tanh, which keeps the CLUB gradient (proportional to
    1 / variance) bounded (``variance="logvar"``), or, as the paper's section 5.4 writes it, a standard deviation
    through a ReLU (``variance="relu_sigma"``: sigma = ReLU(branch) + exp(-logvar_bound / 2), the floor keeping
    the log-density finite). x (..., Dx) -> (mu, logvar), each (..., Dz).
    """

    def __init__(self, in_dim: int, z_dim: int, hidden_dim: int, logvar_bound: float = 5.0,
                 mean_activation: str = "none", variance: str = "logvar"):
        super().__init__()
        if mean_activation not in ("none", "leaky_relu"):
            raise ValueError(f"unknown mean_activation {mean_activation!r}; expected none or leaky_relu")
        if variance not in ("logvar", "relu_sigma"):
            raise ValueError(f"unknown variance {variance!r}; expected logvar or relu_sigma")
        self.logvar_bound, self.variance = logvar_bound, variance
        last = nn.LeakyReLU() if mean_activation == "leaky_relu" else nn.Identity()
        self.mu = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                nn.Linear(hidden_dim, z_dim), last)
        self.logvar = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                    nn.Linear(hidden_dim, z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        branch = self.logvar(x)
        if self.variance == "relu_sigma":
            sigma = F.relu(branch) + math.exp(-self.logvar_bound / 2)
            return self.mu(x), 2 * torch.log(sigma)
        return self.mu(x), self.logvar_bound * torch.tanh(branch / self.logvar_bound)


def visible_patch_summary(patch_tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """X_j summarized as the mean of its visible patch vectors, detached.

    patch_tokens (B, L, Dx) per-patch vectors (patch embeddings or normalized pixels); keep (B, N, K) visible
    indices of each view. Returns (B, N, Dx).
    """
    b, n, k = keep.shape
    dim = patch_tokens.shape[-1]
    picked = torch.gather(patch_tokens.detach().unsqueeze(1).expand(b, n, -1, dim), 2,
                          keep.unsqueeze(-1).expand(-1, -1, -1, dim))
    return picked.mean(dim=2)


class MutualInformationTerms(nn.Module):
    """L_max (InfoNCE across views), L_min (CLUB), L_approx (q_theta's likelihood) and the eps_l gate.

    Args (``cfg`` the :class:`MIMAEConfig` section): ``embed_dim`` the encoder width, ``input_dim`` the width
    of q_theta's input x. ``cfg`` fields used: latent, projector_dim, projector_hidden, normalize_latent, tau,
    lambda_max, lambda_min, min_ramp_steps, club_negatives, train_approx, approx_hidden, logvar_bound,
    approx_mean_activation, approx_variance, eps_l, gate_momentum.
    """

    gate_open: torch.Tensor  # buffers (registered in __init__)
    gate_step: torch.Tensor
    rec_running: torch.Tensor
    rec_best: torch.Tensor  # with plateau_steps only
    best_step: torch.Tensor
    steps: torch.Tensor

    def __init__(self, cfg: MIMAEConfig, embed_dim: int, input_dim: int):
        super().__init__()
        self.cfg = cfg
        self.projector = None
        z_dim = embed_dim
        if cfg.projector_dim:
            self.projector = mlp_head(embed_dim, cfg.projector_hidden, cfg.projector_dim, layers=2, norm="ln")
            z_dim = cfg.projector_dim
        self.approx = ApproximationNetwork(input_dim, z_dim, cfg.approx_hidden, cfg.logvar_bound,
                                           cfg.approx_mean_activation, cfg.approx_variance)
        self.predictor = self.target_projector = None
        if cfg.positives == "target":  # the target's projector follows this one by EMA (the objective's after_step)
            self.predictor = mlp_head(z_dim, cfg.predictor_hidden, z_dim, layers=2, norm="ln")
            if self.projector is not None:
                self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("gate_open", torch.tensor(False))
        self.register_buffer("gate_step", torch.tensor(-1, dtype=torch.long))  # optimizer step at which it opened
        self.register_buffer("rec_running", torch.tensor(float("nan")))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))
        if cfg.plateau_steps:  # the best running L_rec and the step it was reached (only then: old states load)
            self.register_buffer("rec_best", torch.tensor(float("inf")))
            self.register_buffer("best_step", torch.tensor(0, dtype=torch.long))

    @classmethod
    def for_encoder(cls, cfg: MIMAEConfig, encoder: Encoder, patch_size: int, in_chans: int) -> MutualInformationTerms:
        """The MI terms for an encoder; q_theta's input is the mean visible patch embedding (``approx_input=embed``)
        or the mean visible pixel patch (patch*patch*in_chans values)."""
        input_dim = encoder.token_dim if cfg.approx_input == "embed" else patch_size * patch_size * in_chans
        return cls(cfg, encoder.embed_dim, input_dim)

    def approx_inputs(self, encoder: Encoder, images: torch.Tensor, keep: torch.Tensor,
                      patch_size: int) -> torch.Tensor:
        """X_j for q_theta, (B, N, Dx): mean of the view's visible patch embeddings or normalized pixels (detached);
        images (B, C, H, W), keep (B, N, K)."""
        with torch.no_grad():
            if self.cfg.approx_input == "embed":
                patches = encoder.patch_tokens(images)
            else:
                patches = normalized_pixel_target(images, patch_size)
        return visible_patch_summary(patches, keep)

    # -- latent ---------------------------------------------------------------------------------------------------

    def latent(self, tokens: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder tokens (V, 1+K, D) -> z (V, Dz): [CLS] or mean of the visible tokens, then the optional projector
        and L2 normalization. ``visible`` (V, K), 1 for visible tokens, is for encoders that also see mask tokens
        (SimMIM); None means every token is visible (MAE's encoder)."""
        if self.cfg.latent == "cls":
            z = tokens[:, 0]
        elif visible is None:
            z = tokens[:, 1:].mean(dim=1)
        else:
            weights = visible.to(tokens.dtype).unsqueeze(-1)
            z = (tokens[:, 1:] * weights).sum(dim=1) / weights.sum(dim=1)
        if self.projector is not None:
            z = self.projector(z)
        return F.normalize(z, dim=-1) if self.cfg.normalize_latent else z

    @torch.no_grad()
    def target_latent(self, tokens: torch.Tensor) -> torch.Tensor:
        """A target encoder's tokens of unmasked images (B, 1+L, D) -> the target (B, Dz): [CLS] or the mean of the
        patch tokens, through the target projector; no gradient."""
        z = tokens[:, 0] if self.cfg.latent == "cls" else tokens[:, 1:].mean(dim=1)
        return self.target_projector(z) if self.target_projector is not None else z

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) module pairs of the MI terms: the projector and its EMA copy, when there is one."""
        if self.projector is None or self.target_projector is None:
            return []
        return [(self.projector, self.target_projector)]

    # -- losses ---------------------------------------------------------------------------------------------------

    def max_mi(self, z: torch.Tensor, crops: int = 1) -> InfoNCE:
        """Eq. 7-8: InfoNCE over the B*N views of the global batch, positives the other views of the same image
        (with ``crops`` > 1: those of its other crops, its own crop's left out), cosine / tau.

        z (B, N, Dz), this process's images, each image's views crop-major.
        """
        z = gather_with_grad(z)
        b, n, _ = z.shape
        flat = F.normalize(z.reshape(b * n, -1), dim=-1)
        own = n // crops if crops > 1 else 1  # left out of a view's candidates: its own crop's views, or itself
        positives, excluded = view_positives(b, n, z.device, own)
        loss = info_nce(flat @ flat.T / self.cfg.tau, positives, excluded)
        return InfoNCE(loss, info_nce_bound(loss.detach(), b * n - own, n - own), math.log(b * n - own))

    def max_mi_target(self, z: torch.Tensor, target: torch.Tensor) -> InfoNCE:
        """L_max against a target: each view's prediction scored by cosine / tau against the targets of every image
        of the global batch, its own image's the positive.

        z (B, N, Dz) with gradient, target (B, Dz) without. The bound is on the information a view shares with its
        unmasked image's target.
        """
        assert self.predictor is not None  # positives=target
        b, n, _ = z.shape
        p = gather_with_grad(self.predictor(z.flatten(0, 1)).reshape(b, n, -1))
        t = gather_with_grad(target)
        images, views = p.shape[:2]
        scores = F.normalize(p.flatten(0, 1), dim=-1) @ F.normalize(t, dim=-1).T / self.cfg.tau  # (B*N, B)
        positives = torch.eye(images, dtype=torch.bool, device=z.device).repeat_interleave(views, dim=0)
        loss = info_nce(scores, positives)
        return InfoNCE(loss, info_nce_bound(loss.detach(), images, 1), math.log(images))

    def log_q_matrix(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log q(z_k | X_j) for the CLUB negatives: within each image's N views (B, N, N) or across all B*N views of
        the global batch (B*N, B*N), gathered from every process. z, mu, logvar (B, N, Dz)."""
        if self.cfg.club_negatives == "views":
            return gaussian_log_prob_matrix(z, mu, logvar)
        z, mu, logvar = (gather_with_grad(t).flatten(0, 1) for t in (z, mu, logvar))
        return gaussian_log_prob_matrix(z, mu, logvar)

    def min_weight(self) -> torch.Tensor | float:
        """lambda_min, ramped linearly over ``min_ramp_steps`` optimizer steps after the gate opened (on the
        device: no host sync)."""
        ramp = self.cfg.min_ramp_steps
        if not ramp:
            return self.cfg.lambda_min
        return self.cfg.lambda_min * ((self.steps - self.gate_step).float() / ramp).clamp(0.0, 1.0)

    @float32_loss
    def forward(self, z: torch.Tensor, x: torch.Tensor, target: torch.Tensor | None = None,
                crops: int = 1) -> dict[str, torch.Tensor]:
        """z (B, N, Dz) latents with gradient; x (B, N, Dx) detached view summaries; target (B, Dz) the images'
        targets for ``positives=target`` (:meth:`target_latent`), else None. With ``crops`` c > 1 the B rows are
        B / c images' crops, image-major: L_max pairs views across an image's crops, L_min and L_approx act per
        crop.

        Returns ``loss`` = gate * (lambda_max * L_max + lambda_min(ramped) * L_min) + L_approx (if trained), and the
        detached terms: ``max_mi``, ``min_mi``, ``approx``, ``infonce_bound`` (nats), ``infonce_chance`` (L_max at
        chance, nats), ``club`` (nats, the CLUB
        estimate with the current q_theta), ``gate`` (0/1), ``gate_step`` (-1 while closed).
        """
        if target is None:
            b, n, dim = z.shape
            l_max, bound, chance = self.max_mi(z.reshape(b // crops, crops * n, dim), crops)
        else:
            l_max, bound, chance = self.max_mi_target(z, target)
        mu, logvar = self.approx(x.detach())
        l_approx = -gaussian_log_prob(z.detach(), mu, logvar).mean()  # Eq. 9: trains q_theta only
        l_min = club(self.log_q_matrix(z, mu.detach(), logvar.detach()))  # Eq. 10: reaches the encoder only
        gate = self.gate_open.float()
        loss = gate * (self.cfg.lambda_max * l_max + self.min_weight() * l_min)
        if self.cfg.train_approx:
            loss = loss + l_approx
        else:
            loss = loss + 0.0 * l_approx  # keeps q_theta in the graph (DDP), with zero gradient
        return {"loss": loss, "max_mi": l_max.detach(), "min_mi": l_min.detach(), "approx": l_approx.detach(),
                "infonce_bound": bound, "infonce_chance": torch.tensor(chance, device=z.device), "club": l_min.detach(),
                "gate": gate,
                "gate_step": self.gate_step.float()}

    # -- gate -----------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def update_gate(self, rec: torch.Tensor | float, applied: torch.Tensor | None = None) -> None:
        """After each optimizer step: update the running L_rec (EMA of the mean over processes, so every process
        holds the same value) and latch the gate open once it is below eps_l (or, with ``plateau_steps``, once it has
        not improved for that many applied steps). ``steps`` counts applied optimizer
        steps; ``gate_step`` records the step it opened after. A step not applied (``applied`` a False 0-d bool
        tensor: its loss was not finite) changes nothing. All on the device."""
        device = self.steps.device
        rec = distributed.all_reduce_mean(torch.as_tensor(rec, dtype=torch.float32, device=device))
        applied = torch.ones((), dtype=torch.bool, device=device) if applied is None else applied.to(device)
        m = self.cfg.gate_momentum
        running = torch.where(torch.isnan(self.rec_running), rec, m * self.rec_running + (1 - m) * rec)
        running = torch.where(applied, running, self.rec_running)
        self.rec_running.copy_(running)
        self.steps += applied.long()
        below = running < self.cfg.eps_l
        if self.cfg.plateau_steps:
            improved = applied & (running < self.rec_best * (1 - self.cfg.plateau_tolerance))
            self.rec_best.copy_(torch.where(improved, running, self.rec_best))
            self.best_step.copy_(torch.where(improved, self.steps, self.best_step))
            below = below | (self.steps - self.best_step >= self.cfg.plateau_steps)
        opens = ~self.gate_open & below & applied
        self.gate_step.copy_(torch.where(opens, self.steps, self.gate_step))
        self.gate_open.logical_or_(opens)

    def summary(self) -> tuple[dict[str, Any], list[str]]:
        """At the end of training (one read on the host): ``gate_step``, the optimizer step after which the MI terms
        started (None: never), and ``gate_rec``, the running L_rec the gate read last; and, when the gate never
        opened although an MI term is weighted, the line that tells the user (:func:`closed_gate_words`)."""
        step, rec = int(self.gate_step), float(self.rec_running)
        values = {"gate_step": step if step >= 0 else None, "gate_rec": None if math.isnan(rec) else rec}
        weighted = self.cfg.lambda_max > 0 or self.cfg.lambda_min > 0
        closed = step < 0 and weighted and int(self.steps) > 0
        return values, [closed_gate_words(rec, self.cfg.eps_l, int(self.steps))] if closed else []


def closed_gate_words(rec: float, eps_l: float, steps: int) -> str:
    """What a run whose gate never opened trained, and how to open it."""
    return (f"the MI terms never started: the running L_rec ended at {rec:.3f}, above mimae.eps_l = {eps_l:g}, so "
            f"for all {steps:,} steps the run trained L_rec alone; set mimae.eps_l above the L_rec this data reaches "
            "(the cpu comparisons open it at 0.7 on Fashion-MNIST) or mimae.plateau_steps to open it on a plateau")
