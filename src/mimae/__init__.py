"""mimae: information-theoretic masked image modeling in PyTorch."""

# Registration: every objective adds its method name and mask defaults to the config, the hierarchical data
# generator adds data.dataset=hierarchical to the dataset loaders.
from mimae import objectives  # noqa: F401, E402
from mimae.hierarchy import dataset  # noqa: F401, E402

__version__ = "0.1.0"
