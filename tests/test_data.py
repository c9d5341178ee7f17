from __future__ import annotations

import hashlib
import inspect
import math
import pickle
import shutil
from dataclasses import replace
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets
from hydra.utils import instantiate
from PIL import Image
from torch import nn

import nas.data.splits
from nas.data import (
    TORCHVISION_DATASETS,
    augment_batch,
    load_image_folder,
    load_imagefolder,
    load_mnist5k,
    load_torchvision,
    split_tensors,
    splits_to,
    synthetic_images,
)
from nas.data.splits import carve
from nas.data.splits import normalised as _normalised
from nas.data.statistics import CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD
from nas.data.torchvision_sets import _not_loaded
from nas.trial.train import train_epoch
from tests.conftest import conf_defaults


def test_split_is_disjoint_complete_and_fixed_by_its_seed():
    images = torch.arange(100, dtype=torch.float32).reshape(100, 1, 1, 1)
    labels = torch.arange(100) % 5
    first = split_tensors(images, labels, 0.2, 0.1, split_seed=7)
    again = split_tensors(images, labels, 0.2, 0.1, split_seed=7)
    other = split_tensors(images, labels, 0.2, 0.1, split_seed=8)
    parts = [
        set(first.train_x.flatten().tolist()),
        set(first.val_x.flatten().tolist()),
        set(first.test_x.flatten().tolist()),
    ]
    assert [len(p) for p in parts] == [70, 20, 10]
    assert set().union(*parts) == set(range(100))
    assert torch.equal(first.val_x, again.val_x)
    assert not torch.equal(first.val_x, other.val_x)
    assert torch.equal(first.train_y, (first.train_x.flatten().long() % 5))


@pytest.mark.parametrize("val, test", [(0.0, 0.1), (0.5, 0.5), (1.2, 0.1)])
def test_bad_fractions_are_rejected(val, test):
    images, labels = torch.zeros(10, 1, 1, 1), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="fraction"):
        split_tensors(images, labels, val, test, split_seed=0)


@pytest.mark.slow
def test_the_embedded_digits_say_how_a_raw_digit_becomes_an_input():
    prep = load_mnist5k(0.15, 0.15, 0).preprocessing
    assert (prep.channels, prep.image_size) == (1, (28, 28))
    assert prep.class_names == tuple("0123456789")
    assert prep.mean == (MNIST_MEAN,) and prep.std == (MNIST_STD,)


def test_mnist5k_is_the_embedded_digits_split_three_ways():
    splits = load_mnist5k(val_fraction=0.15, test_fraction=0.15, split_seed=0)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (3500, 750, 750)
    assert splits.in_shape == (1, 28, 28)
    assert splits.n_classes == 10
    assert set(splits.val_y.tolist()) == set(range(10))
    assert abs(float(splits.train_x.mean())) < 0.1  # normalised


def test_synthetic_images_have_the_asked_shape_and_classes():
    splits = synthetic_images(60, 3, 5, 0.5, 0.2, 0.2, split_seed=1)
    assert splits.in_shape == (1, 5, 5)
    assert splits.n_classes == 3
    assert len(splits.train_x) + len(splits.val_x) + len(splits.test_x) == 60


# Class folders sort as blue (label 0), green (1), red (2); each is its own RGB channel.
FOLDER_COLOURS = {"red": 0, "green": 1, "blue": 2}


def make_folder(root, classes=FOLDER_COLOURS, per_class=8):
    """`root/<class>/<i>.png`: uniform images of the class colour, each of its own size and
    brightness, so every one of the images is distinct."""
    for name, channel in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = [0, 0, 0]
            colour[channel] = 120 + 15 * i
            Image.new("RGB", (5 + i, 9 - i), tuple(colour)).save(root / name / f"{i}.png")
    return root


