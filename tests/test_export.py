import json
import warnings

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from mimae.cli import main
from mimae.data import load_dataset
from mimae.export import export_timm, load_timm, read_weights, timm_model_args, to_timm
from mimae.models import ViTEncoder
from mimae.runs import load_encoder
from tests.conftest import train_tiny


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny MAE checkpoint (1-channel 16x16 Fashion-MNIST, 2 blocks), trained for a few steps."""
    return train_tiny(tmp_path_factory.mktemp("run"))


def test_the_suggested_create_model_line_rebuilds_our_encoder_exactly(pretrained, tmp_path, monkeypatch):
    out = tmp_path / "encoder.safetensors"
    assert main(["export", "--checkpoint", str(pretrained), "--format", "timm", "--output", str(out)]) == 0
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["model_args"] == {"img_size": 16, "patch_size": 4, "in_chans": 1, "embed_dim": 32, "depth": 2,
                                    "num_heads": 2, "mlp_ratio": 4.0}
    assert config["name"] == "vit_32w_2d_2h_patch4_16px_1ch"  # what the model is, not a registered ViT's name
    assert out.stat().st_mode & 0o777 == 0o644 and out.with_suffix(".json").stat().st_mode & 0o777 == 0o644
    encoder = load_encoder(pretrained)[0].eval()
    monkeypatch.chdir(tmp_path)  # the line names the file beside its JSON
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to timm's default mean/std or input size
        model = eval(config["usage"], {"timm": timm}).eval()
        data = timm.data.resolve_data_config({}, model=model)
    info = load_dataset("fashion-mnist")[2]
    assert data["input_size"] == (1, 16, 16)
    assert data["mean"] == pytest.approx(info.mean, abs=1e-6) and data["std"] == pytest.approx(info.std, abs=1e-6)
    images = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(images), encoder.features(images))
        assert torch.equal(load_timm(out)(images), encoder.features(images))


def test_a_model_of_a_registered_size_keeps_timms_name(tmp_path):
    from mimae.export import model_name
    args = {"img_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12, "num_heads": 12,
            "mlp_ratio": 4.0}
    assert model_name(args) == "vit_base_patch16_224"
    assert model_name({**args, "img_size": 32}) == "vit_768w_12d_12h_patch16_32px_3ch"


def test_rgb_encoder_loads_into_a_plain_vision_transformer(tmp_path):
    torch.manual_seed(0)
    encoder = ViTEncoder(32, 8, 3, 48, 3, 3).eval()
    path, _ = export_timm(encoder, tmp_path / "rgb.safetensors", (0.5,) * 3, (0.25,) * 3)
    model = VisionTransformer(**timm_model_args(encoder), num_classes=0).eval()
    model.load_state_dict(read_weights(path))  # strict: the layouts match key for key
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), encoder.features(images), atol=1e-5, rtol=0)


def test_finetuning_model_uses_mean_pool_and_a_fresh_fc_norm():
    torch.manual_seed(0)
    encoder = ViTEncoder(16, 4, 1, 32, 2, 2).eval()
    model = to_timm(encoder, num_classes=5, global_pool="avg", drop_path_rate=0.1).eval()
    images = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        tokens = model.forward_features(images)
        assert torch.allclose(model.fc_norm(tokens[:, 1:].mean(1)), model.forward_head(tokens, pre_logits=True))
        assert model(images).shape == (3, 5)
    assert model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)


def test_output_must_be_safetensors(tmp_path):
    with pytest.raises(ValueError, match="must end in .safetensors"):
        export_timm(ViTEncoder(16, 4, 1, 32, 1, 2), tmp_path / "x.pt", (0.5,), (0.5,))
