import pytest
import torch
from timm.optim import create_optimizer_v2

from mimae.data import train_test_sets
from mimae.eval.finetune import finetune
from mimae.export import to_timm
from mimae.models import ViTEncoder
from tests.conftest import tiny_config


def test_layer_decay_scales_the_lr_from_head_to_patch_embedding():
    model = to_timm(ViTEncoder(16, 4, 1, 32, 2, 2), num_classes=3, global_pool="avg")
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    scales = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    assert scales[id(model.head.weight)] == pytest.approx(1.0)
    assert scales[id(model.blocks[1].mlp.fc1.weight)] == pytest.approx(0.5)
    assert scales[id(model.blocks[0].mlp.fc1.weight)] == pytest.approx(0.25)
    assert scales[id(model.patch_embed.proj.weight)] == pytest.approx(0.125)


def test_finetuning_learns_fashion_mnist_well_above_chance():
    # plain recipe (no mixup / RandAugment / erasing) so a few epochs show learning
    cfg = tiny_config(data__train_limit=512, data__test_limit=256, finetune__batch_size=32, finetune__warmup_epochs=1,
                      finetune__base_lr=4e-2, finetune__layer_decay=1.0, finetune__mixup=0.0, finetune__cutmix=0.0,
                      finetune__rand_augment="", finetune__reprob=0.0, finetune__crop_scale_min=0.5,
                      finetune__drop_path=0.0)
    train, test, info = train_test_sets(cfg.data)
    torch.manual_seed(0)
    _, result = finetune(ViTEncoder(16, 4, 1, 32, 2, 2), train, test, info, cfg, torch.device("cpu"), epochs=6,
                         progress=False)
    assert result["steps"] == 6 * 16 and result["last_loss"] < result["first_loss"]
    assert result["accuracy"] > 35.0  # chance is 10%; a random-init 2-block ViT, 6 short epochs


def test_full_recipe_runs_with_mixup_randaugment_and_erasing():
    cfg = tiny_config(data__train_limit=64, data__test_limit=32, finetune__batch_size=16)
    train, test, info = train_test_sets(cfg.data)
    _, result = finetune(ViTEncoder(16, 4, 1, 32, 2, 2), train, test, info, cfg, torch.device("cpu"), epochs=1,
                         progress=False)
    assert result["steps"] == 4 and result["mixup"] == 0.8 and result["rand_augment"].startswith("rand-m9")
    assert 0.0 <= result["accuracy"] <= 100.0 and result["last_loss"] == result["last_loss"]  # finite
