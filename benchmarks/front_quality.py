"""Front quality of the joint search against the heuristics, at the same epoch budget.

For each seed, runs on mnist5k the joint search (as configured, and with the random
sampler) and every baseline of `nas baseline`, each with `study.max_epochs` training
epochs, as studies in one SQLite file. Prints, per method, the mean and spread over
seeds of: the hypervolume of its front on (1 - accuracy, nonzero params / reference,
FLOPs / reference) from (1, 1, 1), where the reference is the space's largest dense
architecture; the best validation accuracy with at most 10 %, 5 % and 2 % of the
reference's nonzero parameters; the epochs and trials spent; the wall time to the first
finished trial. Then accuracy at a size: for 0.5 %, 1 %, 2 %, 5 % and 10 % of the
reference's nonzero parameters and of its FLOPs, the best validation accuracy within, and
the test accuracy of the same trials (tables, and a step plot `<name>-at-size.png`).
Draws the fronts of the first seed overlaid. Re-running resumes: finished studies are not
run again, so seeds can run in parallel processes (one SQLite file per seed) and a last
run over all seeds reports.

    python benchmarks/front_quality.py                       # 3 seeds, 80 epochs each
    python benchmarks/front_quality.py --seeds 0 --methods search lamp two_stage
    python benchmarks/front_quality.py --tag lamp-space -- space.sparsity.allocation=lamp
    python benchmarks/front_quality.py --methods search_shift search_no_shift search_per_layer
    python benchmarks/front_quality.py --equal-flops --methods search_supernet search two_stage
    python benchmarks/front_quality.py --methods search_supernet_shift search_supernet
    python benchmarks/front_quality.py --trial-counts 19 38 76 --methods search_supernet
    python benchmarks/front_quality.py --tag new --methods search_supernet search@old
    python benchmarks/front_quality.py --tag a --methods search two_stage --known search@b lamp@b
    python benchmarks/front_quality.py --read --tag a --methods search search@b   # runs nothing
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from nas.cli.config_dir import CONF_DIR  # noqa: E402
from nas.prune import counting  # noqa: E402
from nas.record.measures import objective_names  # noqa: E402
from nas.report.compression import SHARES, SIZES, accuracy_at_sizes  # noqa: E402
from nas.report.front_quality import (  # noqa: E402
    hypervolume,
    non_dominated,
    normalised_objectives,
)
from nas.report.machine import cpu_name  # noqa: E402
from nas.search.configured import bound  # noqa: E402
from nas.search.reference import reference_candidate  # noqa: E402
from nas.studies.baseline import BASELINES, run_baseline  # noqa: E402
from nas.studies.joint_search import run_search  # noqa: E402

SHIFTS = "space.sparsity.shift={low:-2,high:2,step:0.5}"
# What `nas sensitivity` suggests for the reference architecture (mnist5k, seed 0), from
#   python -m nas sensitivity +space=cnn 'space.kernel_sizes=[3]' "space.sparsity.shift=..."
# with the shift grid above: a warm start from them, against LAMP.
SENSITIVITY_SHIFTS = (
    "study.warm_start_shifts="
    "{block1.conv:0.0,block2.conv:0.5,block3.conv:0.0,hidden:-0.5,head:-0.5}"
)
PER_LAYER = [  # independent per-layer ratios, the former default
    "space.sparsity.allocation=per_layer",
    "space.sparsity.low=0",
    "space.sparsity.high=0.95",
    "space.sparsity.step=0.05",
    "space.sparsity.shift=null",
]
# the last fifth of the budget polishing the front's smallest trials first
POLISH_SMALL = ["train.polish.share=0.2", "train.polish.order=smallest"]
# the joint search from scratch (train=default) and with weight sharing, then other
# samplers and sparsities
SEARCHES = {
    "search": [],
    "search_random": ["sampler=random"],
    "search_lr2": ["train.finetune_lr_scale=2.0"],  # fine-tuning at twice the learning rate
    "search_nsga2": ["sampler=nsga2"],
    "search_gp": ["sampler=gp"],
    "search_supernet": ["train=supernet"],  # weight sharing: one supernet, then fine-tuning
    "search_supernet_random": ["train=supernet", "sampler=random"],
    "search_supernet_shift": ["train=supernet", SHIFTS],  # shifts where trials are cheap
    "search_supernet_covering": ["train=supernet", "train.supernet.covering=true"],
    "search_supernet_warmup": ["train=supernet", "train.supernet.distill_warmup=1"],
    "search_supernet_short": ["train=supernet", "train.supernet.epochs=3"],  # half the FLOPs
    # the sandwich's cost per step: the largest network in every step (the former default),
    # one random network instead of two, and both
    "search_supernet_largest1": ["train=supernet", "train.supernet.largest_every=1"],
    "search_supernet_subnets3": ["train=supernet", "train.supernet.subnets=3"],
    "search_supernet_subnets3_largest1": [
        "train=supernet",
        "train.supernet.subnets=3",
        "train.supernet.largest_every=1",
    ],
    # the fine-tuning before today's (1 epoch at twice the learning rate): 2 epochs at half
    # of it, as the from-scratch search fine-tunes; and 1 epoch at the learning rate itself
    "search_supernet_ft2": [
        "train=supernet",
        "train.finetune_epochs=2",
        "train.finetune_lr_scale=0.5",
    ],
    "search_supernet_ft1": [
        "train=supernet",
        "train.finetune_epochs=1",
        "train.finetune_lr_scale=1.0",
    ],
    # the early exit where skipping fine-tuning makes a trial cost nothing: skip a sliced
    # candidate a finished trial dominates by its dense (or right-after-pruning) accuracy
    "search_supernet_exit": ["train=supernet", "study.early_exit=dense"],
    "search_supernet_exit_pruned": ["train=supernet", "study.early_exit=pruned"],
    # the last tenth of the budget polishes the front's most accurate trials, 5 epochs each
    # (train=supernet's default), and the former default without it
    "search_supernet_polish": ["train=supernet", "train.polish.share=0.1"],
    "search_supernet_nopolish": ["train=supernet", "train.polish.share=0.0"],
    "search_supernet_sn8": ["train=supernet", "train.supernet.epochs=8"],  # a longer supernet
    "search_shift": [SHIFTS],  # the rule (LAMP for cnn) with a shift per layer
    "search_no_shift": ["space.sparsity.shift=null"],  # the plain rule
    "search_shift_sensitivity": [SHIFTS, SENSITIVITY_SHIFTS],  # its first trial's shifts
    "search_per_layer": PER_LAYER,
    # levers for the small end (from scratch): fine-tuning distilled from the dense parent,
    # pruning spread over the fine-tuning, the last tenth of the budget spent polishing, and
    # twice the fine-tuning epochs
    "search_distill": ["finetune.distill=true"],
    "search_gradual": ["schedule=gradual"],
    "search_polish": ["train.polish.share=0.1"],
    "search_ft4": ["train.finetune_epochs=4"],
    "search_polish_small": POLISH_SMALL,
    "search_siblings3": ["study.siblings=3"],  # one more sibling, a quarter as dense again
    "search_gradual_polish_small": ["schedule=gradual", *POLISH_SMALL],
    "search_supernet_distill": ["train=supernet", "finetune.distill=true"],
    "search_supernet_polish_small": ["train=supernet", "train.polish.order=smallest"],
    "search_supernet_gradual": ["train=supernet", "schedule=gradual"],
    # the model mode on the cnn space's largest network (a space derived from it: a width
    # per group of coupled channels, LAMP as for cnn), against `search` on +space=cnn
    "search_model": ["+space=model", "space.model._target_=model_networks.cnn_largest"],
    # the same, every candidate sliced out of that network trained beforehand (the user's
    # situation): `python benchmarks/model_networks.py outputs/bench/trained_cnn_largest.pt`
    "search_model_trained": [
        "+space=model",
        "space.model._target_=model_networks.cnn_largest",
        "space.weights=outputs/bench/trained_cnn_largest.pt",
    ],
}
METHODS = [*SEARCHES, *BASELINES]
CURVE_SHARES = [float(share) for share in np.geomspace(0.002, 1.0, 40)]  # the step plot's


@dataclass(frozen=True)
class Measured:
    """One study's front quality."""

    hypervolume: float
    epochs: float
    train_flops: float  # NaN for studies recorded before trials counted them
    trials: int
    points: object  # normalised objectives of its finished trials
    regret: float = math.nan  # the best known front's hypervolume minus this one's
    # (size, share) -> (validation, test) accuracy of the best trial within that share of
    # the reference's size (NaN, NaN where none is that small)
    at_size: dict = field(default_factory=dict)
    first_front_s: float = math.nan  # wall seconds until its first finished trial

    def best(self, share: float, size: str = "nonzero_params") -> float:
        """The best validation accuracy within `share` of the reference's `size` (0.0
        where no trial is that small)."""
        accuracy = self.at_size[(size, share)][0]
        return 0.0 if math.isnan(accuracy) else accuracy


