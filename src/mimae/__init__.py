"""mimae: information-theoretic masked image modeling in PyTorch.

The public API is what ``__all__`` lists (docs/api.md); every other module and name is internal and may change.
"""

__version__ = "0.1.0"

from mimae.api import evaluate, latent_rank, load_encoder, mask_mi, objective, pretrain  # noqa: E402
from mimae.config import Config, load_config  # noqa: E402
from mimae.estimators import club, gaussian_log_prob, info_nce, info_nce_bound  # noqa: E402
from mimae.masking import Masks, draw_masks, orthogonal_masks, random_masks  # noqa: E402
from mimae.objectives.ssl_losses import barlow_twins_loss, nt_xent, uniformity_loss  # noqa: E402

__all__ = [
    "Config",
    "Masks",
    "__version__",
    "barlow_twins_loss",
    "club",
    "draw_masks",
    "evaluate",
    "gaussian_log_prob",
    "info_nce",
    "info_nce_bound",
    "latent_rank",
    "load_config",
    "load_encoder",
    "mask_mi",
    "nt_xent",
    "objective",
    "orthogonal_masks",
    "pretrain",
    "random_masks",
    "uniformity_loss",
]
