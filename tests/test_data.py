import numpy as np
import pytest
import torch

from mimae.data import BatchAugment, DataNotFoundError, load_dataset, normalize, train_test_sets
from mimae.data.augment import random_crop_boxes, resized_crop
from mimae.data.config import DataConfig
from mimae.data.sources import DataInfo, load_fashion_mnist


def test_fashion_mnist_is_found_and_padded():
    train, test, info = train_test_sets(DataConfig(train_limit=100, test_limit=50))
    assert len(train) == 100 and len(test) == 50 and info.channels == 1 and info.num_classes == 10
    image, label = train[0]
    assert image.shape == (1, 32, 32) and image.dtype == torch.uint8 and 0 <= label < 10
    assert image[:, :2].sum() == 0 and image[:, :, :2].sum() == 0  # 2-pixel zero border around 28x28
    full_train, full_test, _ = load_dataset("fashion-mnist")
    assert len(full_train) == 60000 and len(full_test) == 10000


def test_missing_data_error_names_the_places(tmp_path, monkeypatch):
    import mimae.data.sources as src
    monkeypatch.setattr(src, "SYSTEM_FASHION_MNIST", tmp_path / "none")
    monkeypatch.setattr(src, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv("MIMAE_DATA", str(tmp_path / "env"))
    monkeypatch.setattr("torchvision.datasets.FashionMNIST", None)  # no download here
    with pytest.raises(DataNotFoundError) as err:
        load_fashion_mnist()
    text = str(err.value)
    assert "env" in text and "none" in text and "apt-get install dataset-fashion-mnist" in text
    with pytest.raises(DataNotFoundError, match="data.data_dir=.*explicit holds no Fashion-MNIST"):
        load_fashion_mnist(str(tmp_path / "explicit"))  # a folder given explicitly is never silently replaced


def test_imagefolder_rgb_and_a_broken_file(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / "gray.png")
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"not a png")
    train, test, info = train_test_sets(DataConfig(dataset="imagefolder", data_dir=str(tmp_path)))
    assert info.channels == 3 and info.num_classes == 2
    with pytest.warns(UserWarning, match="skipping .*broken.png"):
        shapes = {train[i][0].shape for i in range(len(train))}
    assert shapes == {(3, 32, 32)}


def test_batch_augment_shapes_determinism_and_ranges():
    info = DataInfo("x", 1, 10, (0.5,), (0.5,))
    images = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    aug = BatchAugment("mae", info, 32)
    a = aug(images, torch.Generator().manual_seed(0))
    b = aug(images, torch.Generator().manual_seed(0))
    assert a.shape == (8, 1, 32, 32) and torch.equal(a, b)
    assert a.min() >= -1.0 - 1e-5 and a.max() <= 1.0 + 1e-5
    two = BatchAugment("simclr", DataInfo("x", 3, 10, (0.5,) * 3, (0.5,) * 3), 16, crops=2)
    out = two(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert out.shape == (4, 2, 3, 16, 16) and not torch.equal(out[:, 0], out[:, 1])


def test_full_box_crop_is_identity_and_boxes_respect_scale():
    x = torch.rand(2, 3, 16, 16)
    full = torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2)
    torch.testing.assert_close(resized_crop(x, full, 16), x, atol=1e-5, rtol=0)
    boxes = random_crop_boxes(1000, 32, 32, (0.2, 1.0), generator=torch.Generator().manual_seed(0))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 1024
    assert area.min() >= 0.1 and area.max() <= 1.0 + 1e-6 and 0.5 < area.mean() < 0.65
    assert boxes[:, :2].min() >= 0 and boxes[:, 2:].max() <= 32 + 1e-4


def test_normalize():
    info = DataInfo("x", 1, 10, (0.5,), (0.25,))
    out = normalize(torch.tensor([[[[0, 255]]]], dtype=torch.uint8), info)
    torch.testing.assert_close(out, torch.tensor([[[[-2.0, 2.0]]]]))


def photo_folder(root, count: int = 8, size: tuple[int, int] = (96, 128)) -> None:
    """train/ and val/ of two classes of smooth random PNGs of ``size`` (height, width)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(count):
            folder = root / split / f"c{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            coarse = Image.fromarray(rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8))
            coarse.resize(size[::-1], Image.BICUBIC).save(folder / f"{i}.png")


def test_pretraining_crops_of_files_come_from_the_image_at_its_source_resolution(tmp_path):
    from torchvision.transforms.v2 import functional as F

    from mimae.data import pretraining_set
    from mimae.data.datasets import SourceCrops
    photo_folder(tmp_path)
    cfg = DataConfig(dataset="imagefolder", data_dir=str(tmp_path), image_size=16, crop_scale_min=0.2)
    crops, info, cropped = pretraining_set(cfg, "mae", 1, seed=3)
    assert isinstance(crops, SourceCrops) and cropped and info.channels == 3
    original = crops.base[5][0]
    assert original.shape == (3, 96, 128)  # decoded as it is, not fitted to 16 px first
    x1, y1, x2, y2 = crops.boxes(5, 96, 128)[0].tolist()
    assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
    top, left = round(y1), round(x1)
    expected = F.resized_crop(original, top, left, round(y2) - top, round(x2) - left, [16, 16], antialias=True)
    first_draw = crops[5][0]
    assert first_draw.dtype == torch.uint8 and torch.equal(first_draw, expected)
    assert torch.equal(crops[5][0], first_draw)  # seeded by (seed, epoch, image): the same again
    crops.set_epoch(1)
    assert not torch.equal(crops[5][0], first_draw)  # a new epoch, a new crop
    area = torch.stack([(b[2] - b[0]) * (b[3] - b[1]) for b in (crops.boxes(i, 96, 128)[0] for i in range(400))])
    assert area.min() >= 0.2 * 96 * 128 * 0.95 and area.max() <= 96 * 128  # scale range, clipped to the image
    two, _, _ = pretraining_set(cfg, "simclr", 2, seed=3)
    assert two[0][0].shape == (2, 3, 16, 16)
    memory, _, cropped = pretraining_set(DataConfig(image_size=32), "mae", 1, seed=0)
    assert not cropped and memory[0][0].shape == (1, 32, 32)  # Fashion-MNIST is cropped on the device


def test_source_crops_do_not_depend_on_the_number_of_loader_workers(tmp_path):
    from mimae.data import pretraining_set
    from mimae.data.loader import training_loader
    photo_folder(tmp_path)
    cfg = DataConfig(dataset="imagefolder", data_dir=str(tmp_path), image_size=16)
    dataset, _, _ = pretraining_set(cfg, "mae", 1, seed=0)
    dataset.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        loader = training_loader(dataset, 4, torch.utils.data.SequentialSampler(dataset), workers, False)
        batches[workers] = torch.cat([images for images, _ in loader])
    assert torch.equal(batches[0], batches[2])


def test_batch_augment_after_source_crops_only_flips_and_standardizes():
    info = DataInfo("x", 3, 10, (0.5,) * 3, (0.5,) * 3)
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    out = BatchAugment("mae", info, 16, cropped=True)(images, torch.Generator().manual_seed(0))
    plain = normalize(images, info)
    for x, y in zip(out, plain):
        assert torch.allclose(x, y) or torch.allclose(x, y.flip(-1))