def machine_line() -> str:
    """`machine: <CPU> (<n> cores), torch <version>, <n> torch threads`."""
    return (
        f"machine: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )


def prepare(out: Path, threads: int | None) -> None:
    """Make the output folder, quieten Optuna and set torch's thread count (if given)."""
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if threads:
        torch.set_num_threads(threads)


def study_name(method: str, seed: int, tag: str) -> str:
    """The study a method's run of `seed` is stored as."""
    base = f"{tag}-s{seed}" if tag else f"s{seed}"
    return f"{base}-{method}"


def method_entry(entry: str) -> str:
    """A `--methods` entry, checked: METHOD, or METHOD@TAG for the method's studies under
    another tag (an earlier run to compare against)."""
    method = entry.partition("@")[0]
    if method not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {method!r} (choose from {METHODS})")
    return entry


def resolve(entry: str, seed: int, args: argparse.Namespace) -> tuple[str, str]:
    """The method a `--methods` entry runs for `seed`, and the name of its study."""
    method, _, tag = entry.partition("@")
    if not tag:
        searched = method in SEARCHES and args.search_tag is not None
        tag = args.search_tag if searched else args.tag
    return method, study_name(method, seed, tag)


def storage_file(out: Path, seed: int) -> Path:
    """The SQLite file a seed's studies are stored in (one per seed: seeds can run apart)."""
    return out / f"front_quality-s{seed}.db"


def run(entry: str, seed: int, args: argparse.Namespace, out: Path) -> optuna.Study:
    """Run (or resume) a `--methods` entry for `seed` with the shared budget; returns its
    study."""
    method, name = resolve(entry, seed, args)
    own = SEARCHES.get(method, [])
    space = next((o for o in own if o.startswith("+space=")), f"+space={args.space}")
    overrides = [
        space,
        f"seed={seed}",
        f"study.storage=sqlite:///{storage_file(out, seed)}",
        f"study.max_epochs={args.epochs}",
        "study.n_trials=10000",  # the epoch budget decides
        "device=cpu",
        *args.overrides,
    ]
    if not any(o.startswith("train=") for o in [*own, *args.overrides]):
        overrides.append("train=default")  # from scratch, whatever the space's default mode
    if method in SEARCHES:
        overrides += [f"study.name={name}", *(o for o in own if o != space)]
        command = run_search
    else:
        overrides += [f"study.name={name.removesuffix('-' + method)}", f"method={method}"]
        command = run_baseline
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="config", overrides=overrides)
    return command(cfg, launch_dir=out, run_dir=out / "runs" / name)


