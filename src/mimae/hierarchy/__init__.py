"""Paper 003's hierarchical latent variable model, one module each: ``graph`` (the latent tree over the pixel grid),
``generator`` (images from it), ``dataset`` (``data.dataset=hierarchical``), ``locator`` (Theorem 1's shared
latents c), ``theory`` (the level of c over mask ratios and units) and ``probe`` (per-level probes of an encoder).

Nothing is imported here, so that registering the dataset (``mimae.hierarchy.dataset``) does not load the
probes' scikit-learn or the theory's plotting.
"""
