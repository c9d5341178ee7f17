"""What knowledge distillation while fine-tuning does at high sparsity.

For each seed, prunes the cnn space's largest architecture with LAMP at a sweep of
overall sparsities (`nas baseline method=lamp`), fine-tuning once with the plain loss and
once with `finetune.distill=true`, and prints per sparsity the mean ± standard deviation
over seeds of validation accuracy, agreement with the dense parent, KL divergence from
it, expected calibration error and the worst class's accuracy. Both runs of a seed share
the dense parent (same seed, same architecture), so the fine-tuning loss is the only
difference. Draws accuracy and agreement against sparsity. Re-running resumes.

    python benchmarks/distill.py                                   # seeds 0 1 2
    python benchmarks/distill.py --tag t2 -- finetune.temperature=2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from front_quality import machine_line, prepare, spread  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from nas.cli.config_dir import CONF_DIR  # noqa: E402
from nas.studies.baseline import run_baseline  # noqa: E402

MODES = {"plain": "finetune.distill=false", "distill": "finetune.distill=true"}
METRICS = ("accuracy", "agreement", "kl_divergence", "ece", "worst_class_accuracy")


def study_name(mode: str, seed: int, tag: str) -> str:
    """The study of `mode` for `seed`; a tag keeps a variant's studies apart."""
    return f"distill{'-' + tag if tag else ''}-s{seed}-{mode}"


def run(mode: str, seed: int, args: argparse.Namespace) -> optuna.Study:
    """Run (or resume) the LAMP sweep of `seed` fine-tuned the `mode` way."""
    overrides = [
        "+space=cnn",
        f"seed={seed}",
        f"study.storage=sqlite:///{args.out.resolve() / 'distill.db'}",
        f"study.name={study_name(mode, seed, args.tag)}",
        f"study.n_trials={args.levels}",
        "method=lamp",
        f"baseline.sparsity.low={args.low}",
        f"baseline.sparsity.high={args.high}",
        "device=cpu",
        MODES[mode],
        *args.overrides,
    ]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="config", overrides=overrides)
    name = study_name(mode, seed, args.tag)
    return run_baseline(cfg, launch_dir=args.out, run_dir=args.out / "runs" / name)


def by_sparsity(study: optuna.Study) -> dict[float, dict[str, float]]:
    """Each finished trial's metrics, keyed by its overall sparsity."""
    rows = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        metrics = {name: trial.user_attrs.get(name) for name in METRICS}
        metrics["accuracy"] = trial.values[0]
        rows[trial.params["sparsity.overall"]] = metrics
    return rows


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: one row per sparsity, each metric for plain and distilled fine-tuning."""
    header = ["sparsity"] + [f"{m} {mode}" for m in METRICS for mode in MODES]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for level in sorted(results["plain"][0]):
        cells = [f"{level:.3f}"]
        for metric in METRICS:
            for mode in MODES:
                cells.append(spread([seed[level][metric] for seed in results[mode]]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """Accuracy and agreement against sparsity, mean ± std over seeds, both modes."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    levels = sorted(results["plain"][0])
    for ax, metric, label in zip(
        axes, ("accuracy", "agreement"), ("validation accuracy", "agreement with dense parent"),
        strict=True,
    ):  # fmt: skip
        densities = [1 - level for level in levels]
        for mode, style in zip(MODES, ("--o", "-s"), strict=True):
            values = [[seed[level][metric] for seed in results[mode]] for level in levels]
            means = [statistics.fmean(v) for v in values]
            stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            ax.errorbar(densities, means, yerr=stds, fmt=style, capsize=3, label=mode)
        ax.set_xscale("log")  # density (1 - sparsity) on a log scale, sparser to the right
        ax.invert_xaxis()
        ax.set_xticks(densities, [f"{level:.1%}" for level in levels])
        ax.minorticks_off()
        ax.set_xlabel("overall sparsity (LAMP; log density scale)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    figure.suptitle("Fine-tuning with and without distillation from the dense parent")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--levels", type=int, default=5, help="sparsities in the sweep")
    parser.add_argument("--low", type=float, default=0.8, help="lowest overall sparsity")
    parser.add_argument("--high", type=float, default=0.99, help="highest overall sparsity")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--tag", default="", help="prefix of a variant's study names")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args(argv)
    prepare(args.out, args.threads)

    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for seed in args.seeds:
        for mode in MODES:
            print(f"== seed {seed}: {mode}", file=sys.stderr, flush=True)
            results[mode].append(by_sparsity(run(mode, seed, args)))

    overrides = f", overrides: {' '.join(args.overrides)}" if args.overrides else ""
    print(f"\ncnn's largest architecture, LAMP, seeds {' '.join(map(str, args.seeds))}{overrides}")
    print(machine_line())
    print(table(results))
    path = args.out / f"distill{'-' + args.tag if args.tag else ''}.png"
    plot(results, path)
    print(f"drawn in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