def load(root, image_size=6, channels=3, **kwargs):
    return load_image_folder(root, image_size, channels, 0.25, 0.25, split_seed=0, **kwargs)


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_loads_resized_normalised_disjoint_splits(tmp_path, channels):
    splits = load(str(make_folder(tmp_path / "images")), channels=channels)
    assert splits.in_shape == (channels, 6, 6)
    assert splits.n_classes == 3
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (12, 6, 6)
    images = torch.cat([splits.train_x, splits.val_x, splits.test_x])
    labels = torch.cat([splits.train_y, splits.val_y, splits.test_y])
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [8, 8, 8]
    # 24 distinct images in 24 rows: no image is in two splits, none is missing.
    assert len({tuple(x.flatten().round(decimals=4).tolist()) for x in images}) == 24
    per_channel = splits.train_x.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(channels), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(channels), atol=1e-5)
    if channels == 3:  # each image kept its own label: blue, green, red
        assert torch.equal(images.mean(dim=(2, 3)).argmax(1), 2 - labels)


def make_gray_folder(root, brightness):
    """`root/a/` and `root/b/`, half the images each: image k (in the order the loader reads
    them) is a uniform gray of `brightness[k]` (0-255)."""
    per_class = len(brightness) // 2
    for k, value in enumerate(brightness):
        folder = root / "ab"[k // per_class]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (5, 5), (value,) * 3).save(folder / f"{k % per_class}.png")
    return root


def test_image_folder_normalises_with_the_training_split_only(tmp_path):
    n, held_out_brightness = 16, 250
    train, _, _ = carve(n, (0.25, 0.25), split_seed=0)  # the split `load` makes
    brightness = [held_out_brightness] * n  # validation and test: far brighter than training
    for rank, index in enumerate(train.tolist()):
        brightness[index] = 20 + 10 * rank
    splits = load(str(make_gray_folder(tmp_path, brightness)), image_size=4)
    per_channel = splits.train_x.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=1e-5)
    train_pixels = torch.tensor([brightness[i] / 255 for i in train.tolist()]).repeat(16)
    expected = (held_out_brightness / 255 - train_pixels.mean()) / train_pixels.std()
    for held_out in (splits.val_x, splits.test_x):
        assert torch.allclose(held_out, torch.full_like(held_out, float(expected)), atol=1e-4)


def test_image_folder_is_the_data_folder_config(tmp_path, compose_config):
    root = make_folder(tmp_path / "my images")
    splits = instantiate(compose_config("data=folder", f"data.root='{root}'").data)
    assert splits.in_shape == (1, 28, 28)
    assert splits.n_classes == 3
    assert len(splits.train_x) + len(splits.val_x) + len(splits.test_x) == 24


def test_image_folder_without_root_names_the_setting(compose_config):
    cfg = compose_config("data=folder")
    assert cfg.data.root is None
    with pytest.raises(ValueError, match="data.root: no folder given; set data.root="):
        load_image_folder(**{k: v for k, v in cfg.data.items() if k != "_target_"})


