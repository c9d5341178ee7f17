"""How well a cheap look at a pruned slice predicts what fine-tuning it gives: for every
finished trial of a weight-sharing search of `benchmarks/front_quality.py`, its candidate
is sliced out of the study's supernet again and pruned to the same ratios, and its
validation accuracy is read right after pruning (what `study.early_exit=pruned` sees) and
after recalibrating BatchNorm on the pruned network. Prints per seed and pooled the
Spearman rank correlation of each with the trials' final accuracy (over all trials and
over those pruned to at least `--sparse`), the mean shortfall, and how many of the final
front's trials each proxy puts on its own front.

    python benchmarks/screening_proxy.py --out outputs/bench/held3 --tag h60 --seeds 30 31 32
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import optuna
import torch
from hydra import compose, initialize_config_dir
from optuna.artifacts import FileSystemArtifactStore
from scipy.stats import spearmanr

from nas.cli.config_dir import CONF_DIR
from nas.report.front_quality import non_dominated
from nas.search.study import Search
from nas.trial.dense_cache import arch_seed
from nas.trial.train import accuracy, recalibrate_batchnorm

# trial: (final accuracy, right after pruning, after recalibration, sparsity, params, FLOPs)
Row = tuple[float, float, float, float, float, float]


def proxies(out: Path, tag: str, seed: int, method: str, overrides: list[str]) -> list[Row]:
    """One row per finished trial of the study `tag`-s`seed`-`method` in `out`."""
    name = f"{tag}-s{seed}-{method}"
    storage = f"sqlite:///{out / f'front_quality-s{seed}.db'}"
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(
            config_name="config",
            overrides=[
                "+space=cnn", f"seed={seed}", f"study.storage={storage}", f"study.name={name}",
                "device=cpu", "train=supernet", *overrides,
            ],
        )  # fmt: skip
    search = Search.from_config(cfg, out)
    study = optuna.load_study(study_name=name, storage=storage)
    store = FileSystemArtifactStore(search.store_dir)
    pipeline = search.with_supernet(search.pipeline, study, store)
    images = pipeline.splits.train_x[: pipeline.recalibration_images]
    rows = []
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        candidate = pipeline.space.sample(optuna.trial.FixedTrial(trial.params))
        result, model = pipeline.run(
            candidate, arch_seed(seed, candidate.arch), skip_finetune=lambda *_: True
        )
        recalibrate_batchnorm(model, images, pipeline.settings.batch_size)
        recalibrated = accuracy(model, pipeline.splits.val_x, pipeline.splits.val_y)
        sparsity = 1 - result.nonzero_params / result.dense_params
        rows.append((trial.values[0], result.accuracy, recalibrated, sparsity, *trial.values[1:3]))
    return rows


def front(rows: list[Row], column: int) -> set[int]:
    """Indices of the rows that no other row dominates in (accuracy `column`, params, FLOPs)."""
    return set(non_dominated(np.array([(-row[column], row[4], row[5]) for row in rows])))


def summary(label: str, rows: list[Row], sparse: float, recall: tuple[int, int, int]) -> str:
    """One line: the rank correlations, shortfalls and front recall of both proxies."""
    sparse_rows = [row for row in rows if row[3] >= sparse]

    def rho(column: int, of: list[Row]) -> float:
        return spearmanr([row[0] for row in of], [row[column] for row in of]).statistic

    shortfall = [statistics.fmean(row[0] - row[column] for row in rows) for column in (1, 2)]
    return (
        f"| {label} | {len(rows)} | {rho(1, rows):.2f} | {rho(2, rows):.2f} "
        f"| {len(sparse_rows)} | {rho(1, sparse_rows):.2f} | {rho(2, sparse_rows):.2f} "
        f"| {shortfall[0]:.3f} | {shortfall[1]:.3f} | {recall[1]} / {recall[0]} "
        f"| {recall[2]} / {recall[0]} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--tag", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--method", default="search_supernet", help="the weight-sharing search")
    parser.add_argument("--sparse", type=float, default=0.95, help="the sparse trials' cut")
    parser.add_argument("overrides", nargs="*", help="the Hydra overrides the studies ran with")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)
    print(
        f"| seed | trials | Spearman, pruned | Spearman, recalibrated | trials ≥ {args.sparse} "
        "| pruned | recalibrated | shortfall, pruned | shortfall, recalibrated "
        "| front kept, pruned | front kept, recalibrated |"
    )
    print(f"|{' --- |' * 11}")
    pooled, recalls = [], []
    for seed in args.seeds:
        rows = proxies(args.out.resolve(), args.tag, seed, args.method, args.overrides)
        final = front(rows, 0)
        recall = (len(final), len(final & front(rows, 1)), len(final & front(rows, 2)))
        print(summary(str(seed), rows, args.sparse, recall), flush=True)
        pooled += rows
        recalls.append(recall)
    totals = tuple(sum(column) for column in zip(*recalls, strict=True))
    print(summary("pooled", pooled, args.sparse, totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