def reference_size(study: optuna.Study) -> tuple[int, int]:
    """Dense params and FLOPs of the largest architecture of the study's space."""
    space_config = dict(study.user_attrs["space_config"])
    space_config["sparsity"] = {}
    space = instantiate(space_config)
    in_shape, n_classes = tuple(study.user_attrs["in_shape"]), study.user_attrs["n_classes"]
    bound(space, in_shape, n_classes)  # a space derived from a network finds its layers
    candidate, _ = reference_candidate(space)
    model = space.build(candidate, in_shape, n_classes)
    return counting.dense_params(model), counting.dense_flops(model, in_shape)


def measure(
    study: optuna.Study,
    reference: tuple[int, int],
    flops_budget: float = math.inf,
    max_trials: int | None = None,
) -> Measured:
    """Front quality of `study` against `reference` (params, FLOPs), counting only the
    trials (in the order they ran) that fit, with the supernet's training, in
    `flops_budget` training FLOPs, and of those the first `max_trials` (None: all)."""
    trials = sorted(
        study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
        key=lambda trial: trial.number,
    )
    supernet = study.user_attrs.get("supernet", {})
    spent = np.cumsum([supernet.get("train_flops", 0)] + [_train_flops(t) for t in trials])
    # a prefix (the sums only grow); trials recorded without training FLOPs (NaN) all stay
    trials = trials[: int(np.sum(~(spent[1:] > flops_budget)))][:max_trials]
    names = objective_names(study)
    points = normalised_objectives(trials, *reference, names)
    sizes = dict(zip(SIZES, reference, strict=True))
    shares = sorted({*SHARES, *CURVE_SHARES})
    return Measured(
        hypervolume=hypervolume(points),
        epochs=supernet.get("train_epochs", 0) + sum(t.user_attrs["train_epochs"] for t in trials),
        train_flops=spent[len(trials)],
        trials=len(trials),
        points=points,
        at_size={
            (row.size, row.share): (row.accuracy, row.test_accuracy)
            for row in accuracy_at_sizes(trials, sizes, names, shares)
        },
        first_front_s=first_front_seconds(study),
    )