def _bad_folder(tmp_path, case):
    """A root for each way the folder can be wrong."""
    if case == "missing":
        return tmp_path / "nope"
    if case == "file":
        (tmp_path / "x.png").write_bytes(b"")
        return tmp_path / "x.png"
    if case == "single class":
        return make_folder(tmp_path, {"red": 0})
    if case == "class without images":
        make_folder(tmp_path, {"red": 0, "green": 1})
        (tmp_path / "blue").mkdir()
        (tmp_path / "blue" / "notes.txt").write_text("not an image")
        return tmp_path
    if case == "not an image":
        make_folder(tmp_path)
        (tmp_path / "red" / "broken.png").write_bytes(b"not a png")
        return tmp_path
    if case == "too few images":  # 2 x 0.25 rounds to no validation image
        return make_folder(tmp_path, {"red": 0, "green": 1}, per_class=1)
    (tmp_path / "loose.png").write_bytes(b"")  # images, but not in class folders
    return tmp_path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", r"data.root: folder '.*nope' does not exist"),
        ("file", r"data.root: '.*x.png' is not a folder; expected root/<class name>/"),
        ("no class folders", r"data.root: no class sub-folders in .*; expected root/<class name>"),
        ("single class", r"data.root: only one class folder \('red'\) .* at least 2 classes"),
        ("class without images", r"data.root: no images in class folder\(s\) 'blue' .*\.png"),
        ("not an image", r"data.root: cannot read image '.*broken.png'"),
        ("too few images", r"data.root: 2 images are too few .* data.val_fraction=0.25"),
    ],
)
def test_bad_image_folder_is_one_line_naming_data_root(tmp_path, case, message):
    with pytest.raises(ValueError, match=message) as error:
        load(str(_bad_folder(tmp_path, case)))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"channels": 2}, r"data.channels must be 1 \(grayscale\) or 3 \(RGB\), got 2"),
        ({"channels": True}, "data.channels"),
        ({"image_size": 0}, r"data.image_size must be a whole number >= 1, got 0"),
        ({"image_size": "big"}, "data.image_size"),
    ],
)
def test_bad_image_folder_settings_are_rejected_before_reading(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        load(str(tmp_path / "not read"), **setting)


# --- torchvision datasets, from small fake files in torchvision's own formats ----------------


def write_idx(path, array):
    """An uncompressed idx file as MNIST ships it: 0, 0, type 0x08 (uint8), the number of
    dimensions, each dimension as a big-endian int32, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_images(n, shape, seed, first=0):
    """`n` random uint8 images whose first pixel is their index (counted from `first`): rows
    are told apart by it."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    images.reshape(n, -1)[:, 0] = np.arange(first, first + n)
    return images


def write_fake_mnist(root, folder="MNIST", n_train=40, n_test=10):
    """`root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`, the files torchvision
    reads (it unpacks the downloaded .gz archives to these names). Returns the images and
    labels written."""
    raw = root / folder / "raw"
    written = {}
    for part, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = fake_images(n, (28, 28), seed), np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{part}-images-idx3-ubyte", images)
        write_idx(raw / f"{part}-labels-idx1-ubyte", labels)
        written[part] = images, labels
    return written


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_fake_cifar(root, monkeypatch, dataset_class, n_per_batch=8):
    """The pickled python batches torchvision reads (CIFAR-10: cifar-10-batches-py/data_batch_1..5,
    test_batch, batches.meta; CIFAR-100: cifar-100-python/train, test, meta), each a dict of
    uint8 rows (3 x 32 x 32, channel-major) and labels. torchvision checks every file against
    the md5 sum of the real one: the test gives `dataset_class` the sums of these files
    instead, so its own integrity check still runs. Returns the images and labels written."""
    folder = root / dataset_class.base_folder
    folder.mkdir(parents=True)
    cifar100 = dataset_class.base_folder == "cifar-100-python"
    n_classes, label_key = (100, "fine_labels") if cifar100 else (10, "labels")
    written, seed = {"train": [], "test": []}, 0
    for part, files in (("train", dataset_class.train_list), ("test", dataset_class.test_list)):
        for name, _ in files:
            seed += 1
            first = len(written[part]) * n_per_batch
            images = fake_images(n_per_batch, (3, 32, 32), seed, first)
            labels = [
                int(i) for i in np.random.default_rng(seed).integers(0, n_classes, n_per_batch)
            ]
            batch = {"data": images.reshape(n_per_batch, -1), label_key: labels}
            if cifar100:
                batch["coarse_labels"] = [label // 5 for label in labels]
            (folder / name).write_bytes(pickle.dumps(batch))
            written[part].append((images, labels))
    meta = dataset_class.meta
    names = [f"class {i}" for i in range(n_classes)]
    (folder / meta["filename"]).write_bytes(pickle.dumps({meta["key"]: names}))
    sums = lambda files: [[name, md5(folder / name)] for name, _ in files]  # noqa: E731
    monkeypatch.setattr(dataset_class, "train_list", sums(dataset_class.train_list))
    monkeypatch.setattr(dataset_class, "test_list", sums(dataset_class.test_list))
    monkeypatch.setattr(dataset_class, "meta", {**meta, "md5": md5(folder / meta["filename"])})
    return {
        part: (
            np.concatenate([images for images, _ in batches]),
            np.concatenate([labels for _, labels in batches]),
        )
        for part, batches in written.items()
    }


def unnormalise(x, name):
    """uint8 pixel values back from `load_torchvision`'s normalised float images."""
    dataset = TORCHVISION_DATASETS[name]
    mean = torch.tensor(dataset.mean).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round()


def check_torchvision_splits(splits, name, written, n_classes, in_shape):
    """Shapes, classes, normalisation, and every training image in exactly one of train /
    validation with its own label; test is the official test set, in order."""
    train_images, train_labels = written["train"]
    test_images, test_labels = written["test"]
    assert splits.in_shape == in_shape
    assert splits.n_classes == n_classes
    prep = splits.preprocessing  # what an export needs to label a raw image
    assert (prep.channels, prep.image_size) == (in_shape[0], in_shape[1:])
    assert len(prep.class_names) == n_classes
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    n_val = round(len(train_images) * 0.25)
    assert (len(splits.train_x), len(splits.val_x)) == (len(train_images) - n_val, n_val)
    expected_test = torch.as_tensor(test_images).reshape(len(test_images), *in_shape)
    assert torch.equal(unnormalise(splits.test_x, name), expected_test.float())
    assert torch.equal(splits.test_y, torch.as_tensor(test_labels, dtype=torch.int64))
    seen = []
    for x, y in ((splits.train_x, splits.train_y), (splits.val_x, splits.val_y)):
        pixels = unnormalise(x, name)
        index = pixels.flatten(1)[:, 0].long()  # the first pixel is the image's index
        expected = torch.as_tensor(train_images[index.numpy()]).reshape(len(x), *in_shape)
        assert torch.equal(pixels, expected.float())
        assert torch.equal(y, torch.as_tensor(train_labels[index.numpy()], dtype=torch.int64))
        seen += index.tolist()
    assert sorted(seen) == list(range(len(train_images)))  # disjoint and complete


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_formats_load_from_their_idx_files(tmp_path, name, folder):
    written = write_fake_mnist(tmp_path, folder)
    splits = load_torchvision(name, str(tmp_path), val_fraction=0.25, split_seed=3)
    check_torchvision_splits(
        splits, name, {"train": written["train"], "test": written["t10k"]}, 10, (1, 28, 28)
    )
    assert splits.augment is None
    again = load_torchvision(name, str(tmp_path), val_fraction=0.25, split_seed=3)
    other = load_torchvision(name, str(tmp_path), val_fraction=0.25, split_seed=4)
    assert torch.equal(splits.val_x, again.val_x)
    assert not torch.equal(splits.val_x, other.val_x)


@pytest.mark.parametrize("name, n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_loads_from_its_pickled_batches(tmp_path, monkeypatch, name, n_classes):
    dataset_class = getattr(torchvision.datasets, TORCHVISION_DATASETS[name].dataset)
    written = write_fake_cifar(tmp_path, monkeypatch, dataset_class)
    splits = load_torchvision(name, str(tmp_path), val_fraction=0.25, augment="crop_flip")
    check_torchvision_splits(splits, name, written, n_classes, (3, 32, 32))
    assert splits.augment == "crop_flip"


def test_standard_normalisation_gives_about_zero_mean_unit_std_on_matching_pixels(tmp_path):
    """Pixels with CIFAR-10's own per-channel statistics (each mean + or - std, at random)
    come out with mean 0 and std 1."""
    mean, std = torch.tensor(CIFAR10_MEAN), torch.tensor(CIFAR10_STD)
    signs = torch.randint(0, 2, (500, 32, 32, 3), generator=torch.Generator().manual_seed(0))
    pixels = ((mean + (2 * signs - 1) * std) * 255).round().to(torch.uint8)
    images = _normalised(pixels.permute(0, 3, 1, 2), CIFAR10_MEAN, CIFAR10_STD)
    per_channel = images.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=0.02)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=0.02)


@pytest.mark.parametrize(
    "name, looked_for",
    [
        ("mnist", "MNIST/raw"),
        ("fashion_mnist", "FashionMNIST/raw"),
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
    ],
)
def test_missing_dataset_is_one_line_saying_where_and_how_to_download(tmp_path, name, looked_for):
    label = TORCHVISION_DATASETS[name].dataset
    with pytest.raises(ValueError) as error:
        load_torchvision(name, str(tmp_path / "data"), download=False)
    message = str(error.value)
    assert message == (
        f"data.root: no {label} files in '{tmp_path / 'data'}' (looked for "
        f"{tmp_path / 'data' / looked_for}); add data.download=true to fetch it, "
        f"or put the files there"
    )


def test_incomplete_mnist_names_the_missing_files(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    message = r"data.root: MNIST files in .* are incomplete \(missing t10k-labels-idx1-ubyte\); "
    with pytest.raises(ValueError, match=message + "add data.download=true") as error:
        load_torchvision("mnist", str(tmp_path))
    assert "\n" not in str(error.value)


def test_corrupted_cifar_fails_torchvisions_checksum_in_one_line(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path, monkeypatch, torchvision.datasets.CIFAR10)
    with (tmp_path / "cifar-10-batches-py" / "data_batch_3").open("ab") as file:
        file.write(b"garbage")
    message = (
        r"data.root: cannot read CIFAR10 from .*cifar-10-batches-py' "
        r"\(Dataset not found or corrupted.*\); the files may be corrupted"
    )
    with pytest.raises(ValueError, match=message) as error:
        load_torchvision("cifar10", str(tmp_path))
    assert "\n" not in str(error.value)


def test_a_failed_download_is_one_line_naming_data_download(tmp_path):
    """The message for download=true when the fetch fails (built directly: no test downloads)."""
    failure = URLError("[Errno -3] Temporary failure\nin name resolution")
    message = _not_loaded(torchvision.datasets.CIFAR10, tmp_path, True, failure)
    assert message == (
        f"data.download: could not fetch CIFAR10 into '{tmp_path}' (<urlopen error [Errno -3] "
        f"Temporary failure in name resolution>); check the network, or put the files in "
        f"{tmp_path / 'cifar-10-batches-py'} yourself"
    )


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"name": "svhn"}, r"data.name must be one of mnist, fashion_mnist, cifar10, cifar100"),
        ({"download": "yes"}, r"data.download must be true or false, got 'yes'"),
        ({"val_fraction": 0}, r"data.val_fraction must be a number in \(0, 1\), got 0"),
        ({"augment": "mixup"}, r"data.augment must be null or one of crop_flip, got 'mixup'"),
        ({"root": None}, r"data.root: no folder given"),
    ],
)
def test_bad_torchvision_settings_are_rejected_before_reading(tmp_path, setting, message):
    kwargs = {"name": "mnist", "root": str(tmp_path), **setting}
    with pytest.raises(ValueError, match=message):
        load_torchvision(**kwargs)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_torchvision_configs_default_to_no_download(compose_config, name):
    cfg = compose_config(f"data={name}").data
    assert cfg._target_ == "nas.data.load_torchvision"
    assert cfg.name == name and cfg.download is False
    assert cfg.augment == ("crop_flip" if name.startswith("cifar") else None)
    assert set(cfg) - {"_target_"} == set(inspect.signature(load_torchvision).parameters)


