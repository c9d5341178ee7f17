"""An exported network that labels raw images: its input preprocessing and class names
travel with the export (`export_model(..., preprocessing=...)`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.data.preprocessing import Preprocessing
from nas.report.export import PREPROCESSING_SUFFIX, SUFFIXES, load_model


@dataclass(frozen=True)
class Predictor:
    """`model` with what its inputs need: call it with a PIL image or an image file's path
    to get the class name and its probability."""

    model: nn.Module
    preprocessing: Preprocessing

    @torch.inference_mode()
    def __call__(self, image: Any) -> tuple[str, float]:
        """The most probable class of `image` and its probability."""
        probabilities = self.model(self.preprocessing.prepare(image)).softmax(dim=-1)[0]
        index = int(probabilities.argmax())
        return self.preprocessing.class_names[index], float(probabilities[index])


def load_predictor(path: str | Path) -> Predictor:
    """The network in an exported file (any format `load_model` reads) with its
    preprocessing: from the .pt file's header, else from `<stem>.preprocessing.json`
    beside it. ValueError in one line when the export has none."""
    path = Path(path)
    model = load_model(path)
    stem = _stem(path)
    values = None
    if path.suffix == ".pt":
        values = torch.load(path, map_location="cpu", weights_only=True).get("preprocessing")
    sidecar = path.with_name(stem + PREPROCESSING_SUFFIX)
    if values is None and sidecar.exists():
        values = json.loads(sidecar.read_text())
    if values is None:
        raise ValueError(
            f"{path} carries no preprocessing (its study's data were not read from image "
            f"files, or it was exported before exports carried it): give the network float "
            f"tensors (N, C, H, W) normalised as its training images were"
        )
    return Predictor(model, Preprocessing.from_dict(values))


def _stem(path: Path) -> str:
    """`path`'s name without the export suffix (`.state_dict.pt`, `.pt2`, ...)."""
    for suffix in SUFFIXES.values():
        if path.name.endswith(suffix):
            return path.name.removesuffix(suffix)
    return path.stem
