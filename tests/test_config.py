import pytest

from mimae.config import ConfigError, config_from_dict, load_config, parse_overrides


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = load_config()
    assert cfg.method == "mae" and cfg.mask.ratio == 0.75
    again = config_from_dict(cfg.to_dict())
    assert again == cfg


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  base_lr: 0.002\nmodel:\n  size: tiny\n")
    cfg = load_config(path, parse_overrides(["optim.base_lr=3e-3", "mask.ratio=0.5", "data.train_limit=none"]))
    assert cfg.optim.base_lr == pytest.approx(3e-3)
    assert cfg.model.size == "tiny" and cfg.model.dims()["embed_dim"] == 192
    assert cfg.mask.ratio == 0.5 and cfg.data.train_limit is None


@pytest.mark.parametrize("override, words", [
    ("mask.ratio=1.5", ["mask.ratio", "maximum"]),
    ("optim.batch_size=0", ["optim.batch_size", "minimum"]),
    ("model.size=huge", ["model.size", "tiny"]),
    ("optim.lr=1", ["optim.lr", "known keys"]),
    ("optim.batch_size=abc", ["optim.batch_size", "integer"]),
    ("mask.unit=6", ["mask.unit", "multiple"]),
    ("model.num_heads=5", ["embed_dim", "num_heads"]),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=parse_overrides([override]))
    for word in words:
        assert word in str(err.value)


def test_unknown_method_fails_at_load():
    with pytest.raises(ConfigError, match="method"):
        load_config(overrides={"method": "nope"})
