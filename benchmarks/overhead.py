"""Framework overhead: one search trial against a bare PyTorch loop doing the same training.

What it measures, in one process and one run (wall time; process CPU time beside it, which
other jobs on a shared machine disturb less):

* framework: `TrialPipeline(...).run(candidate, seed)`, the whole trial as a search runs it:
  build the model, count its dense parameters and FLOPs, train it dense for `train.epochs`
  epochs, keep the dense state for the cache (a fresh cache of `study.dense_cache` entries:
  a miss, as an architecture's first trial), prune every layer by magnitude
  (`MagnitudePruning`, one shot), fine-tune with the masks held for `train.finetune_epochs`
  epochs, fold the masks, and evaluate all the trial records (validation / test accuracy,
  dense accuracy, sparse FLOPs, nonzero parameters, achieved sparsity, preservation metrics).
  No checkpoints: a search saves them only for trials over `study.checkpoint_over_epochs`.
* bare: a hand-written PyTorch loop doing what a user would write for the same result: the
  same model (`space.build`), Adam at the same learning rates, the same batch size and number
  of optimizer steps, batches drawn by `torch.randperm` from the in-memory tensors,
  `torch.nn.utils.prune.l1_unstructured` per layer at the same ratios, fine-tuning, folding
  the masks, then validation and test accuracy computed once.

Both use the embedded mnist5k data (`nas.data.load_mnist5k`, split as `conf/data/mnist5k.yaml`
does: no download), already on the device, the training settings of `conf/train/default.yaml`
(composed by Hydra) and one `torch.set_num_threads`. After one warm-up run of each, the two
alternate (bare, framework, bare, framework, ...) `--repeats` times; the medians and their
ratio framework / bare are printed (target: <= 1.10). To see where a framework's extra time
goes, profile it: `python -m cProfile -s cumtime benchmarks/overhead.py --repeats 1`.

Run from the repository root:

    python benchmarks/overhead.py [--device cpu] [--repeats 5] [--threads N]
        [--arch '{"channels": [16, 32], "kernel_size": 3, "hidden": 64}'] [--sparsity 0.8]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import prune
from tqdm import tqdm

# Benchmark the checkout this script lives in (run as a file, its folder comes first on the path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.checks import from_node  # noqa: E402
from nas.cli.config_dir import CONF_DIR  # noqa: E402
from nas.data import Splits, load_mnist5k, splits_to  # noqa: E402
from nas.prune.methods import (  # noqa: E402
    MagnitudePruning,
)
from nas.prune.schedule import ONE_SHOT  # noqa: E402
from nas.report.machine import cpu_name  # noqa: E402
from nas.space import Candidate  # noqa: E402
from nas.trial.dense_cache import DenseCache  # noqa: E402
from nas.trial.metrics import logits_of  # noqa: E402
from nas.trial.pipeline import TrialPipeline  # noqa: E402
from nas.trial.train import (  # noqa: E402
    TrainSettings,
    autocast_dtype,
    resolve_device,
)
from search_spaces.cnn import CNNSpace  # noqa: E402

DEFAULT_ARCH = {"channels": [16, 32], "kernel_size": 3, "hidden": 64}
TARGET_RATIO = 1.10
NOISY_SPREAD = 1.25  # slowest / fastest run of one kind beyond which timings are suspect
# The evaluation batch of nas.trial.metrics.logits_of, so that an evaluation pass costs the bare
# loop what it costs the framework and the ratio counts only the framework's extra work.
EVAL_BATCH = inspect.signature(logits_of).parameters["batch_size"].default
with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
    CONF = compose(config_name="config")  # as `python -m nas` composes it, no overrides
# A search keeps dense-trained weights of `study.dense_cache` architectures (a copy each).
DENSE_CACHE = CONF.study.dense_cache


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that wall times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the bare loop --------------------------------------------------------------------------


def bare_trial(
    space: CNNSpace,
    splits: Splits,
    candidate: Candidate,
    settings: TrainSettings,
    device: torch.device,
    seed: int,
) -> tuple[float, float]:
    """What a user writes by hand for the same result; returns (val, test) accuracy."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # batch order, as the framework draws it
    model = space.build(candidate, splits.in_shape, splits.n_classes).to(device)
    loss_fn = nn.CrossEntropyLoss()
    dtype = autocast_dtype(device, settings.mixed_precision)  # bf16 on a GPU that has it
    x, y, n = splits.train_x, splits.train_y, len(splits.train_x)

    def train(epochs: int, lr: float) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=settings.weight_decay)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(device)
            for start in range(0, n, settings.batch_size):
                index = order[start : start + settings.batch_size]
                with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
                    loss = loss_fn(model(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    train(settings.epochs, settings.lr)
    for name, ratio in candidate.sparsity.items():
        prune.l1_unstructured(model.get_submodule(name), "weight", amount=ratio)
    train(settings.finetune_epochs, settings.lr * settings.finetune_lr_scale)
    for name in candidate.sparsity:
        prune.remove(model.get_submodule(name), "weight")

    @torch.no_grad()
    def correct_share(inputs: torch.Tensor, labels: torch.Tensor) -> float:
        model.eval()
        correct = sum(
            (model(inputs[i : i + EVAL_BATCH]).argmax(1) == labels[i : i + EVAL_BATCH]).sum()
            for i in range(0, len(inputs), EVAL_BATCH)
        )
        return int(correct) / len(inputs)

    val = correct_share(splits.val_x, splits.val_y)
    test = correct_share(splits.test_x, splits.test_y)
    return val, test


def machine_line(device: torch.device) -> str:
    parts = [
        f"cpu: {cpu_name()}",
        f"threads: {torch.get_num_threads()}",
        f"torch {torch.__version__}",
        f"python {platform.python_version()}",
        f"device: {device}",
    ]
    if device.type == "cuda":
        parts.append(torch.cuda.get_device_name(device))
    return " | ".join(parts)


def wall(fn: Callable[[], object], device: torch.device) -> tuple[float, float, object]:
    """Wall seconds and process CPU seconds (all threads) of `fn()`, and what it returned."""
    sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return time.perf_counter() - started, time.process_time() - cpu_started, out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for both (default: torch's)"
    )
    parser.add_argument(
        "--arch", type=json.loads, default=DEFAULT_ARCH, help=f"CNN arch as JSON ({DEFAULT_ARCH})"
    )
    parser.add_argument(
        "--sparsity", type=float, default=0.8, help="ratio of every layer (default 0.8)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="dense epochs (default 3)")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="(default 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="(default 64)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)  # one setting, for both loops
    device = resolve_device(args.device)
    overrides = {
        name: value
        for name, value in (
            ("epochs", args.epochs),
            ("finetune_epochs", args.finetune_epochs),
            ("batch_size", args.batch_size),
        )
        if value is not None
    }
    train = OmegaConf.to_container(CONF.train)  # conf/train/default.yaml's values
    settings = replace(
        from_node(TrainSettings, train, "train", besides=("polish", "supernet")), **overrides
    )
    splits = splits_to(load_mnist5k(val_fraction=0.15, test_fraction=0.15, split_seed=0), device)
    space = CNNSpace()
    candidate = Candidate(
        arch=args.arch,
        sparsity={name: args.sparsity for name in space.layer_names(args.arch)},
    )

    def pipeline() -> TrialPipeline:
        """A search's pipeline with a fresh dense cache: every run trains densely (a miss)."""
        return TrialPipeline(
            space, splits, MagnitudePruning(), settings, device, ONE_SHOT, DenseCache(DENSE_CACHE)
        )

    steps = math.ceil(len(splits.train_x) / settings.batch_size)

    def bare() -> tuple[float, float]:
        return bare_trial(space, splits, candidate, settings, device, args.seed)

    def framework():
        return pipeline().run(candidate, args.seed)[0]

    print(machine_line(device))
    print(
        f"candidate: {space.describe(candidate)}, sparsity {args.sparsity} on "
        f"{', '.join(candidate.sparsity)}; mnist5k: {len(splits.train_x)} train / "
        f"{len(splits.val_x)} val / {len(splits.test_x)} test"
    )
    print(
        f"training: {settings.epochs} dense + {settings.finetune_epochs} fine-tuning epochs x "
        f"{steps} steps of batch {settings.batch_size} (Adam, lr {settings.lr}, fine-tuning lr "
        f"{settings.lr * settings.finetune_lr_scale})"
    )

    wall(bare, device)  # warm-up: allocator, kernels, lazy imports
    wall(framework, device)
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "framework": []}
    for _ in (progress := tqdm(range(args.repeats), desc="bare / framework", unit="pair")):
        *seconds, (bare_val, bare_test) = wall(bare, device)
        times["bare"].append(tuple(seconds))
        *seconds, result = wall(framework, device)
        times["framework"].append(tuple(seconds))
        progress.set_postfix_str(
            f"bare {times['bare'][-1][0]:.3f}s framework {times['framework'][-1][0]:.3f}s"
        )
    progress.close()

    medians = {}
    for name, label in (("bare", "bare loop"), ("framework", "framework")):
        walls, cpus = [t[0] for t in times[name]], [t[1] for t in times[name]]
        medians[name] = statistics.median(walls), statistics.median(cpus)
        print(
            f"{label:<10} median {medians[name][0]:.3f} s wall, {medians[name][1]:.3f} s CPU "
            f"(wall runs: {fmt(walls)})"
        )
    ratio = medians["framework"][0] / medians["bare"][0]
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    print(f"ratio framework / bare: {ratio:.3f} ({verdict} the {TARGET_RATIO:.2f} target)")
    cpu_ratio = medians["framework"][1] / medians["bare"][1]
    min_ratio = min(t[0] for t in times["framework"]) / min(t[0] for t in times["bare"])
    print(f"CPU-time ratio {cpu_ratio:.3f}, ratio of the fastest runs {min_ratio:.3f}")
    spread = max(max(t[0] for t in runs) / min(t[0] for t in runs) for runs in times.values())
    if spread > NOISY_SPREAD:
        print(
            f"NOISY: the slowest run took {spread:.2f}x the fastest; other jobs share this "
            "machine? Rerun, with more --repeats or --threads 1 (threads waiting for a busy "
            "core slow down many times over)."
        )
    print(
        f"same work check: val accuracy bare {bare_val:.4f} framework {result.accuracy:.4f}; "
        f"test accuracy bare {bare_test:.4f} framework {result.test_accuracy:.4f}"
    )
    return ratio


def fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


if __name__ == "__main__":
    main()
