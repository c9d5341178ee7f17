from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from nas.data import load_image_folder, load_mnist5k, split_tensors, synthetic_images


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
    per_channel = images.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(channels), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(channels), atol=1e-5)
    if channels == 3:  # each image kept its own label: blue, green, red
        assert torch.equal(images.mean(dim=(2, 3)).argmax(1), 2 - labels)


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
