"""The two presets of ``section.key`` values: a run to try things in minutes, and the smallest model worth a run.

Each is a dict of overrides, placed before the user's own (which win): ``load_config(overrides={**QUICK, **mine})``.
"""

from __future__ import annotations

from typing import Any

# `mimae pretrain --quick`: a minutes-long run on a slice of the data with a small model, for trying things out
QUICK: dict[str, Any] = {
    "data.train_limit": 6000,
    "data.test_limit": 2000,
    "eval.knn_bank_limit": 6000,
    "eval.knn_query_limit": 2000,
    "model.embed_dim": 96,
    "model.depth": 4,
    "model.num_heads": 3,
    "model.decoder_dim": 64,
    "model.decoder_depth": 1,
    "model.decoder_heads": 2,
    "optim.batch_size": 128,
    "optim.base_lr": 5e-4,
    "train.epochs": 3,
    "train.log_every": 10,
}

# the smallest model worth a run: a 2-block ViT on 16 px images, for seconds-long runs (the experiments' smoke
# scale, `mimae bench --smoke`, the tests)
TINY: dict[str, Any] = {"model.embed_dim": 32, "model.depth": 2, "model.num_heads": 2, "model.decoder_dim": 32,
        "model.decoder_depth": 1, "model.decoder_heads": 2, "data.image_size": 16, "model.patch_size": 4}