def test_cifar10_config_loads_from_data_root(tmp_path, monkeypatch, compose_config):
    write_fake_cifar(tmp_path, monkeypatch, torchvision.datasets.CIFAR10)
    splits = instantiate(compose_config("data=cifar10", f"data.root='{tmp_path}'").data)
    assert splits.in_shape == (3, 32, 32) and splits.n_classes == 10
    assert splits.augment == "crop_flip"
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (36, 4, 8)


# --- image folders with train/, val/ and test/ -----------------------------------------------


def load_split_folder(root, **kwargs):
    settings = {"image_size": 6, "channels": 3, "val_fraction": 0.25, "test_fraction": 0.25}
    return load_imagefolder(str(root), **{**settings, **kwargs})


@pytest.mark.parametrize(
    "parts", [("train", "val", "test"), ("train", "test"), ("train", "val"), ("train",)]
)
def test_imagefolder_takes_its_splits_from_folders_and_carves_the_missing_ones(tmp_path, parts):
    sizes = {"train": 8, "val": 3, "test": 2}
    for part in parts:
        make_folder(tmp_path / part, per_class=sizes[part])
    splits = load_split_folder(tmp_path)
    n_val = 3 * 3 if "val" in parts else round(24 * 0.25)
    n_test = 3 * 2 if "test" in parts else round(24 * 0.25)
    assert (len(splits.val_x), len(splits.test_x)) == (n_val, n_test)
    assert len(splits.train_x) == 24 - (n_val if "val" not in parts else 0) - (
        n_test if "test" not in parts else 0
    )
    assert splits.in_shape == (3, 6, 6) and splits.n_classes == 3
    for x, y in (
        (splits.train_x, splits.train_y),
        (splits.val_x, splits.val_y),
        (splits.test_x, splits.test_y),
    ):
        assert torch.equal(x.mean(dim=(2, 3)).argmax(1), 2 - y)  # blue 0, green 1, red 2
    # The training images come from train/ only, each in one split: all distinct.
    carved = [splits.train_x]
    carved += [splits.val_x] if "val" not in parts else []
    carved += [splits.test_x] if "test" not in parts else []
    rows = torch.cat(carved).flatten(1).round(decimals=4)
    assert len({tuple(row.tolist()) for row in rows}) == 24
    # Normalised with the training split's own statistics.
    per_channel = splits.train_x.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=1e-5)


