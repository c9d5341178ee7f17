"""How good the supernet's slices are: for every architecture that both a weight-sharing
search (`--method`, default `search_supernet`) and the from-scratch search of
`benchmarks/front_quality.py` trained on a seed, the dense validation accuracy sliced out
of the supernet (after BatchNorm recalibration) against the one trained from scratch.

    python benchmarks/supernet_slicing.py --out outputs/bench --tag sn60 --seeds 30 31 32
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import optuna
from scipy.stats import spearmanr


def dense_accuracies(storage: str, name: str) -> dict[str, float]:
    """Dense validation accuracy of each architecture the study trained, by its summary."""
    study = optuna.load_study(study_name=name, storage=storage)
    accuracies: dict[str, float] = {}
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        accuracies.setdefault(trial.user_attrs["arch"], trial.user_attrs["dense_accuracy"])
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--tag", default="")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--method", default="search_supernet", help="the weight-sharing search")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pairs = []
    for seed in args.seeds:
        storage = f"sqlite:///{args.out.resolve() / f'front_quality-s{seed}.db'}"
        base = f"{args.tag}-s{seed}" if args.tag else f"s{seed}"
        sliced = dense_accuracies(storage, f"{base}-{args.method}")
        scratch = dense_accuracies(storage, f"{base}-search")
        pairs += [
            (sliced[arch], scratch[arch], f"{arch} (seed {seed})")
            for arch in sorted(set(sliced) & set(scratch))
        ]
    differences = [a - b for a, b, _ in pairs]
    print(f"architectures trained by both searches: {len(pairs)}")
    print(
        f"dense accuracy, sliced minus from scratch: mean {statistics.fmean(differences):+.4f}, "
        f"median {statistics.median(differences):+.4f}, worst {min(differences):+.4f}"
    )
    rho = spearmanr([a for a, _, _ in pairs], [b for _, b, _ in pairs]).statistic
    print(f"Spearman rank correlation: {rho:.2f}")
    print("the largest shortfalls (sliced, from scratch):")
    for sliced_accuracy, scratch_accuracy, name in sorted(pairs, key=lambda p: p[0] - p[1])[:5]:
        print(f"  {name}: {sliced_accuracy:.3f} against {scratch_accuracy:.3f}")


if __name__ == "__main__":
    main()
