import json

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from mimae.cli import main
from mimae.export import export_timm, load_timm, read_weights, timm_model_args, to_timm
from mimae.models import ViTEncoder
from mimae.runs import load_encoder
from tests.conftest import train_tiny


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny MAE checkpoint (1-channel 16x16 Fashion-MNIST, 2 blocks), trained for a few steps."""
    return train_tiny(tmp_path_factory.mktemp("run"))


def test_timm_registry_model_gives_our_features(pretrained, tmp_path):
    out = tmp_path / "encoder.safetensors"
    assert main(["export", "--checkpoint", str(pretrained), "--format", "timm", "--output", str(out)]) == 0
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["model_args"] == {"img_size": 16, "patch_size": 4, "in_chans": 1, "embed_dim": 32, "depth": 2,
                                    "num_heads": 2, "mlp_ratio": 4.0}
    encoder = load_encoder(pretrained)[0]
    model = timm.create_model(config["architecture"], pretrained=True, num_classes=0,
                              pretrained_cfg_overlay=dict(file=str(out)), **config["model_args"]).eval()
    images = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(images), encoder.features(images), atol=1e-5, rtol=0)
        torch.testing.assert_close(load_timm(out)(images), encoder.features(images), atol=1e-5, rtol=0)


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
