"""Datasets (uint8 images fitted to size) and batched augmentation."""

from mimae.data.augment import BatchAugment, normalize
from mimae.data.datasets import first, pretraining_set, skipped_images, train_test_sets
from mimae.data.sources import DataInfo, DataNotFoundError, image_count, load_dataset, register_dataset

__all__ = ["BatchAugment", "DataInfo", "DataNotFoundError", "first", "image_count", "load_dataset", "normalize",
           "pretraining_set", "register_dataset", "skipped_images", "train_test_sets"]