def first_front_seconds(study: optuna.Study) -> float:
    """Wall seconds from the start of the study's first trial to the end of its first
    finished one (a supernet's training included): how long a user waits for a front."""
    trials = study.get_trials(deepcopy=False)
    started = [t.datetime_start for t in trials if t.datetime_start is not None]
    finished = [t.datetime_complete for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not started or not finished:
        return math.nan
    return (min(finished) - min(started)).total_seconds()


def _train_flops(trial: optuna.trial.FrozenTrial) -> float:
    """The training FLOPs a trial recorded (NaN for trials recorded before they did)."""
    return trial.user_attrs.get("train_flops", math.nan)


def at_equal_flops(
    studies: dict[str, list[optuna.Study]],
    measured: dict[str, list[Measured]],
    references: list[tuple[int, int]],
) -> dict[str, list[Measured]]:
    """Every study measured again with, as its budget, the training FLOPs of the cheapest
    method of the same seed: what it had found when it had spent that much. In a study run
    by one worker the trials run in number order, so this is where a study given that
    FLOPs budget would have stopped (revisits aside, which are placed by budget share)."""
    budgets = [
        min(rows[index].train_flops for rows in measured.values())
        for index in range(len(references))
    ]
    return {
        method: [
            measure(study, reference, budget)
            for study, reference, budget in zip(rows, references, budgets, strict=True)
        ]
        for method, rows in studies.items()
    }


def by_trial_count(
    studies: dict[str, list[optuna.Study]], references: list[tuple[int, int]], counts: list[int]
) -> str:
    """A markdown table of every method's hypervolume (mean ± spread over seeds) on its
    studies' first N finished trials, for each N of `counts`: how the front grows with
    trials. A cell whose studies finished fewer than N says how many they did (mean)."""
    lines = table_head("method", [f"first {n}" for n in counts])
    for method, rows in studies.items():
        cells = []
        for count in counts:
            measured = [
                measure(study, reference, max_trials=count)
                for study, reference in zip(rows, references, strict=True)
            ]
            cell = spread([row.hypervolume for row in measured], 4)
            if any(row.trials < count for row in measured):
                cell += f" ({spread([row.trials for row in measured], 0)})"
            cells.append(cell)
        lines.append(f"| {method} | {' | '.join(cells)} |")
    return "\n".join(lines)


def read(entry: str, seed: int, args: argparse.Namespace, out: Path, option: str) -> optuna.Study:
    """The study a `--methods` entry names for `seed`, read and never run; a study not there
    ends the benchmark with one line naming `option`."""
    name, path = resolve(entry, seed, args)[1], storage_file(out, seed)
    missing = f"front_quality: {option} {entry}: no study {name!r} in {out}"
    if not path.exists():  # checked first: loading would make the file
        sys.exit(missing)
    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{path}")
    except KeyError:
        sys.exit(missing)


def known_points(
    entries: list[str], args: argparse.Namespace, out: Path, references: list[tuple[int, int]]
) -> list[np.ndarray]:
    """The normalised objectives of the studies `entries` (METHOD@TAG) name for each seed,
    read and never run: e.g. another budget's, for the best front known. A study not
    there ends the benchmark with one line."""
    return [
        measure(read(entry, seed, args, out, "--known"), reference).points
        for seed, reference in zip(args.seeds, references, strict=True)
        for entry in entries
    ]


def best_known(results: dict[str, list[Measured]], known: list[np.ndarray] = ()) -> float:
    """The hypervolume of the best front known: the union of every method's trials over
    every seed run, and of the `known` points (`known_points`)."""
    rows = [row.points for rows in results.values() for row in rows]
    return hypervolume(np.concatenate([*rows, *known]))


def with_regret(results: dict[str, list[Measured]], best: float) -> dict[str, list[Measured]]:
    """Every measurement with its regret: `best` minus its own hypervolume."""
    return {
        method: [replace(row, regret=best - row.hypervolume) for row in rows]
        for method, rows in results.items()
    }


def pooled_regret(results: dict[str, list[Measured]], best: float) -> float:
    """The mean over seeds of the regret of every method's trials of a seed pooled: how
    far from `best` a seed's studies get together, which no one study of it gets below."""
    seeds = range(len(next(iter(results.values()))))
    return statistics.fmean(
        best - hypervolume(np.concatenate([rows[index].points for rows in results.values()]))
        for index in seeds
    )


def spread(values: list[float], digits: int = 3) -> str:
    """`mean ± standard deviation` (the deviation only with two values or more)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table_head(first: str, columns: list[str]) -> list[str]:
    """The first two lines of a markdown table: `first`, then `columns`, as headers."""
    return [f"| {first} | {' | '.join(columns)} |", f"| --- |{' --- |' * len(columns)}"]


def table(results: dict[str, list[Measured]]) -> str:
    """A markdown table of every method's mean and spread, best hypervolume first."""
    lines = [
        "| method | hypervolume | regret | best acc. ≤10 % params | best acc. ≤5 % params "
        "| best acc. ≤2 % params | epochs | training TFLOPs | trials | first front (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = sorted(results, key=lambda m: -statistics.fmean(r.hypervolume for r in results[m]))
    for method in order:
        rows = results[method]
        lines.append(
            f"| {method} | {spread([r.hypervolume for r in rows], 4)} "
            f"| {spread([r.regret for r in rows], 4)} "
            f"| {spread([r.best(0.10) for r in rows])} | {spread([r.best(0.05) for r in rows])} "
            f"| {spread([r.best(0.02) for r in rows])} "
            f"| {spread([r.epochs for r in rows], 0)} "
            f"| {spread([r.train_flops / 1e12 for r in rows], 1)} "
            f"| {spread([r.trials for r in rows], 0)} "
            f"| {spread([r.first_front_s for r in rows], 1)} |"
        )
    return "\n".join(lines)


def at_size_tables(results: dict[str, list[Measured]]) -> str:
    """Markdown tables, one per size (nonzero parameters, FLOPs): for every method and
    every share, the mean over seeds of the best validation accuracy within that share of
    the reference, its spread, and the mean test accuracy of the same trials; `[k/n]` when
    only k of the n seeds found a network that small."""
    tables = []
    for size, label in SIZES.items():
        lines = table_head("method", [f"≤{share:.1%} {label}" for share in SHARES])
        for method, rows in results.items():
            cells = []
            for share in SHARES:
                found = [r.at_size[(size, share)] for r in rows]
                found = [pair for pair in found if not math.isnan(pair[0])]
                if not found:
                    cells.append("-")
                    continue
                seeds = f" [{len(found)}/{len(rows)}]" if len(found) < len(rows) else ""
                test = statistics.fmean(pair[1] for pair in found)
                cells.append(f"{spread([pair[0] for pair in found])} (test {test:.3f}){seeds}")
            lines.append(f"| {method} | {' | '.join(cells)} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def plot_at_size(results: dict[str, list[Measured]], path: Path) -> None:
    """Each method's best validation accuracy within each share of the reference's nonzero
    parameters, mean over seeds (a seed without so small a network counts 0), as steps."""
    figure, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors
    for index, (method, rows) in enumerate(results.items()):
        mean = [statistics.fmean(r.best(share) for r in rows) for share in CURVE_SHARES]
        ax.step(CURVE_SHARES, mean, where="post", label=method,
                color=colors[2 * index % 20 + index // 10])  # fmt: skip
    for share in SHARES:
        ax.axvline(share, color="grey", linewidth=0.6, alpha=0.5)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=1))
    ax.set_xlabel("share of the reference's nonzero parameters (log)")
    ax.set_ylabel("best validation accuracy within (mean over seeds)")
    ax.set_ylim(0.5, 1.0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Accuracy at a size: what accuracy at what size")
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


Pairs = dict[str, tuple[list[Measured], list[Measured]]]


def pairs_of(results: dict[str, list[Measured]]) -> Pairs:
    """The first method's measurements and each other method's, by the other's name."""
    first = next(iter(results.values()))
    return {method: (first, rows) for method, rows in list(results.items())[1:]}


def pairs_at_equal_flops(
    studies: dict[str, list[optuna.Study]],
    measured: dict[str, list[Measured]],
    references: list[tuple[int, int]],
    best: float,
) -> Pairs:
    """The first method and each other method measured again at the training FLOPs of
    the cheaper of the two, seed by seed (whatever else ran), with regrets from `best`."""
    first = next(iter(studies))
    pairs = {}
    for method in list(studies)[1:]:
        two = [first, method]
        cut = at_equal_flops(
            {m: studies[m] for m in two}, {m: measured[m] for m in two}, references
        )
        cut = with_regret(cut, best)
        pairs[method] = (cut[first], cut[method])
    return pairs


def mean_regret(rows: list[Measured]) -> float:
    """The mean over seeds of the regrets of `rows`."""
    return statistics.fmean(row.regret for row in rows)


def paired(pairs: Pairs, first: str, seeds: list[int]) -> str:
    """A markdown table of the `first` method's hypervolume minus each other method's, seed
    by seed (what the seeds share cancels out), from `pairs` (`pairs_of` or
    `pairs_at_equal_flops`): per seed, then the mean, its standard error and on how many
    seeds the first method was better; then each other method's mean regret over the
    first's (the ratio of the means, as a target of "at most half the regret" reads)."""
    others = list(pairs)
    differences = {
        method: [a.hypervolume - b.hypervolume for a, b in zip(*pairs[method], strict=True)]
        for method in others
    }
    ratios = {}
    for method in others:
        own, theirs = (mean_regret(rows) for rows in pairs[method])
        ratios[method] = theirs / own if own > 0 else math.inf
    lines = table_head("seed", [f"{first} − {method}" for method in others])
    for index, seed in enumerate(seeds):
        cells = " | ".join(f"{differences[method][index]:+.4f}" for method in others)
        lines.append(f"| {seed} | {cells} |")
    summary = []
    for method in others:
        values = differences[method]
        error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else math.nan
        wins = sum(value > 0 for value in values)
        summary.append(f"{statistics.fmean(values):+.4f} ± {error:.4f} SE, {wins}/{len(values)}")
    lines.append(f"| mean | {' | '.join(summary)} |")
    cells = " | ".join(f"{ratios[method]:.2f}x" for method in others)
    lines.append(f"| mean regret over {first}'s | {cells} |")
    return "\n".join(lines)


def plot(results: dict[str, list[Measured]], seed: int, path: Path) -> None:
    """Each method's front of the first seed run, `seed`: validation accuracy against the
    share of the reference's nonzero parameters (log scale)."""
    figure, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors
    for index, (method, rows) in enumerate(results.items()):
        points = rows[0].points
        front = points[non_dominated(points[:, :2])]
        front = front[front[:, 1].argsort()]
        style = (
            {"linewidth": 2.5, "zorder": 3}
            if method.partition("@")[0] in SEARCHES
            else {"linewidth": 1.2, "linestyle": "--", "alpha": 0.9}
        )
        style["color"] = colors[2 * index % 20 + index // 10]
        ax.step(front[:, 1], 1 - front[:, 0], where="post", marker="o", markersize=3,
                label=f"{method} (HV {rows[0].hypervolume:.3f})", **style)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("nonzero parameters / dense reference (log)")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0.5, 1.0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"Fronts at equal training-epoch budget (accuracy vs parameters, seed {seed})")
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80, help="training epochs per study")
    parser.add_argument(
        "--methods", nargs="+", default=METHODS, type=method_entry, metavar="METHOD[@TAG]",
        help="methods to run; METHOD@TAG reads (or runs) that method's studies under TAG",
    )  # fmt: skip
    parser.add_argument("--space", default="cnn")
    parser.add_argument("--tag", default="", help="prefix of the study names (variants)")
    parser.add_argument(
        "--search-tag", default=None, help="prefix of the searches' study names (default: --tag)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--equal-flops", action="store_true",
        help="also compare every method at the training FLOPs of each seed's cheapest",
    )  # fmt: skip
    parser.add_argument(
        "--trial-counts", type=int, nargs="+", default=[], metavar="N",
        help="also measure every method on its studies' first N finished trials",
    )  # fmt: skip
    parser.add_argument(
        "--known", nargs="+", default=[], type=method_entry, metavar="METHOD@TAG",
        help="studies only read, whose trials join the best front known (e.g. another budget's)",
    )  # fmt: skip
    parser.add_argument(
        "--read", action="store_true",
        help="only read the studies (each variant's, whatever its overrides), run none",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args(argv)
    prepare(args.out, args.threads)

    studies: dict[str, list[optuna.Study]] = {method: [] for method in args.methods}
    references = []
    out = args.out.resolve()
    for seed in args.seeds:
        for method in args.methods:
            print(f"== seed {seed}: {method}", file=sys.stderr, flush=True)
            if args.read:
                studies[method].append(read(method, seed, args, out, "--read"))
            else:
                studies[method].append(run(method, seed, args, out))
        references.append(reference_size(studies[args.methods[0]][-1]))
    results = {
        method: [measure(study, ref) for study, ref in zip(rows, references, strict=True)]
        for method, rows in studies.items()
    }
    best = best_known(results, known_points(args.known, args, out, references))
    results = with_regret(results, best)
    seeds = " ".join(map(str, args.seeds))
    overrides = f", overrides: {' '.join(args.overrides)}" if args.overrides else ""
    print(f"\n{args.space} on mnist5k, {args.epochs} epochs per study, seeds {seeds}{overrides}")
    print(machine_line())
    known = f" and {' '.join(args.known)}" if args.known else ""
    print(f"best known front (every method, every seed run here{known}): hypervolume {best:.4f}")
    print(f"every method's trials of a seed pooled: regret {pooled_regret(results, best):.4f}")
    print(table(results))
    if len(results) > 1:
        differences = paired(pairs_of(results), args.methods[0], args.seeds)
        print(f"\nPaired hypervolume differences:\n{differences}")
    path = args.out / f"front_quality{'-' + args.tag if args.tag else ''}.png"
    plot(results, args.seeds[0], path)
    print("\nAccuracy at a size (validation, mean ± spread over seeds; test of the same trials):")
    print(at_size_tables(results))
    at_size_path = path.with_name(path.stem + "-at-size.png")
    plot_at_size(results, at_size_path)
    print(f"accuracy at a size drawn in {at_size_path}")
    print(f"fronts drawn in {path}")
    if args.trial_counts:
        print("\nHypervolume on each study's first N finished trials:")
        print(by_trial_count(studies, references, args.trial_counts))
    if args.equal_flops:
        equal = with_regret(at_equal_flops(studies, results, references), best)
        print("\nAt equal training FLOPs (each seed cut at its cheapest method's):")
        print(f"every method's trials of a seed pooled: regret {pooled_regret(equal, best):.4f}")
        print(table(equal))
        if len(equal) > 1:
            pairs = pairs_at_equal_flops(studies, results, references, best)
            differences = paired(pairs, args.methods[0], args.seeds)
            print(f"\nPaired, each pair cut at the cheaper of its two:\n{differences}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
