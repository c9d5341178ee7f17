"""Memory of a long search: resident memory after every trial of one in-process search.

    python benchmarks/memory.py                        # 50 trials of +space=cnn
    python benchmarks/memory.py --trials 20 --space resnet train.epochs=1 train.finetune_epochs=1

The search is the real one: conf/ is composed with Hydra's compose API (as
tests/conftest.py does) and handed to `nas.studies.joint_search.run_search`, with the study
in a SQLite file of a temporary folder (the repository's outputs/ is never touched). Trailing
arguments are extra Hydra overrides.

`run_search` builds its own Optuna callbacks, so the benchmark observes trials through one
of them, called once after every trial: `nas.search.callbacks.SearchProgress.__call__` is wrapped
(unittest.mock, for the duration of the search only) to call the original, then read the
resident set size (VmRSS of /proc/self/status). The trial's objective has returned by then,
so its model, optimiser and masks are out of scope. Nothing else in `nas` is changed, and
`gc.collect()` is not called before a measurement (the figure is what a user gets) unless
`--gc` asks for it. To find what grows: `--objects` counts the live tensors, nn.Modules and
optimisers after each trial; `--trim` also measures after glibc's malloc_trim(0), which
separates live memory from freed heap the allocator keeps.

Pass: the largest RSS after trials 6..N is at most 1.2 x the RSS after trial 5.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
BASELINE_TRIAL = 5  # the reference: RSS once the search has warmed up
LIMIT = 1.2  # the peak after the baseline may be at most this many times the baseline


def proc_status_kib(field: str) -> int | None:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (getrusage's maxrss)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS


def rss_mib() -> float:
    """The resident memory now, in MiB (the peak so far where /proc is missing)."""
    kib = proc_status_kib("VmRSS")
    return kib / 1024 if kib is not None else peak_rss_mib()


def live_objects() -> str:
    """What the garbage collector sees alive: torch tensors (with the MiB of their CPU
    storages, a shared storage once), nn.Modules and optimisers."""
    import torch
    from torch import nn

    tensors, modules, optimizers, storages = 0, 0, 0, {}
    with warnings.catch_warnings():  # isinstance() on torch's deprecated aliases warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor):
                    tensors += 1
                    if obj.device.type == "cpu" and not obj.is_meta:
                        storage = obj.untyped_storage()
                        storages[storage.data_ptr()] = storage.nbytes()
                elif isinstance(obj, nn.Module):
                    modules += 1
                elif isinstance(obj, torch.optim.Optimizer):
                    optimizers += 1
            except Exception:  # a half-built object, a tensor subclass without storage
                continue
    tensor_mib = sum(storages.values()) / 2**20
    return f"tensors {tensors} ({tensor_mib:.1f} MiB), modules {modules}, optimisers {optimizers}"


def malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), which hands the heap's free pages back to the OS; None
    where the C library has none (macOS, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0)


def machine() -> str:
    """CPU model and count, Python, torch and Optuna versions."""
    import optuna
    import torch

    from nas.report.machine import cpu_name

    cpu = cpu_name()
    threads = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} CPUs ({threads} torch threads), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"optuna {optuna.__version__}"
    )


def compose_config(overrides: list[str]):
    """conf/ composed with `overrides`, as `python -m nas search` would."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="config", overrides=overrides)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Trailing KEY=VALUE arguments are extra Hydra overrides (e.g. train.epochs=1).",
    )
    parser.add_argument("--trials", type=int, default=50, help="trials to run (default 50)")
    parser.add_argument("--space", default="cnn", help="search space, conf/space/NAME (cnn)")
    parser.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    parser.add_argument(
        "--gc", action="store_true", help="gc.collect() before each measurement (not by default)"
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="after each measurement, glibc malloc_trim(0) and measure again: what is left is "
        "live memory, the difference freed heap the allocator kept (changes later figures)",
    )
    parser.add_argument(
        "--objects",
        action="store_true",
        help="also count live tensors, nn.Modules and optimisers after each trial",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    if args.trials <= BASELINE_TRIAL:
        parser.error(f"--trials must be more than {BASELINE_TRIAL} (the baseline trial)")
    return args


def growth(samples: list[float], what: str) -> tuple[str, float]:
    """Summary lines for one series of per-trial MiB figures, and its ratio."""
    n = len(samples)
    baseline, peak = samples[BASELINE_TRIAL - 1], max(samples[BASELINE_TRIAL:])
    ratio = peak / baseline
    lines = (
        f"{what} after trial {BASELINE_TRIAL}: {baseline:.1f} MiB\n"
        f"peak {what} after trials {BASELINE_TRIAL + 1}..{n}: {peak:.1f} MiB; "
        f"after trial {n}: {samples[-1]:.1f} MiB\n"
        f"ratio peak / after trial {BASELINE_TRIAL}: {ratio:.3f}"
    )
    return lines, ratio


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))  # search_spaces/ is imported from the repository root
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from nas.search.callbacks import SearchProgress
    from nas.studies.joint_search import run_search

    trim = malloc_trim() if args.trim else None
    if args.trim and trim is None:
        print("--trim: this C library has no malloc_trim; ignored", file=sys.stderr)
    start_mib = rss_mib()
    rss: list[float] = []  # MiB after each finished trial, as the process holds it
    trimmed: list[float] = []  # the same after malloc_trim (--trim)
    original = SearchProgress.__call__

    def observed(self, study, trial) -> None:
        original(self, study, trial)  # the progress bar and the trial's log line first
        if args.gc:
            gc.collect()
        rss.append(rss_mib())
        line = f"trial {len(rss):3d} (#{trial.number}, {trial.state.name}): RSS {rss[-1]:7.1f} MiB"
        if trim is not None:
            trim()
            trimmed.append(rss_mib())
            line += f", after malloc_trim {trimmed[-1]:7.1f} MiB"
        if args.objects:
            line += f"; {live_objects()}"
        tqdm.write(line)

    with tempfile.TemporaryDirectory(prefix="nas-memory-") as folder:
        tmp = Path(folder)
        overrides = [
            f"+space={args.space}",
            f"study.n_trials={args.trials}",
            "study.name=memory",
            f"study.storage=sqlite:///{tmp / 'memory.db'}",
            f"seed={args.seed}",
            *args.overrides,
        ]
        cfg = compose_config(overrides)
        print(f"overrides: {' '.join(overrides)}", flush=True)
        print(f"RSS before the search: {start_mib:.1f} MiB", flush=True)
        started = time.perf_counter()
        with mock.patch.object(SearchProgress, "__call__", observed):
            run_search(cfg, launch_dir=tmp, run_dir=tmp / "run")
        seconds = time.perf_counter() - started
    end_mib = rss_mib()

    if len(rss) <= BASELINE_TRIAL:
        print(f"only {len(rss)} trials were observed: no baseline", file=sys.stderr)
        return 1
    summary, ratio = growth(rss, "RSS")
    verdict = "PASS" if ratio <= LIMIT else "FAIL"
    hwm = proc_status_kib("VmHWM")
    dense_cache = OmegaConf.select(cfg, "study.dense_cache", default="none")
    print()
    print(
        f"search: {len(rss)} trials in {seconds:.0f}s; {' '.join(overrides[:2])} "
        f"{' '.join(args.overrides)} (study.dense_cache={dense_cache})"
        f"{'; gc.collect() before each measurement' if args.gc else ''}"
    )
    print(f"{summary} (limit {LIMIT}): {verdict}")
    if trimmed:
        print(growth(trimmed, "RSS after malloc_trim")[0])
    print(f"RSS after the search (front, plots): {end_mib:.1f} MiB")
    peak = hwm / 1024 if hwm is not None else peak_rss_mib()
    print(f"process high-water mark (VmHWM, peaks inside trials too): {peak:.1f} MiB")
    print(f"machine: {machine()}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
