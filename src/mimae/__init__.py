"""mimae: information-theoretic masked image modeling in PyTorch."""

__version__ = "0.1.0"
