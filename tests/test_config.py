import json

import pytest

from mimae.config import Config, ConfigError, load_config, parse_overrides, save_config
from mimae.runs import config_from_dict


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


@pytest.mark.parametrize("method, ratio, unit", [("mae", 0.75, 4), ("mimae", 0.75, 4), ("simmim", 0.5, 8),
                                                 ("mi-simmim", 0.5, 8), ("mr-simclr", 0.2, 4), ("simclr", 0.0, 4)])
def test_one_mask_ratio_and_unit_resolved_once_from_the_methods_defaults(tmp_path, method, ratio, unit):
    cfg = load_config(overrides={"method": method})
    assert (cfg.mask.ratio, cfg.mask.unit) == (ratio, unit)  # patch 4: simmim's unit is twice the patch
    save_config(cfg, tmp_path / "config.yaml")
    assert "ratio: null" not in (tmp_path / "config.yaml").read_text()
    assert config_from_dict(cfg.to_dict()) == cfg
    assert load_config(overrides={"method": method, "mask.ratio": 0.4}).mask.ratio == 0.4


def test_a_reconstruction_method_must_hide_something():
    for method in ("mae", "mimae", "umae", "simmim"):
        with pytest.raises(ConfigError, match="mask.ratio=0.0 hides none"):
            load_config(overrides={"method": method, "mask.ratio": 0.0})
    assert load_config(overrides={"method": "mr-barlow", "mask.ratio": 0.0}).mask.ratio == 0.0  # paper 002 r = 0


@pytest.mark.parametrize("key", ["simmim.mask_ratio", "simmim.unit", "mrcl.mask_ratio"])
def test_the_old_per_method_mask_keys_name_their_replacement(key):
    with pytest.raises(ConfigError, match=f"{key} is now mask"):
        load_config(overrides={key: 0.5})


def test_an_older_runs_config_is_migrated_to_the_shared_mask_keys():
    old = Config().to_dict()
    old["mask"] = {"ratio": 0.75, "unit": None}
    old["simmim"] = {"mask_ratio": 0.6, "unit": 8, "mi_views": 2}
    old["mrcl"] = {**old["mrcl"], "mask_ratio": None}
    simmim = config_from_dict({**old, "method": "simmim"})
    assert (simmim.mask.ratio, simmim.mask.unit) == (0.6, 8)
    mae = config_from_dict({**old, "method": "mae"})
    assert (mae.mask.ratio, mae.mask.unit) == (0.75, 4)
    assert config_from_dict({**old, "method": "mr-byol"}).mask.ratio == 0.2


@pytest.mark.parametrize("method", ["mae", "simmim", "mr-simclr"])
def test_a_saved_config_keeps_its_own_mask_ratio_and_unit(method):
    cfg = load_config(overrides={"method": method, "mask.ratio": 0.4, "mask.unit": 8})
    saved = config_from_dict(cfg.to_dict())
    assert (saved.mask.ratio, saved.mask.unit) == (0.4, 8)
    old = {k: v for k, v in cfg.to_dict().items() if k != "mask"}  # a config from before the mask section
    assert config_from_dict(old).mask.ratio == load_config(overrides={"method": method}).mask.ratio


def test_a_config_built_in_a_fresh_interpreter_has_every_section_method_and_dataset():
    """Registration does not depend on what was imported before: the mimae.sections entry points are loaded when
    the first config is built (here the evaluation sections and the hierarchical dataset are not yet imported)."""
    import subprocess
    import sys

    from mimae.config import Config, methods
    code = ("import sys, json\n"
            "import mimae.config as c\n"
            "absent = [m for m in ('mimae.eval.config', 'mimae.hierarchy.dataset') if m not in sys.modules]\n"
            "cfg = c.load_config(overrides={'data.dataset': 'hierarchical', 'method': 'mi-simmim'})\n"
            "print(json.dumps([absent, sorted(cfg.sections), sorted(c.methods())]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    absent, names, fresh_methods = json.loads(out)
    assert absent == ["mimae.eval.config", "mimae.hierarchy.dataset"]
    assert names == sorted(Config().sections) and fresh_methods == sorted(methods())
    assert {"data", "model", "eval", "linear", "finetune", "hierarchy", "mae", "mimae", "mrcl"} <= set(names)


def test_one_key_for_the_views_per_image():
    from mimae.objectives.base import samples_per_image
    views = {method: samples_per_image(load_config(overrides={"method": method})) for method in ("mimae", "mi-simmim")}
    assert views == {"mimae": 4, "mi-simmim": 2}  # auto: the method's own
    assert samples_per_image(load_config(overrides={"method": "mi-simmim", "mimae.views": 3})) == 3
    complete = load_config(overrides={"method": "mimae", "mask.ratio": 0.9, "mimae.views": "complete"})
    assert samples_per_image(complete) == 10
    with pytest.raises(ConfigError, match="mimae.views='1' is not a number >= 2, auto or complete"):
        load_config(overrides={"method": "mimae", "mimae.views": 1})
    for old, new in (("mimae.complete_masking", "mimae.views=complete"), ("simmim.mi_views", "mimae.views")):
        with pytest.raises(ConfigError, match=f"{old} is now {new}"):
            load_config(overrides={old: 2})


def test_an_older_runs_view_keys_are_migrated():
    old = Config().to_dict()
    old["mimae"] = {**old["mimae"], "views": 4, "complete_masking": True}
    assert config_from_dict({**old, "method": "mimae"}).mimae.views == "complete"
    old["mimae"] = {**old["mimae"], "complete_masking": False}
    old["simmim"] = {"mi_views": 3}
    assert config_from_dict({**old, "method": "mi-simmim"}).mimae.views == "3"
    assert config_from_dict({**old, "method": "mimae"}).mimae.views == "4"
