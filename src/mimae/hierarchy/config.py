"""The ``hierarchy`` section: paper 003's synthetic hierarchical latent model (``mimae hierarchy``, dataset
``hierarchical``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mimae.config import ConfigError, param, register_section

if TYPE_CHECKING:
    from mimae.config import Config


@dataclass
class HierarchyConfig:
    """The synthetic hierarchical latent model of paper 003 (``mimae hierarchy``, dataset ``hierarchical``).

    A tree over the pixel grid: the root, then ``branching`` x ``branching`` children per node for ``depth`` latent
    levels, then observable pixel blocks. Each node is an invertible mix of its parent and fresh noise, so its
    dimension is the parent's plus ``dim_growth`` noise dimensions; the blocks hold ``channels`` x side x side values.
    """

    image_size: int = param(32, "side of the generated images, pixels", low=2)
    channels: int = param(3, "colour channels of the generated images", low=1)
    depth: int = param(4, "latent levels, root included", low=1)
    branching: int = param(2, "children per node along each axis (2: a quadtree)", low=2)
    root_dim: int = param(4, "dimension of the root latent (the label is read from its first two coordinates)",
                          low=2)
    dim_growth: int = param(2, "exogenous noise dimensions added at each latent level below the root", low=1)
    noise: float = param(1.0, "standard deviation of the exogenous noise (the root is standard normal)", low=0.0)
    nonlinearity: float = param(0.5, "strength a of the invertible map x + a*tanh(x) after each linear mix", low=0.0)
    sign_gate: bool = param(True, "after each mix, multiply all coordinates but the first by the first one's sign "
                                  "(invertible; hides each parent from linear read-outs of its children)")
    num_classes: int = param(8, "labels: equal angular sectors of the root's first two coordinates", low=2)
    train_size: int = param(20000, "generated training images", low=1)
    test_size: int = param(5000, "generated test images", low=1)
    seed: int = param(0, "seed of the mixing functions and of the samples", low=0)

    def block_size(self) -> int:
        """Side, in pixels, of the observable blocks below the lowest latent level."""
        return self.image_size // self.branching ** self.depth

    def check(self) -> None:
        """Fail with a message naming the keys when the geometry or the dimensions do not fit together."""
        leaves = self.branching ** self.depth
        if self.image_size % leaves:
            raise ConfigError(f"hierarchy.image_size={self.image_size} is not divisible by hierarchy.branching"
                              f"**hierarchy.depth={leaves}")
        lowest = self.root_dim + (self.depth - 1) * self.dim_growth
        block_dim = self.channels * self.block_size() ** 2
        if lowest > block_dim:
            raise ConfigError(f"the lowest latent level has {lowest} dimensions (hierarchy.root_dim + "
                              f"(hierarchy.depth - 1) * hierarchy.dim_growth) but the pixel blocks below it only "
                              f"{block_dim}; an invertible mix needs at least as many")


    def validate(self, cfg: Config) -> None:
        self.check()


register_section("hierarchy", HierarchyConfig, "synthetic hierarchical latent model (paper 003)")
