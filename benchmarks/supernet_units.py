"""Whether a supernet's shallow hidden layer stays alive: trains `cnn`'s supernet (3x3
kernels, mnist5k) by the sandwich rule, as `train=supernet` does, and after every epoch
prints how many of the 64 units of depth 1's hidden layer are on (ReLU output above 0)
for at least one of 512 training images, in the networks of width 8 and 32.

    python benchmarks/supernet_units.py                        # the defaults
    python benchmarks/supernet_units.py --distill-warmup 0     # distillation from the start
    python benchmarks/supernet_units.py --distill-warmup 0 --no-distill
    python benchmarks/supernet_units.py --distill-warmup 0 --lr 5e-4
    python benchmarks/supernet_units.py --largest-every 1      # the largest in every step
"""

from __future__ import annotations

import argparse

import optuna
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nas.cli.config_dir import CONF_DIR
from nas.data.embedded import load_mnist5k
from nas.search.reference import ReferenceTrial
from nas.space import Candidate
from nas.supernet.elastic import Supernet
from nas.supernet.sandwich import RandomArchitectures, SupernetSettings, sandwich_epoch
from search_spaces.cnn import CNNSpace

SPACE = CNNSpace(kernel_sizes=(3,))
SMALLEST = SPACE.sample(ReferenceTrial(smallest=True))  # the sandwich's bottom, as in a search
with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
    DEFAULTS = OmegaConf.to_container(compose("config", ["train=supernet"]).train.supernet)


def units_on(supernet: Supernet, images: torch.Tensor, width: int) -> int:
    """Units of depth 1's hidden layer that are on for at least one of `images`, in the
    network of `width` channels (BatchNorm on batch statistics, as in training)."""
    candidate = Candidate({"channels": [width], "kernel_size": 3, "hidden": 64})
    network = SPACE.build(candidate, tuple(images.shape[1:]), 10)
    network.load_state_dict(supernet.weights_for(candidate))
    with torch.no_grad():
        hidden = network.hidden(network.flatten(network.block1(images)))
    return int((hidden > 0).any(dim=0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--distill-warmup", type=int, default=DEFAULTS["distill_warmup"])
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--largest-every", type=int, default=DEFAULTS["largest_every"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    splits = load_mnist5k(val_fraction=0.15, test_fraction=0.15, split_seed=0)
    settings = SupernetSettings(**{
        **DEFAULTS, "epochs": args.epochs, "lr": args.lr, "distill": not args.no_distill,
        "distill_warmup": args.distill_warmup, "largest_every": args.largest_every,
    })  # fmt: skip
    supernet = SPACE.supernet(splits.in_shape, splits.n_classes)
    optimizer = torch.optim.Adam(supernet.parameters(), lr=settings.lr)
    images = splits.train_x[:512]
    print(f"{settings}\nunits on of 64, at width 8 and 32:")
    print(f"  before training: {units_on(supernet, images, 8)}, {units_on(supernet, images, 32)}")
    for epoch in range(1, settings.epochs + 1):
        sandwich_epoch(
            supernet, optimizer, splits, settings, SMALLEST,
            RandomArchitectures(SPACE.sample, seed=epoch), 64,
            torch.Generator().manual_seed(epoch), epoch,
        )  # fmt: skip
        on = [units_on(supernet.train(), images, width) for width in (8, 32)]
        print(f"  after epoch {epoch}: {on[0]}, {on[1]}")


if __name__ == "__main__":
    main()
