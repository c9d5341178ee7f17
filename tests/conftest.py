from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nas.data import Splits, synthetic_images
from nas.report.machine import cpu_name
from nas.search.polish import Polish
from nas.search.settings import StudySettings
from nas.supernet.sandwich import SupernetSettings
from nas.trial.distill import Distillation
from nas.trial.train import TrainSettings

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
# The user attrs every finished trial carries: scripts and the dashboard rely on these names.
TRIAL_USER_ATTRS = {
    "arch",
    "sparsity_target",
    "sparsity_achieved",
    "dense_params",
    "dense_flops",
    "dense_accuracy",
    "test_accuracy",
    "seconds",
    "train_epochs",
    "resumed_from_epoch",
    "removed_channels",
    "dense_cached",
    "dense_sliced",
    "recalibration_epochs",
    "train_flops",
    "finetune_skipped",
    "macro_f1",
    "worst_class_accuracy",
    "agreement",
    "kl_divergence",
    "ece",
}


def pytest_configure(config) -> None:
    """Let the commands the tests start see Ctrl-C even when the suite itself ignores it
    (started in the background by a shell without job control, e.g. `nohup pytest &`):
    an ignored SIGINT is inherited, a handled one is reset to the default on exec."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_splits() -> Splits:
    """240 / 120 / 120 generated 12x12 images of 4 classes."""
    return synthetic_images(
        n_samples=480,
        n_classes=4,
        image_size=12,
        noise=1.0,
        val_fraction=0.25,
        test_fraction=0.25,
        split_seed=0,
    )


# Each config node a settings dataclass reads: (the dataclass, the overrides that compose
# the node, the node's keys that other code reads).
SETTINGS_NODES = {
    "study": (StudySettings, (), ()),
    "train": (TrainSettings, (), ("polish", "supernet")),
    "train.polish": (Polish, (), ()),
    "train.supernet": (SupernetSettings, ("train=supernet",), ()),
    "finetune": (Distillation, (), ("distill",)),
}


@functools.cache
def composed(*overrides: str) -> dict:
    """conf/ composed with `overrides`, as the CLI would, unresolved, as plain containers."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)))


def conf_defaults(node: str, **values) -> dict:
    """The arguments of the settings dataclass that reads config `node` (see
    `SETTINGS_NODES`): conf/'s defaults, with `values` put in. conf/ holds every default;
    the dataclasses hold none."""
    settings, overrides, _ = SETTINGS_NODES[node]
    config = composed(*overrides)
    for key in node.split("."):
        config = config[key]
    names = [field.name for field in dataclasses.fields(settings)]
    assert set(values) <= set(names), f"{node} has no setting {set(values) - set(names)}"
    return copy.deepcopy({name: config[name] for name in names}) | values


@pytest.fixture
def compose_config():
    """Compose conf/ with overrides, as the CLI would, without starting a process."""

    def _compose(*overrides: str):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


def nas_command(*args: str) -> list[str]:
    """argv of `python -m nas ARGS` with this interpreter."""
    return [sys.executable, "-m", "nas", *args]


def run_nas(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m nas ARGS` in `cwd` to its end, capturing its text output."""
    return subprocess.run(
        nas_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def forked_nas(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Like `run_nas`, but the process is forked from a server that has imported the
    command's modules already (tests/nas_forks.py): seconds faster, for tests that are
    not about the start of the command. `env` adds variables to its environment, for
    what reads them after the start (not PYTHONPATH)."""
    server = fork_server()
    with tempfile.TemporaryDirectory() as output:
        stdout, stderr = Path(output, "stdout"), Path(output, "stderr")
        run = {
            "args": args,
            "cwd": str(cwd),
            "env": env or {},
            "timeout": timeout,
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        server.stdin.write(json.dumps(run) + "\n")
        server.stdin.flush()
        answer = server.stdout.readline()
        assert answer, "the fork server of forked_nas has died"
        return subprocess.CompletedProcess(
            nas_command(*args), int(answer), stdout.read_text(), stderr.read_text()
        )


@functools.cache
def fork_server() -> subprocess.Popen:
    """The server of `forked_nas`, started at its first use; it ends with the tests, when
    its stdin closes."""
    script = Path(__file__).with_name("nas_forks.py")
    return subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """`result` exited with 2 after one stderr line holding every fragment."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="session")
def cli_study(tmp_path_factory) -> Path:
    """A launch folder whose outputs/smoke.db holds a finished 3-trial smoke study
    `cnn-smoke` and an empty one, `empty`."""
    folder = tmp_path_factory.mktemp("retrain-cli")
    result = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=3", cwd=folder)
    assert result.returncode == 0, result.stderr
    storage = f"sqlite:///{folder}/outputs/smoke.db"
    optuna.create_study(
        study_name="empty", storage=storage, directions=["maximize", "minimize", "minimize"]
    )
    return folder


# Ways a saved file gets broken: cut short (a disk that filled up, a copy that died) or
# overwritten with other bytes.
DAMAGES = ("cut short", "random bytes")


def damage(path: Path, how: str) -> None:
    """Break the file at `path` in one of the `DAMAGES`, keeping its name."""
    data = path.read_bytes()
    if how == "cut short":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(random.Random(0).randbytes(len(data)))


def read_csv(path: Path) -> list[dict]:
    """The rows of the CSV file at `path`, as dicts of strings."""
    with path.open() as file:
        return list(csv.DictReader(file))


def report_rows(launch: Path, stem: str) -> tuple[Path, list[dict], list[dict], list[dict]]:
    """The run folder of the one report under `launch` that wrote `<stem>.csv`, with the
    rows of its front, its runs and their summary."""
    (run_dir,) = [p.parent for p in (launch / "outputs" / "runs").glob(f"*/{stem}.csv")]
    runs, summary = read_csv(run_dir / f"{stem}.csv"), read_csv(run_dir / f"{stem}_summary.csv")
    return run_dir, read_csv(run_dir / "front.csv"), runs, summary


def assert_a_second_report_reuses_every_run(
    launch: Path, option: str, stem: str, first: Path, runs: int, summary: list[dict]
) -> None:
    """The same report of the smoke study again, with `option`: it trains nothing, reuses
    all `runs` and writes the summary the first one (in `first`) wrote."""
    again = forked_nas("report", "study.name=cnn-smoke", "+debug=smoke", option, cwd=launch)
    assert again.returncode == 0, again.stderr
    assert f"(0 trained, {runs} reused from the study)" in again.stdout
    (second,) = [
        p.parent for p in (launch / "outputs" / "runs").glob(f"*/{stem}.csv") if p.parent != first
    ]
    assert read_csv(second / f"{stem}_summary.csv") == summary


def this_machine() -> str:
    """This machine as docs/regenerate.sh writes it into docs/figures.txt: CPU model,
    cores and torch version."""
    return f"{cpu_name()} ({os.cpu_count()} cores), {torch_version()}"


def torch_version() -> str:
    import torch

    return f"torch {torch.__version__}"


def skip_unless_recorded_here(recorded: str) -> None:
    """Skip a test that compares floating-point results with figures recorded on machine
    `recorded` when this is another machine: another CPU can round differently, and a
    search then takes other paths."""
    here = this_machine()
    if here != recorded:
        pytest.skip(f"figures recorded on {recorded}; this machine is {here}")
