"""Shipping what was found: an export carries its input preprocessing and class names,
`nas.load_predictor` labels a raw image with it, and `predict` labels a folder."""

from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image
from torch import nn

import nas
from nas.data.folders import load_image_folder
from nas.data.preprocessing import Preprocessing
from nas.report.export import export_model
from tests.conftest import forked_nas
from tests.test_data import make_folder


def test_a_folders_preprocessing_prepares_an_image_exactly_as_its_loader_did(tmp_path):
    root = make_folder(tmp_path / "images")
    splits = load_image_folder(str(root), 6, 3, 0.25, 0.25, split_seed=0)
    prep = splits.preprocessing
    assert prep.class_names == ("blue", "green", "red")
    assert (prep.channels, prep.image_size) == (3, (6, 6))
    everything = torch.cat([splits.train_x, splits.val_x, splits.test_x])
    for path in sorted(root.rglob("*.png")):
        prepared = prep.prepare(path)
        assert any(torch.allclose(prepared[0], image, atol=1e-5) for image in everything), path


def test_preprocessing_survives_its_plain_form():
    prep = Preprocessing.of(1, 28, (0.1307,), (0.3081,), range(10))
    assert Preprocessing.from_dict(prep.as_dict()) == prep
    assert prep.class_names[3] == "3"


class Colour(nn.Module):
    """Class i is the image whose channel i is brightest (blue, green, red sort as 0, 1, 2
    on an image whose channels are R, G, B: 2 - channel)."""

    def forward(self, x):
        return 10 * x.mean(dim=(2, 3)).flip(1)


@pytest.mark.parametrize("suffix", [".state_dict.pt", ".sparse.pt", ".pt2"])
def test_an_export_with_preprocessing_labels_a_raw_image(tmp_path, suffix):
    prep = Preprocessing.of(3, 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), ["blue", "green", "red"])
    model = nn.Sequential(nn.Conv2d(3, 3, 1), Colour()).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        model[0].bias.zero_()
    export_model(model, (3, 4, 4), tmp_path / "net", prep.as_dict())
    image = tmp_path / "reddish.png"
    Image.new("RGB", (9, 7), (200, 30, 40)).save(image)
    label, probability = nas.load_predictor(tmp_path / f"net{suffix}")(image)
    assert label == "red" and probability > 0.5


def test_an_export_without_preprocessing_says_how_to_prepare_inputs(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    export_model(model, (3, 2, 2), tmp_path / "net")
    with pytest.raises(ValueError, match=r"carries no preprocessing.*float tensors \(N, C, H, W\)"):
        nas.load_predictor(tmp_path / "net.pt2")


@pytest.mark.slow
def test_a_search_on_a_folder_exports_a_network_that_predicts_a_folder(tmp_path):
    for name, channel in {"red": 0, "green": 1, "blue": 2}.items():
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(12):
            colour = [20, 20, 20]
            colour[channel] = 100 + 12 * i
            image = Image.new("RGB", (10, 10), tuple(colour))
            image.save(tmp_path / "images" / name / f"{i}.png")
    data = ("data=folder", "data.root=images", "data.image_size=8", "data.channels=3")
    small = ("train.epochs=2", "train.finetune_epochs=1", "study.n_trials=3", "device=cpu")
    done = forked_nas("search", "+space=cnn", *data, *small, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    exported = forked_nas("export", "study.name=cnn", "out=exports/best", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "exports" / "best.preprocessing.json").exists()
    labelled = forked_nas(
        "predict", "predict.model=exports/best.pt2", "predict.images=images", cwd=tmp_path
    )
    assert labelled.returncode == 0, labelled.stderr
    table = next(tmp_path.glob("outputs/runs/*/predictions.csv"))
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 36
    assert {row["class"] for row in rows} <= {"blue", "green", "red"}
    assert all(row["image"] in labelled.stdout for row in rows)
    missing = forked_nas("predict", "predict.model=exports/best.pt2", cwd=tmp_path)
    assert missing.returncode == 2 and "predict.images" in missing.stderr