def test_imagefolder_normalises_with_the_configured_mean_and_std(tmp_path):
    make_folder(tmp_path / "train", per_class=4)
    splits = load_split_folder(tmp_path, mean=[0.5, 0.4, 0.3], std=0.25, channels=3)
    red = splits.train_x[splits.train_y == 2]  # red images: green and blue pixels are 0
    assert torch.allclose(red[:, 1], torch.full_like(red[:, 1], -0.4 / 0.25))
    assert torch.allclose(red[:, 2], torch.full_like(red[:, 2], -0.3 / 0.25))
    gray = load_split_folder(tmp_path, channels=1, mean=0.5, std=[0.5])
    assert gray.in_shape == (1, 6, 6)
    assert float(gray.train_x.min()) >= -1.0 and float(gray.train_x.max()) <= 1.0


def test_imagefolder_config_loads_and_can_augment(tmp_path, compose_config):
    make_folder(tmp_path / "train")
    make_folder(tmp_path / "val", per_class=2)
    cfg = compose_config("data=imagefolder", f"data.root='{tmp_path}'", "data.augment=crop_flip")
    splits = instantiate(cfg.data)
    assert splits.in_shape == (3, 32, 32) and splits.n_classes == 3
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (22, 6, 2)
    assert splits.augment == "crop_flip"
    defaults = compose_config("data=imagefolder").data
    assert set(defaults) - {"_target_"} == set(inspect.signature(load_imagefolder).parameters)


