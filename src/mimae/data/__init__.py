"""Datasets (uint8 images fitted to size) and batched augmentation."""

from mimae.data.augment import BatchAugment, normalize
from mimae.data.datasets import train_test_sets
from mimae.data.sources import DataInfo, DataNotFoundError, load_dataset

__all__ = ["BatchAugment", "DataInfo", "DataNotFoundError", "load_dataset", "normalize", "train_test_sets"]
