"""Networks for `+space=model` benchmarks: `space.model._target_=model_networks.NAME` in
a benchmark script of this folder (its folder is on the path), or
`benchmarks.model_networks.NAME` for `python -m nas` run from the repository's root.

Run as a script, it trains `cnn_largest` on the embedded digits' training split and saves
its state_dict, the trained model a user would bring (`space.weights=PATH`):

    python benchmarks/model_networks.py outputs/bench/trained_cnn_largest.pt --epochs 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from nas.search.reference import reference_candidate
from search_spaces.cnn import CNNSpace


def cnn_largest(num_classes: int = 10, in_shape: tuple[int, int, int] = (1, 28, 28)) -> nn.Module:
    """The `cnn` space's largest network (`conv 32-32-32 k5 > fc 64 > head`), freshly
    initialised: what a user would hand the model mode."""
    space = CNNSpace()
    candidate, _ = reference_candidate(space)
    return space.build(candidate, in_shape, num_classes)


def train(model: nn.Module, epochs: int, seed: int) -> float:
    """Train `model` on the embedded digits' training split (3,500 images) as a search's
    dense training does (Adam at 0.002, batches of 64); returns its validation accuracy."""
    from nas.data import load_mnist5k
    from nas.trial.train import accuracy, make_optimizer, seed_everything, train_epoch

    splits = load_mnist5k(0.15, 0.15, 0)
    generator = seed_everything(seed)
    optimizer = make_optimizer(model, 0.002, 0.0)
    for _ in range(epochs):
        train_epoch(model, splits.train_x, splits.train_y, optimizer, 64, generator)
    return accuracy(model.eval(), splits.val_x, splits.val_y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train cnn_largest and save its state_dict")
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = cnn_largest()
    val = train(model, args.epochs, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"cnn_largest trained {args.epochs} epochs (seed {args.seed}): validation {val:.4f}")
    print(f"saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