def _bad_split_folder(tmp_path, case):
    if case == "no train":
        make_folder(tmp_path / "red", {"red": 0})
        return tmp_path
    make_folder(tmp_path / "train")
    if case == "val classes differ":
        make_folder(tmp_path / "val", {"red": 0, "green": 1, "purple": 2})
    elif case == "test classes differ":
        make_folder(tmp_path / "test", {"red": 0, "green": 1}, per_class=2)
    elif case == "val is a file":
        (tmp_path / "val").write_text("")
    elif case == "empty test class":
        make_folder(tmp_path / "test", per_class=1)
        for image in (tmp_path / "test" / "green").iterdir():
            image.unlink()
    elif case == "single class":
        shutil.rmtree(tmp_path / "train" / "red")
        shutil.rmtree(tmp_path / "train" / "green")
    return tmp_path


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "no train",
            r"data.root: no train/ folder in .*; expected root/train/<class name>/"
            r"<image files>, optionally root/val/ and root/test/ alike \(.*data=folder\)",
        ),
        (
            "val classes differ",
            r"data.root: the class folders of '.*val' differ from those of "
            r"'.*train': missing 'blue'; extra 'purple'",
        ),
        ("test classes differ", r"class folders of '.*test' differ .*: missing 'blue'$"),
        ("val is a file", r"data.root: '.*val' is not a folder"),
        ("empty test class", r"data.root: no images in class folder\(s\) 'green' of '.*test'"),
        ("single class", r"data.root: only one class folder \('blue'\) in '.*train'"),
    ],
)
def test_bad_imagefolder_is_one_line_naming_data_root(tmp_path, case, message):
    with pytest.raises(ValueError, match=message) as error:
        load_split_folder(_bad_split_folder(tmp_path, case))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            {"mean": [0.5, 0.5]},
            r"data.mean must be null \(computed from the training images\) "
            r"or 3 number\(s\), one per channel, got \[0.5, 0.5\]",
        ),
        ({"std": [0.2, 0.0, 0.2]}, r"data.std must be null .* or 3 positive number\(s\)"),
        ({"std": "wide"}, r"data.std must be null"),
        ({"mean": True}, r"data.mean must be null"),
        ({"augment": "cutout"}, r"data.augment must be null or one of crop_flip"),
        ({"root": None}, r"data.root: no folder given"),
    ],
)
def test_bad_imagefolder_settings_are_rejected_before_reading(tmp_path, setting, message):
    kwargs = {"root": str(tmp_path / "not read"), "image_size": 6, "channels": 3, **setting}
    with pytest.raises(ValueError, match=message):
        load_imagefolder(**kwargs)


