"""The Swin backbone of SimMIM and MI-SimMIM (paper 000, Tab. 1): timm's SwinTransformer behind the encoder
interface, mask tokens before the first stage, a pixel head at the last stage's stride, and every downstream path
(features, fine-tuning model, timm export, reading the export back)."""

from __future__ import annotations

import json
import warnings

import pytest
import timm
import torch

from mimae.cli import main
from mimae.config import ConfigError, load_config
from mimae.export import to_timm
from mimae.models.swin import SwinEncoder
from mimae.objectives import build_objective
from mimae.runs import load_encoder
from mimae.workflow import pretrain
from tests.conftest import tiny_config

SWIN = {"model__backbone": "swin", "model__embed_dim": 16, "model__num_heads": 1, "model__swin_depths": "1,1",
        "model__swin_window": 2, "data__image_size": 16}


def swin_config(method: str = "simmim", **overrides):
    return tiny_config(method=method, **{**SWIN, **overrides})


@pytest.fixture(scope="module")
def swin_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("swin") / "simmim"
    pretrain(swin_config(data__train_limit=32, train__epochs=1, eval__knn_bank_limit=32, eval__knn_query_limit=16),
             run)
    return run


def test_the_swin_encoder_reads_out_what_timm_reads_out():
    torch.manual_seed(0)
    encoder = SwinEncoder(16, 4, 1, 16, (1, 1), 1, 2).eval()
    images = torch.randn(3, 1, 16, 16)
    tokens = encoder(images)
    assert tokens.shape == (3, 1 + 4, 32) and encoder.output_stride == 8  # 2 x 2 tokens at stride 8
    with torch.no_grad():
        assert torch.allclose(encoder.features(images), encoder.swin(images), atol=1e-6)  # timm's avg-pool read-out
        assert torch.allclose(to_timm(encoder).eval()(images), encoder.features(images), atol=1e-6)
    with pytest.raises(ValueError, match="cannot drop patches"):
        encoder(images, torch.zeros(3, 2, dtype=torch.long))


def test_mask_tokens_replace_the_masked_patch_embeddings_before_the_first_stage():
    objective = build_objective(swin_config(), 1).eval()
    images = torch.randn(2, 1, 16, 16)
    masks = objective.draw_masks(2, torch.Generator().manual_seed(0))
    hidden = masks.flat()[1].bool()
    changed = images.clone()
    pixels = hidden.reshape(2, 4, 4).repeat_interleave(4, 1).repeat_interleave(4, 2).unsqueeze(1)
    changed[pixels] = 5.0  # new content only where patches are masked
    with torch.no_grad():
        assert torch.equal(objective.reconstruct(images, masks)[0], objective.reconstruct(changed, masks)[0])
        assert not torch.equal(objective.reconstruct(images, masks)[0],
                               objective.reconstruct(changed, objective.draw_masks(2))[0])


@pytest.mark.parametrize("method", ["simmim", "mi-simmim"])
def test_simmim_and_mi_simmim_train_a_swin(method):
    objective = build_objective(swin_config(method), 1)
    images = torch.randn(4, 1, 16, 16)
    out = objective(images, objective.draw_masks(4))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and objective.encoder.swin.patch_embed.proj.weight.grad.abs().sum() > 0
    assert objective.pixel_head.out_features == 8 * 8  # one 8 x 8 block per token of the last stage


def test_the_swin_is_for_simmim_and_its_unit_follows_the_stride():
    cfg = swin_config()
    assert cfg.mask.unit == 8  # SimMIM on a Swin: units of the last stage's stride
    with pytest.raises(ConfigError, match="model.backbone=swin is not one mae trains"):
        load_config(overrides={"method": "mae", "model.backbone": "swin"})
    with pytest.raises(ConfigError, match="must be multiples of it"):
        swin_config(mask__unit=4)
    with pytest.raises(ConfigError, match="model.swin_depths"):
        swin_config(model__swin_depths="2,x")


def test_a_swin_run_evaluates_exports_and_reads_its_export_back(swin_run, tmp_path, monkeypatch):
    assert (swin_run / "figures" / "reconstructions.png").is_file()
    assert main(["eval", "linear", "--checkpoint", str(swin_run), "linear.epochs=1", "linear.train_limit=32",
                 "linear.test_limit=16", "linear.batch_size=16"]) == 0
    out = tmp_path / "swin.safetensors"
    assert main(["export", "--checkpoint", str(swin_run), "--format", "timm", "--output", str(out)]) == 0
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["name"] == "swin_16w_1-1d_1h_win2_patch4_16px_1ch" and config["global_pool"] == "avg"
    encoder = load_encoder(swin_run)[0]
    images = torch.randn(2, 1, 16, 16)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = eval(config["usage"], {"timm": timm}).eval()
    with torch.no_grad():
        assert torch.equal(model(images), encoder.features(images))
        assert torch.equal(load_encoder(out)[0].features(images), encoder.features(images))
    finetune = to_timm(encoder, num_classes=10, drop_path_rate=0.1)
    assert finetune(images).shape == (2, 10)


def test_attention_maps_of_a_swin_run_say_why_not(swin_run, tmp_path, capsys):
    assert main(["analyze", "attention", "--checkpoint", str(swin_run), "--output-dir", str(tmp_path)]) == 2
    assert "backbone is swin" in capsys.readouterr().err
