"""Generated images for smoke runs and tests."""

from __future__ import annotations

import torch

from nas.data.splits import Splits, split_tensors


def synthetic_images(
    n_samples: int,
    n_classes: int,
    image_size: int,
    noise: float,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Splits:
    """Generated one-channel images: a fixed random pattern per class plus Gaussian noise.

    For smoke runs and tests: learnable in an epoch, no files needed.
    """
    if n_samples < 3 * n_classes or n_classes < 2 or image_size < 1:
        raise ValueError(
            f"synthetic data needs n_classes >= 2, image_size >= 1 and at least 3 samples "
            f"per class, got n_samples={n_samples!r} n_classes={n_classes!r} "
            f"image_size={image_size!r}"
        )
    generator = torch.Generator().manual_seed(split_seed)
    patterns = torch.randn(n_classes, 1, image_size, image_size, generator=generator)
    labels = torch.arange(n_samples) % n_classes
    images = patterns[labels] + noise * torch.randn(
        n_samples, 1, image_size, image_size, generator=generator
    )
    return split_tensors(images, labels, val_fraction, test_fraction, split_seed)