def test_imagefolder_too_few_images_to_carve(tmp_path):
    make_folder(tmp_path / "train", {"red": 0, "green": 1}, per_class=1)
    make_folder(tmp_path / "test", {"red": 0, "green": 1}, per_class=1)
    message = (
        r"data.root: 2 images in '.*train' are too few to carve validation / test images out "
        r"of with data.val_fraction=0.25$"
    )
    with pytest.raises(ValueError, match=message):
        load_split_folder(tmp_path)


# --- augmentation ------------------------------------------------------------------------------


def reference_crop_flip(image, dy, dx, flip):
    """torch's own ops: pad 4 with zeros, cut the window at (dy, dx), maybe mirror it."""
    height, width = image.shape[1:]
    window = F.pad(image, (4, 4, 4, 4))[:, dy : dy + height, dx : dx + width]
    return window.flip(-1) if flip else window


def test_crop_flip_is_a_shifted_maybe_mirrored_window_of_each_image():
    # Every pixel distinct and nonzero (zero is the padding), channels distinct too.
    images = (torch.arange(3 * 32 * 32, dtype=torch.float32) + 1).reshape(1, 3, 32, 32)
    images = images.repeat(200, 1, 1, 1) + 10_000 * torch.arange(200).view(-1, 1, 1, 1)
    out = augment_batch(images, "crop_flip", torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    found = []
    for image, augmented in zip(images, out, strict=True):
        matches = [
            (dy - 4, dx - 4, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.equal(reference_crop_flip(image, dy, dx, flip), augmented)
        ]
        assert len(matches) == 1  # content moved by at most 4 pixels each way, maybe mirrored
        found += matches
    flips = sum(flip for _, _, flip in found)
    assert 60 < flips < 140  # p = 0.5
    assert {dy for dy, _, _ in found} == set(range(-4, 5))
    assert {dx for _, dx, _ in found} == set(range(-4, 5))


def test_crop_flip_really_mirrors_an_asymmetric_image():
    """A left-to-right ramp: the unshifted middle of every output rises or, mirrored, falls."""
    ramp = torch.arange(1, 33, dtype=torch.float32).expand(64, 1, 32, 32)
    out = augment_batch(ramp, "crop_flip", torch.Generator().manual_seed(1))
    middle = out[:, 0, 16, 8:24]
    rising = (middle.diff() > 0).all(dim=1)
    falling = (middle.diff() < 0).all(dim=1)
    assert bool((rising | falling).all())
    assert 0 < int(falling.sum()) < 64


def test_crop_flip_is_fixed_by_its_generator():
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = augment_batch(images, "crop_flip", torch.Generator().manual_seed(5))
    again = augment_batch(images, "crop_flip", torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    draws = [augment_batch(images, "crop_flip", generator) for _ in range(2)]
    assert torch.equal(first, again)
    assert torch.equal(first, draws[0])
    assert not torch.equal(draws[0], draws[1])
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        augment_batch(images, "blur", generator)


def test_splits_carry_their_augmentation_to_the_device(tiny_splits):
    assert tiny_splits.augment is None and tiny_splits.augmenter(torch.Generator()) is None
    augmented = replace(tiny_splits, augment="crop_flip")
    moved = splits_to(augmented, torch.device("cpu"))
    assert moved.augment == "crop_flip"
    augment = moved.augmenter(torch.Generator().manual_seed(0))
    assert augment(moved.train_x[:4]).shape == moved.train_x[:4].shape
    with pytest.raises(ValueError, match="data.augment must be null or one of crop_flip"):
        replace(tiny_splits, augment="crop")


def test_a_training_epoch_with_augmentation_runs_and_is_reproducible(tiny_splits):
    splits = replace(tiny_splits, augment="crop_flip")
    calls = []

    def epoch(seed):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(144, splits.n_classes))
        generator = torch.Generator().manual_seed(seed)
        augment = splits.augmenter(generator)

        def counted(x):
            calls.append(len(x))
            return augment(x)

        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = splits.train_x, splits.train_y
        loss = train_epoch(model, x, y, optimizer, 64, generator, augment=counted)
        return loss, model[1].weight.detach().clone()

    (loss, weights), (again, weights_again) = epoch(0), epoch(0)
    assert math.isfinite(loss)
    assert calls[:4] == [64, 64, 64, 48]  # every training batch, 240 images
    assert loss == again and torch.equal(weights, weights_again)
    assert not torch.equal(weights, epoch(1)[1])


@pytest.mark.slow
def test_a_trial_trains_on_augmented_batches_only(tiny_splits, monkeypatch):
    """`TrialPipeline.run` passes the splits' augmentation to training; evaluation sees the
    validation and test images as they are."""
    from optuna.trial import FixedTrial

    from nas.prune.methods import MagnitudePruning
    from nas.trial.pipeline import TrialPipeline
    from nas.trial.train import TrainSettings
    from search_spaces.cnn import CNNSpace

    seen = []

    def recording(x, kind, generator):
        seen.append(x.data_ptr())
        return augment_batch(x, kind, generator)

    monkeypatch.setattr(nas.data.splits, "augment_batch", recording)
    splits = replace(tiny_splits, augment="crop_flip")
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=1, batch_size=64))
    space = CNNSpace()
    params = {
        "arch.blocks": 1,
        "arch.block1.channels": 8,
        "arch.kernel_size": 3,
        "arch.hidden": 32,
        "sparsity.block1.conv": 0.25,
        "sparsity.hidden": 0.5,
        "sparsity.head": 0.25,
    }
    pipeline = TrialPipeline(space, splits, MagnitudePruning(), settings, torch.device("cpu"))
    result, _ = pipeline.run(space.sample(FixedTrial(params)), seed=0)
    assert len(seen) == 2 * 4  # two epochs of four batches
    assert 0 <= result.accuracy <= 1
