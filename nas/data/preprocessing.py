"""How a raw image becomes a network's input, and what its outputs are called: what a
dataset's loader did to its images, kept so that an exported network can label new ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.data.splits import normalised


@dataclass(frozen=True)
class Preprocessing:
    """An image is converted to `channels` (1 grayscale, 3 RGB), resized to `image_size`
    (height, width), scaled to [0, 1] and normalised per channel by `mean` and `std`;
    output `i` of the network is class `class_names[i]`."""

    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]

    @classmethod
    def of(
        cls,
        channels: int,
        image_size: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        class_names: Sequence[Any],
    ) -> Preprocessing:
        """From plain values: a square size as one number, per-channel statistics as
        sequences, class names as anything `str` names."""
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        return cls(
            int(channels),
            (int(size[0]), int(size[1])),
            tuple(float(m) for m in mean),
            tuple(float(s) for s in std),
            tuple(str(name) for name in class_names),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for a JSON file or a study's user attr."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Preprocessing:
        """The preprocessing `as_dict` gave."""
        return cls.of(**values)

    def prepare(self, image: Any) -> torch.Tensor:
        """A batch of one input (1, C, H, W) from a PIL image or the path of an image file."""
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor, resize

        if isinstance(image, str | Path):
            with Image.open(image) as opened:
                return self.prepare(opened)
        image = image.convert("RGB")  # as torchvision's ImageFolder opens every image
        if self.channels == 1:
            image = image.convert("L")
        pixels = pil_to_tensor(resize(image, list(self.image_size)))[None]
        return normalised(pixels, self.mean, self.std)
