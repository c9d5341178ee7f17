"""The user's own images in torchvision's ImageFolder layout: one folder (`data=folder`)
or train/val/test folders (`data=imagefolder`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from nas.checks import BadSetting, Bound, above, at_least, checked
from nas.data.preprocessing import Preprocessing
from nas.data.splits import (
    Splits,
    carve,
    check_augment,
    check_fractions,
    normalised,
    split_tensors,
)

# What `data.channels` may be.
CHANNELS = Bound("1 (grayscale) or 3 (RGB)", lambda channels: channels in (1, 3), whole=True)
FOLDER_LAYOUT = "expected root/<class name>/<image files>"
SPLIT_FOLDER_LAYOUT = (
    "expected root/train/<class name>/<image files>, optionally root/val/ and root/test/ alike"
)


def _check_image_settings(image_size: int, channels: int) -> None:
    checked("data.image_size", image_size, int, at_least(1))
    checked("data.channels", channels, int, CHANNELS)


def _image_dataset(folder: Path, image_size: int, channels: int, layout: str):
    """torchvision's ImageFolder over `folder`, every image converted to `channels`, resized to
    `image_size` square and made a [0, 1] tensor; ValueError when a class folder is empty or
    there is none."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    # The default loader opens every image as RGB; 1 channel needs an explicit grayscale step.
    steps = [transforms.Grayscale(1)] if channels == 1 else []
    transform = transforms.Compose(
        [*steps, transforms.Resize((image_size, image_size)), transforms.ToTensor()]
    )
    try:
        dataset = ImageFolder(str(folder), transform=transform, allow_empty=True)
    except FileNotFoundError as error:  # torchvision: no class sub-folder
        raise ValueError(f"data.root: no class sub-folders in '{folder}'; {layout}") from error
    counts = torch.bincount(
        torch.tensor(dataset.targets, dtype=torch.int64), minlength=len(dataset.classes)
    )
    empty = [
        name for name, count in zip(dataset.classes, counts.tolist(), strict=True) if count == 0
    ]
    if empty:
        raise ValueError(
            f"data.root: no images in class folder(s) {', '.join(map(repr, empty))} of '{folder}'; "
            f"{layout} ({', '.join(dataset.extensions)})"
        )
    return dataset


