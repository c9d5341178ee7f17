from __future__ import annotations

import pytest
import torch

from nas.data import load_mnist5k, split_tensors, synthetic_images


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
