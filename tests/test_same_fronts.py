"""Refactoring changes no number: small searches in every mode give, trial by trial, the
parameters, objective values and budget figures recorded in tests/data/same_fronts.json,
on the machine recorded there (another CPU can round differently: the test skips).

After a change that is meant to move the numbers, regenerate that file with
`python tests/test_same_fronts.py` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir

from nas.studies.joint_search import run_search
from tests.conftest import skip_unless_recorded_here, this_machine

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GOLDEN = Path(__file__).resolve().parent / "data" / "same_fronts.json"
# the cnn space as recorded, before it offered 4 channels by default
SMALL = (
    "+space=cnn", "+debug=smoke", "study.n_trials=5", "study.dense_cache=4",
    "space.sparsity.shift=null", "space.channels=[8,16,32]",
)  # fmt: skip
# One small search per way a trial gets, prunes and fine-tunes its weights.
MODES = {
    "default": (),
    "channel": ("prune=channel",),
    "gradual": ("schedule=gradual", "train.finetune_epochs=2", "schedule.every=3"),
    "distill": ("finetune.distill=true",),
    "supernet": ("train=supernet", "train.supernet.epochs=1", "train.epochs=1"),
    "nm": ("prune=nm",),
    "early_exit": ("study.early_exit=pruned", "study.early_exit_margin=0.0"),
    "polish": ("train.polish.share=0.4", "train.polish.epochs=2"),
}
RECORDED = ("train_epochs", "train_flops", "dense_cached", "dense_sliced", "removed_channels")


def front_record(mode: str, root: Path) -> list[dict]:
    """Every finished trial of `mode`'s small search, run in `root`: number, params,
    values and the budget figures."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(
            config_name="config",
            overrides=[*SMALL, *MODES[mode], f"study.name={mode}",
                       f"study.storage=sqlite:///{root / 'study.db'}"],
        )  # fmt: skip
    study = run_search(cfg, launch_dir=root, run_dir=root / "run")
    return [
        {
            "number": t.number,
            "params": t.params,
            "values": t.values,
            **{key: t.user_attrs.get(key) for key in RECORDED},
        }
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    ]


def recorded() -> dict:
    """The recorded trials of every mode, by mode."""
    return json.loads(GOLDEN.read_text())["modes"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_small_search_gives_the_recorded_trials(mode, tmp_path):
    skip_unless_recorded_here(json.loads(GOLDEN.read_text())["machine"])
    expected = recorded()[mode]
    got = json.loads(json.dumps(front_record(mode, tmp_path)))  # tuples as lists
    assert [t["number"] for t in got] == [t["number"] for t in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["params"] == pytest.approx(theirs["params"], abs=1e-12), mine["number"]
        assert mine["values"] == pytest.approx(theirs["values"], rel=1e-9), mine["number"]
        for key in ("train_epochs", "train_flops"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9), (mine["number"], key)
        for key in ("dense_cached", "dense_sliced", "removed_channels"):
            assert mine[key] == theirs[key], (mine["number"], key)


if __name__ == "__main__":
    import tempfile

    records = {}
    for mode in MODES:
        with tempfile.TemporaryDirectory() as folder:
            records[mode] = front_record(mode, Path(folder))
    golden = {"machine": this_machine(), "modes": records}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
