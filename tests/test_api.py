"""The public API: its names pinned, the Python code blocks of the README and docs/ and the examples run at a tiny
size, so that none of them can drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mimae
from mimae.config import ConfigError
from tests.conftest import TINY, train_tiny
from tests.faults.conftest import jpeg_folder

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = ["Config", "Masks", "__version__", "barlow_twins_loss", "club", "draw_masks", "evaluate", "gaussian_log_prob",
          "info_nce", "info_nce_bound", "latent_rank", "load_config", "load_encoder", "mask_mi", "nt_xent",
          "objective", "orthogonal_masks", "pretrain", "random_masks", "uniformity_loss"]

# what a tiny pretraining and evaluation add to the docs' calls: seconds instead of hours
TINY_RUN = {**TINY, "data.train_limit": 64, "data.test_limit": 32, "eval.knn_bank_limit": 64,
            "eval.knn_query_limit": 32, "train.epochs": 1}


def test_the_public_names_are_a_visible_decision():
    assert sorted(mimae.__all__) == sorted(PUBLIC)  # change both, and docs/api.md, on purpose
    assert all(hasattr(mimae, name) for name in mimae.__all__)
    documented = (ROOT / "docs" / "api.md").read_text()
    assert all(f"mimae.{name}" in documented for name in PUBLIC)
    assert (ROOT / "src" / "mimae" / "py.typed").is_file()


def test_an_objective_for_a_users_loop_trains_and_refuses_unknown_options():
    obj = mimae.objective("mimae", image_size=16, in_chans=1, model={"patch_size": 4, "embed_dim": 32, "depth": 2,
                                                                      "num_heads": 2}, seed=0, views=2)
    images = torch.randn(4, 1, 16, 16)
    first = obj(images, generator=torch.Generator().manual_seed(1))
    again = obj(images, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first["loss"], again["loss"])  # the generator draws the masks
    first["loss"].backward()
    assert obj.encoder.patch_embed.proj.weight.grad is not None and obj.views_per_image == 2
    same_seed = mimae.objective("mae", image_size=16, in_chans=1, model={"patch_size": 4, "embed_dim": 32,
                                                                         "depth": 2, "num_heads": 2}, seed=0)
    assert torch.equal(same_seed.encoder.cls_token, obj.encoder.cls_token)  # one seed, one initial encoder
    with pytest.raises(ConfigError, match="'lambda' is not one of its options.*lambda_max"):
        mimae.objective("mimae", **{"lambda": 1})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding runs/mae (a tiny pretrained MAE on Fashion-MNIST) and images/ (an ImageFolder of JPEGs)."""
    root = tmp_path_factory.mktemp("api")
    train_tiny(root / "runs" / "mae")
    jpeg_folder(root / "images", per_class=16)
    return root


def test_mask_mi_measures_a_run_beside_its_initialization_and_refuses_bad_sizes(workspace, tmp_path):
    result = mimae.mask_mi(workspace / "runs" / "mae", tmp_path, images=16, fit_steps=2, with_init=True)
    trained, untrained = result["checkpoints"]
    assert (trained["init"], untrained["init"]) == (False, True) and trained["step"] > 0 == untrained["step"]
    assert (tmp_path / "mask_mi.json").is_file() and result["figures"] == [tmp_path / "mask_mi.png"]
    with pytest.raises(ConfigError, match="mask_mi needs views >= 2, images >= 8 and fit_steps >= 1, got 1, 16"):
        mimae.mask_mi(workspace / "runs" / "mae", tmp_path, images=16, views=1)


def test_latent_rank_measures_a_run_beside_its_initialization_and_refuses_one_image(workspace, tmp_path):
    result = mimae.latent_rank(workspace / "runs" / "mae", tmp_path, images=16, with_init=True)
    trained, untrained = result["checkpoints"]
    assert (trained["init"], untrained["init"]) == (False, True) and trained["step"] > 0 == untrained["step"]
    assert 1 <= trained["effective_rank"] <= 15 and trained["unit_std_even"] == pytest.approx(trained["dims"] ** -0.5)
    assert (tmp_path / "rank.json").is_file() and result["figures"] == [tmp_path / "rank.png"]
    with pytest.raises(ConfigError, match="latent_rank needs images >= 2, got 1"):
        mimae.latent_rank(workspace / "runs" / "mae", tmp_path, images=1)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if python_blocks(d)], ids=lambda d: d.name)
def test_the_python_blocks_of_the_docs_run(document, workspace, monkeypatch):
    from mimae.data import normalize, train_test_sets
    from mimae.export import export_checkpoint
    monkeypatch.chdir(workspace)
    if not Path("mae.safetensors").is_file():
        export_checkpoint("runs/mae", "mae.safetensors")
    _, test, info = train_test_sets(mimae.load_config(overrides=TINY_RUN).data)
    images = normalize(torch.stack([test[i][0] for i in range(8)]), info)
    pretrain = mimae.pretrain  # the docs' runs at the tiny size (their evaluations read its limits from the run)
    monkeypatch.setattr(mimae, "pretrain", lambda config, out, **kw: pretrain({**config, **TINY_RUN}, out, **kw))
    for block in python_blocks(document):
        exec(compile(block, str(document), "exec"), {"images": images, "__name__": "__doc__"})


def run_example(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_examples_run(workspace):
    out = run_example("mimae_in_a_plain_loop.py", "--data-dir", "images", "--image-size", "16", "--steps", "2",
                      cwd=workspace)
    assert "step 2: loss" in out and (workspace / "mimae_encoder.pt").is_file()
    out = run_example("finetune_in_timm.py", "--checkpoint", "runs/mae", "--data-dir", "images", "--epochs", "1",
                      cwd=workspace)
    assert "epoch 1: loss" in out
    tiny = [f"{key}={value}" for key, value in TINY_RUN.items()]
    out = run_example("compare_two_methods.py", "--epochs", "1", "--seeds", "0", "1", "--set", *tiny, cwd=workspace)
    assert "paired over 2 seeds" in out
