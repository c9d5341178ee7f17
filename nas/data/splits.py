"""Train / validation / test splits in memory: the `Splits` every loader returns, how
samples are carved into them, normalised, augmented and moved to a device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from nas.checks import checked, within

if TYPE_CHECKING:
    from nas.data.preprocessing import Preprocessing

# Training-batch augmentations `Splits.augment` can name (see `augment_batch`).
AUGMENTATIONS = ("crop_flip",)
CROP_PADDING = 4


def check_augment(augment: str | None) -> None:
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
    preprocessing: Preprocessing | None = None  # how a raw image becomes an input; None:
    #   the images were not read from files (generated)

    def __post_init__(self) -> None:
        check_augment(self.augment)

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


def check_fractions(**fractions: float) -> None:
    """Each named fraction in (0, 1) and together below 1; ValueError naming `data.<name>`."""
    for name, fraction in fractions.items():
        checked(f"data.{name}", fraction, float, within(0, 1, "()"))
    if len(fractions) > 1 and sum(fractions.values()) >= 1:
        raise ValueError(
            f"{' + '.join(f'data.{name}' for name in fractions)} must be below 1, got "
            f"{' + '.join(repr(fraction) for fraction in fractions.values())}"
        )


def carve(n: int, fractions: Sequence[float], split_seed: int) -> list[torch.Tensor]:
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
    check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    train, val, test = carve(len(images), (val_fraction, test_fraction), split_seed)
    return Splits(
        train_x=images[train],
        train_y=labels[train],
        val_x=images[val],
        val_y=labels[val],
        test_x=images[test],
        test_y=labels[test],
        n_classes=int(labels.max()) + 1,
    )


def fold_splits(splits: Splits, folds: int, fold: int, split_seed: int) -> Splits:
    """Fold `fold` of `folds` of `splits`: the pool of its training and validation samples,
    shuffled once with `split_seed`, cut into `folds` parts (`sklearn`'s `KFold`); part
    `fold` is the validation split, the others the training split, the test split is
    `splits`' own. Tensors stay on their device."""
    pool_x = torch.cat([splits.train_x, splits.val_x])
    pool_y = torch.cat([splits.train_y, splits.val_y])
    if not 2 <= folds <= len(pool_x):
        raise ValueError(f"folds must be in [2, {len(pool_x)}] (the pool's size), got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds - 1}], got {fold}")
    from sklearn.model_selection import KFold  # seconds to import: only when folds are cut

    parts = KFold(n_splits=folds, shuffle=True, random_state=split_seed).split(range(len(pool_x)))
    train, val = (torch.as_tensor(part, device=pool_x.device) for part in list(parts)[fold])
    return replace(
        splits, train_x=pool_x[train], train_y=pool_y[train], val_x=pool_x[val], val_y=pool_y[val]
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


def normalised(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or [0, 1] float images as float32 with each channel's `mean` / `std` taken out."""
    images = pixels.to(torch.float32, copy=True)
    if pixels.dtype == torch.uint8:
        images = images.div_(255)
    shape = (1, -1, 1, 1)
    return images.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))
