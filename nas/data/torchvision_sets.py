"""torchvision's datasets (MNIST, Fashion-MNIST, CIFAR-10/100) read from a local folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nas.checks import checked, one_of
from nas.data.preprocessing import Preprocessing
from nas.data.splits import Splits, carve, check_augment, check_fractions, normalised
from nas.data.statistics import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
)


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
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Raw uint8 pixels (N, C, H, W), int64 labels and the class names of one torchvision
    split, read by torchvision's own readers."""
    try:
        dataset = dataset_class(str(root), train=train, download=download)
    except Exception as error:  # torchvision: RuntimeError (not found, checksum), URLError, ...
        raise ValueError(_not_loaded(dataset_class, root, download, error)) from error
    pixels = torch.as_tensor(dataset.data)  # MNIST: N, H, W (torch); CIFAR: N, H, W, C (numpy)
    pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return pixels.contiguous(), labels, list(dataset.classes)


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
    spec = TORCHVISION_DATASETS[checked("data.name", name, str, one_of(*TORCHVISION_DATASETS))]
    checked("data.download", download, bool)
    check_fractions(val_fraction=val_fraction)
    check_augment(augment)
    if root is None:
        raise ValueError("data.root: no folder given; set data.root=/path/to/datasets")
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, spec.dataset)
    folder = Path(root).expanduser()
    pixels, labels, classes = _torchvision_split(dataset_class, folder, True, download)
    test_pixels, test_labels, _ = _torchvision_split(dataset_class, folder, False, False)
    train, val = carve(len(pixels), (val_fraction,), split_seed)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"data.val_fraction={val_fraction!r} leaves no training or no validation image "
            f"of the {len(pixels)} in the {spec.dataset} training set"
        )
    # Cut the uint8 pixels first: the float copy is made once, split by split.
    return Splits(
        train_x=normalised(pixels[train], spec.mean, spec.std),
        train_y=labels[train],
        val_x=normalised(pixels[val], spec.mean, spec.std),
        val_y=labels[val],
        test_x=normalised(test_pixels, spec.mean, spec.std),
        test_y=test_labels,
        n_classes=len(classes),
        augment=augment,
        preprocessing=Preprocessing.of(
            pixels.shape[1], tuple(pixels.shape[2:]), spec.mean, spec.std, classes
        ),
    )
