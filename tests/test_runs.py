"""The one load path (mimae.runs): run folders, timm safetensors exports and official MAE release checkpoints."""

import json
import pickle

import pytest
import torch

from mimae.checkpoint import CheckpointError
from mimae.cli import main
from mimae.engine import Trainer
from mimae.export import export_checkpoint
from mimae.models import ViTEncoder
from mimae.runs import load_encoder, read
from tests.conftest import tiny_config, train_tiny


def official_mae_file(path, in_chans=3, width=32, depth=2, patch=4, image=16):
    """A checkpoint in the layout of MAE's release (``mae_pretrain_vit_base.pth``): {"model": encoder weights in
    timm's names}, here with a decoder tensor and the mask token as the visualization checkpoints carry them."""
    torch.manual_seed(1)
    encoder = ViTEncoder(image, patch, in_chans, width, depth, max(1, width // 64))
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    state["mask_token"] = torch.zeros(1, 1, width)
    state["decoder_embed.weight"] = torch.zeros(16, width)
    torch.save({"model": state}, path)
    return encoder.state_dict()


def test_official_mae_layout_reads_as_an_encoder_with_its_architecture(tmp_path):
    expected = official_mae_file(tmp_path / "mae_pretrain_vit_tiny.pth", width=128, depth=3)
    source = read(tmp_path / "mae_pretrain_vit_tiny.pth")
    assert source.kind == "mae" and source.in_chans == 3 and source.checkpoint is None
    dims = source.cfg.model.dims()
    assert (dims["embed_dim"], dims["depth"], dims["num_heads"]) == (128, 3, 2)
    assert (source.cfg.model.patch_size, source.cfg.data.image_size, source.cfg.model.mlp_ratio) == (4, 16, 4.0)
    assert source.encoder_state.keys() == expected.keys()  # decoder and mask token left out
    encoder = load_encoder(tmp_path / "mae_pretrain_vit_tiny.pth")[0]
    for key, value in expected.items():
        torch.testing.assert_close(encoder.state_dict()[key], value)


def test_eval_linear_on_an_official_mae_checkpoint(tmp_path, capsys):
    official_mae_file(tmp_path / "mae.pth")  # RGB weights; Fashion-MNIST's gray channel is repeated
    args = ["eval", "linear", "--checkpoint", str(tmp_path / "mae.pth"), "linear.epochs=50",
            "linear.warmup_epochs=0", "linear.batch_size=64",
            "linear.train_limit=256", "linear.test_limit=128", "train.precision=fp32"]
    assert main(args) == 0
    result = json.loads((tmp_path / "eval_linear.json").read_text())
    assert result["weights"] == "mae" and result["train_images"] == 256 and result["test_images"] == 128
    assert result["accuracy"] > 20.0  # 10 classes; a random ViT's features already carry signal
    assert "accuracy:" in capsys.readouterr().out


def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"model": Payload()}, fh, protocol=2)
    assert main(["eval", "knn", "--checkpoint", str(tmp_path / "evil.pth")]) == 2
    captured = capsys.readouterr()
    assert "this ran" not in captured.out
    err = captured.err.strip()
    assert err.startswith("mimae: error:") and "evil.pth" in err and len(err.splitlines()) == 1
    (tmp_path / "empty.pt").write_bytes(b"")
    assert main(["eval", "knn", "--checkpoint", str(tmp_path / "empty.pt")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_timm_export_reads_back_with_the_runs_config(tmp_path):
    run = train_tiny(tmp_path / "run")
    weights, _ = export_checkpoint(run, tmp_path / "encoder.safetensors")
    exported, original = read(weights), read(run)
    assert exported.kind == "timm" and exported.cfg.to_dict() == original.cfg.to_dict()
    for key, value in original.encoder_state.items():
        torch.testing.assert_close(exported.encoder_state[key], value)


def test_init_from_starts_pretraining_from_published_weights(tmp_path):
    expected = official_mae_file(tmp_path / "mae.pth", in_chans=1, width=32)
    cfg = tiny_config(train__init_from=str(tmp_path / "mae.pth"), data__train_limit=32)
    trainer = Trainer(cfg, tmp_path / "run")
    for key, value in expected.items():
        torch.testing.assert_close(trainer.objective.encoder.state_dict()[key], value)
    wrong = tiny_config(train__init_from=str(tmp_path / "mae.pth"), data__train_limit=32, model__embed_dim=64)
    with pytest.raises(CheckpointError, match="do not fit this encoder"):
        Trainer(wrong, tmp_path / "run2")


def test_a_run_from_before_the_dims_were_saved_loads_as_it_trained(tmp_path):
    """Older runs saved the six dims as null beside the size's name, and mini's decoder was 64 wide before 128: the
    migration takes the dims from the size and the decoder's width from the weights."""
    from mimae.checkpoint import atomic_save
    from mimae.runs import config_from_dict, load_objective
    mini = {f"model__{k}": v for k, v in zip(("embed_dim", "depth", "num_heads", "decoder_depth", "decoder_heads"),
                                             (128, 6, 4, 2, 2))}  # the tiny test config's dims replaced by mini's
    train_tiny(tmp_path, model__size="mini", model__decoder_dim=64, data__train_limit=16, optim__batch_size=16, **mini)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    for key in ("embed_dim", "depth", "num_heads", "decoder_dim", "decoder_depth", "decoder_heads"):
        state["config"]["model"][key] = None
    atomic_save(state, tmp_path / "checkpoint.pt")
    objective, source = load_objective(tmp_path)
    assert source.cfg.model.dims() == {"embed_dim": 128, "depth": 6, "num_heads": 4, "decoder_dim": 64,
                                       "decoder_depth": 2, "decoder_heads": 2}
    assert objective.decoder.embed.out_features == 64
    assert config_from_dict(state["config"]).model.decoder_dim == 128  # without the weights: the size's width


def test_an_archived_config_yaml_of_an_older_run_reads_as_it_trained(tmp_path):
    """The committed archives hold config.yaml files with null model dims, mimae.complete_masking and
    simmim.mi_views: the pages are redrawn from them."""
    import yaml

    from mimae.runs import saved_config
    old = {"method": "mimae", "model": {"size": "mini", "embed_dim": None, "depth": None, "decoder_dim": None},
           "mimae": {"views": 4, "complete_masking": True}, "simmim": {"mi_views": 2}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    cfg = saved_config(tmp_path / "config.yaml")
    assert (cfg.model.embed_dim, cfg.model.depth, cfg.model.decoder_dim, cfg.mimae.views) == (128, 6, 128, "complete")