def _read_images(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of an `_image_dataset`, stacked, and its int64 labels."""
    images = []
    for index, (path, _) in enumerate(dataset.samples):
        try:
            images.append(dataset[index][0])
        except OSError as error:  # PIL: not an image, truncated, unreadable
            raise ValueError(
                f"data.root: cannot read image '{path}' ({type(error).__name__})"
            ) from error
    return torch.stack(images), torch.tensor(dataset.targets, dtype=torch.int64)


def _normalised_splits(
    splits: Splits,
    dataset,
    image_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Splits:
    """`splits` with every image normalised per channel by `mean` / `std`; either one left
    None is the training split's own statistic (a constant channel's std counts as 1e-6,
    so the channel becomes 0). Its `preprocessing` says so, with the size of the images
    and the class names of `dataset` (an `_image_dataset`)."""
    if mean is None:
        mean = splits.train_x.mean(dim=(0, 2, 3)).tolist()
    if std is None:
        std = splits.train_x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    channels = splits.train_x.shape[1]
    return replace(
        splits,
        train_x=normalised(splits.train_x, mean, std),
        val_x=normalised(splits.val_x, mean, std),
        test_x=normalised(splits.test_x, mean, std),
        preprocessing=Preprocessing.of(channels, image_size, mean, std, dataset.classes),
    )


def _only_one_class(dataset, folder: Path, layout: str) -> ValueError:
    return ValueError(
        f"data.root: only one class folder ({dataset.classes[0]!r}) in '{folder}'; "
        f"need at least 2 classes, {layout}"
    )


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
    memory, then split once by `split_seed` (`val_fraction` for validation, `test_fraction`
    for test, the rest for training). Each channel of every split is normalised with the
    mean and std of the training split alone, so the training images come out at mean 0 /
    std 1 and the validation and test images do not shape the scale they are judged on.
    """
    if root is None:
        raise ValueError("data.root: no folder given; set data.root=/path/to/images")
    _check_image_settings(image_size, channels)
    folder = Path(root).expanduser()
    if not folder.exists():
        raise ValueError(f"data.root: folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ValueError(f"data.root: '{folder}' is not a folder; {FOLDER_LAYOUT}")

    dataset = _image_dataset(folder, image_size, channels, FOLDER_LAYOUT)
    if len(dataset.classes) < 2:
        raise _only_one_class(dataset, folder, FOLDER_LAYOUT)
    pixels, labels = _read_images(dataset)
    splits = split_tensors(pixels, labels, val_fraction, test_fraction, split_seed)
    if min(len(splits.train_x), len(splits.val_x), len(splits.test_x)) == 0:
        raise ValueError(
            f"data.root: {len(labels)} images are too few to split with "
            f"data.val_fraction={val_fraction!r} and data.test_fraction={test_fraction!r}"
        )
    return replace(_normalised_splits(splits, dataset, image_size), n_classes=len(dataset.classes))


def _channel_stat(value, channels: int, name: str) -> list[float] | None:
    """`data.mean` / `data.std` from the config: null, or one number for every channel, or one
    number per channel."""
    if value is None:
        return None
    items = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    try:
        checked(f"data.{name}", items, tuple[float, ...], *([above(0)] if name == "std" else []))
    except BadSetting:
        items = []
    values = [float(v) for v in items]
    if len(values) not in (1, channels):
        positive = " positive" if name == "std" else ""
        raise ValueError(
            f"data.{name} must be null (computed from the training images) or {channels}"
            f"{positive} number(s), one per channel, got {value!r}"
        )
    return values * channels if len(values) == 1 else values


def _class_mismatch(folder: Path, classes: list[str], train: Path, train_classes: list[str]):
    missing = [name for name in train_classes if name not in classes]
    extra = [name for name in classes if name not in train_classes]
    differences = [
        f"{what} {', '.join(map(repr, names))}"
        for what, names in (("missing", missing), ("extra", extra))
        if names
    ]
    return ValueError(
        f"data.root: the class folders of '{folder}' differ from those of '{train}': "
        f"{'; '.join(differences)}"
    )


def load_imagefolder(
    root: str | None,
    image_size: int,
    channels: int,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str | None = None,
) -> Splits:
    """The user's images, split by folder: `root/train/<class name>/<images>` and optionally
    `root/val/` and `root/test/` with the same class folders (torchvision's ImageFolder layout
    under each).

    Classes are the sub-folder names of train/ in sorted order; val/ and test/ must have the
    same ones. A split without its folder is carved out of train/, once, by `split_seed`:
    `val_fraction` of the training images for validation when val/ is absent, `test_fraction`
    for test when test/ is absent (the validation set picks the architectures, so it never
    doubles as the test set). Every image is converted to `channels` (1 grayscale, 3 RGB),
    resized to `image_size` square and loaded into memory, then normalised per channel with
    `mean` / `std` (on the [0, 1] pixel scale, one number or one per channel; null: the
    statistics of the training split's images). `augment` names the augmentation of training
    batches (`crop_flip`: random crop and flip, see `augment_batch`).
    """
    if root is None:
        raise ValueError("data.root: no folder given; set data.root=/path/to/images")
    _check_image_settings(image_size, channels)
    mean, std = _channel_stat(mean, channels, "mean"), _channel_stat(std, channels, "std")
    check_augment(augment)
    folder = Path(root).expanduser()
    if not folder.exists():
        raise ValueError(f"data.root: folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ValueError(f"data.root: '{folder}' is not a folder; {SPLIT_FOLDER_LAYOUT}")
    train_folder = folder / "train"
    if not train_folder.is_dir():
        raise ValueError(
            f"data.root: no train/ folder in '{folder}'; {SPLIT_FOLDER_LAYOUT} "
            f"(images in root/<class name>/ directly: use data=folder)"
        )
    for part in ("val", "test"):
        if (folder / part).exists() and not (folder / part).is_dir():
            raise ValueError(f"data.root: '{folder / part}' is not a folder; {SPLIT_FOLDER_LAYOUT}")
    carved = {
        name: fraction
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction))
        if not (folder / name.removesuffix("_fraction")).is_dir()
    }
    check_fractions(**carved)

    train_set = _image_dataset(train_folder, image_size, channels, SPLIT_FOLDER_LAYOUT)
    if len(train_set.classes) < 2:
        raise _only_one_class(train_set, train_folder, SPLIT_FOLDER_LAYOUT)
    given = {}
    for part in ("val", "test"):
        if (folder / part).is_dir():
            dataset = _image_dataset(folder / part, image_size, channels, SPLIT_FOLDER_LAYOUT)
            if dataset.classes != train_set.classes:
                raise _class_mismatch(
                    folder / part, dataset.classes, train_folder, train_set.classes
                )
            given[part] = dataset

    pixels, labels = _read_images(train_set)
    train, *parts = carve(len(pixels), tuple(carved.values()), split_seed)
    if min(len(part) for part in (train, *parts)) == 0:
        settings = " and ".join(f"data.{name}={fraction!r}" for name, fraction in carved.items())
        raise ValueError(
            f"data.root: {len(pixels)} images in '{train_folder}' are too few to carve "
            f"validation / test images out of with {settings}"
        )
    split = dict(zip((name.removesuffix("_fraction") for name in carved), parts, strict=True))
    data = {"train": (pixels[train], labels[train])}
    for part in ("val", "test"):
        data[part] = (
            _read_images(given[part])
            if part in given
            else (pixels[split[part]], labels[split[part]])
        )
    splits = Splits(
        train_x=data["train"][0],
        train_y=data["train"][1],
        val_x=data["val"][0],
        val_y=data["val"][1],
        test_x=data["test"][0],
        test_y=data["test"][1],
        n_classes=len(train_set.classes),
        augment=augment,
    )
    return _normalised_splits(splits, train_set, image_size, mean, std)
