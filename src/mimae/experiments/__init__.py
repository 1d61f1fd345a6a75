"""Experiments that train several runs and gather their results (the hierarchical-latent study of paper 003)."""
