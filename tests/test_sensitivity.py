"""Layer sensitivity: each layer pruned alone from the dense weights, the table, the caps
it derives, and the caps (`space.sparsity.layer_high`) in a search."""

from __future__ import annotations

import csv
import shlex
import warnings

import optuna
import pytest
import torch
import yaml

from nas.cli import commands
from nas.errors import UsageError
from nas.prune.methods import MagnitudePruning
from nas.search.reference import reference_candidate
from nas.space import SparsityGrid
from nas.studies.sensitivity import Point, layer_bounds, measure, write_csv
from nas.trial.dense_cache import DenseCache
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from tests.conftest import assert_one_line_error, conf_defaults, forked_nas

SPACE = CNNSpace(blocks=(2, 2), channels=(8,), kernel_sizes=(3,), hidden=(16,))
ARCH = {"channels": [8, 8], "kernel_size": 3, "hidden": 16}
LAYERS = ["block1.conv", "block2.conv", "hidden", "head"]
GRID = [0.5, 0.9]
SEED = 7
# A one-block CNN without hidden layer: sensitivity and search on it take seconds.
TINY = ("+space=cnn", "+debug=smoke", "space.blocks=[1,1]", "space.hidden=[0]")


def study_at(folder) -> tuple[str, str]:
    """The overrides naming the smoke study `cnn-smoke` in the smoke storage of `folder`."""
    return "study.name=cnn-smoke", f"study.storage={storage(folder)}"


def storage(folder) -> str:
    """The study storage of a `+debug=smoke` command run in `folder`."""
    return f"sqlite:///{folder}/outputs/smoke.db"


class Recording(TrialPipeline):
    """A pipeline that keeps each candidate it ran with the model it returned."""

    def run(self, candidate, seed, *args, **kwargs):
        result, model = super().run(candidate, seed, *args, **kwargs)
        self.runs.append((candidate, {k: v.clone() for k, v in model.state_dict().items()}))
        return result, model


@pytest.fixture(scope="module")
def measured(tiny_splits):
    """`measure` over GRID for ARCH (1 dense epoch, no fine-tuning), and the pipeline."""
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=0))
    pipeline = Recording(
        SPACE, tiny_splits, MagnitudePruning(), settings, torch.device("cpu"),
        dense_cache=DenseCache(1),
    )  # fmt: skip
    object.__setattr__(pipeline, "runs", [])
    candidate, _ = reference_candidate(SPACE)
    dense, points = measure(pipeline, candidate, SEED, GRID)
    return pipeline, dense, points


def test_each_layer_is_pruned_alone_from_the_dense_weights(measured):
    pipeline, _, _ = measured
    dense = pipeline.dense_cache.get(ARCH, SEED).weights
    assert [list(c.sparsity.items())[0] for c, _ in pipeline.runs] == [
        (layer, sparsity) for layer in LAYERS for sparsity in GRID
    ]
    for candidate, weights in pipeline.runs:
        [(pruned, sparsity)] = candidate.sparsity.items()
        for key, value in weights.items():
            if key != f"{pruned}.weight":
                assert torch.equal(value, dense[key]), (pruned, key)
        weight, before = weights[f"{pruned}.weight"], dense[f"{pruned}.weight"]
        zeros = int((weight == 0).sum())
        assert zeros == round(sparsity * weight.numel())
        kept = weight != 0
        assert torch.equal(weight[kept], before[kept])  # the survivors keep their values
        assert before[~kept].abs().max() <= before[kept].abs().min()  # the smallest went


def test_the_table_has_one_row_per_layer_and_sparsity(measured, tmp_path):
    _, dense, points = measured
    write_csv(points, tmp_path / "sensitivity.csv")
    with (tmp_path / "sensitivity.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["layer"], float(row["sparsity"])) for row in rows] == [
        (layer, sparsity) for layer in LAYERS for sparsity in GRID
    ]
    assert list(rows[0]) == ["layer", "sparsity", "accuracy", "accuracy_drop", "nonzero_params"]
    for row in rows:
        drop = dense - float(row["accuracy"])
        assert float(row["accuracy_drop"]) == pytest.approx(drop, abs=1e-6)
    for layer in LAYERS:
        nonzero = [int(row["nonzero_params"]) for row in rows if row["layer"] == layer]
        assert nonzero[0] > nonzero[1]


def test_a_cap_is_the_highest_sparsity_within_tolerance_else_dense():
    def points(layer, drops):
        grid = [0.5, 0.8, 0.9, 0.95]
        return [Point(layer, s, 0.9 - d, d, 0) for s, d in zip(grid, drops, strict=True)]

    made_up = [
        *points("steady", [0.0, 0.005, 0.01, 0.2]),  # a drop of exactly the tolerance counts
        *points("noisy", [0.0, 0.05, 0.0, 0.3]),  # the highest within, not the first beyond
        *points("fragile", [0.02, 0.1, 0.3, 0.5]),
        *points("robust", [-0.01, 0.0, 0.0, 0.004]),
    ]
    assert layer_bounds(made_up, 0.01) == {
        "steady": 0.9, "noisy": 0.9, "fragile": 0.0, "robust": 0.95
    }  # fmt: skip
    assert layer_bounds(made_up, 0.0)["steady"] == 0.5


def test_layer_high_caps_the_sampled_ratios_on_the_step_grid():
    grid = SparsityGrid(
        low=0.2, high=0.9, step=0.1, layer_high={"block1.conv": 0.55, "head": 0.1, "hidden": 0.95}
    )
    assert grid.bounds("block1.conv") == (0.2, 0.5)  # down to the grid
    assert grid.bounds("head") == (0.1, 0.1)  # below low: fixed at the cap
    assert grid.bounds("hidden") == grid.bounds("block2.conv") == (0.2, 0.9)
    space = CNNSpace(blocks=(2, 2), hidden=(16,), sparsity=grid)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set[float]] = {name: set() for name in LAYERS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a range does not fit its step
        for _ in range(40):
            trial = study.ask()
            for name, ratio in space.sample(trial).sparsity.items():
                seen[name].add(ratio)
            study.tell(trial, 0.0)
    assert seen["block1.conv"] == {0.2, 0.3, 0.4, 0.5}
    assert seen["head"] == {0.1}
    assert max(seen["block2.conv"]) > 0.5


@pytest.mark.slow
def test_layer_high_caps_what_an_allocation_rule_gives(tiny_splits):
    grid = SparsityGrid(low=0.9, high=0.9, allocation="lamp", layer_high={"head": 0.2, "x": 0.1})
    space = CNNSpace(blocks=(2, 2), channels=(8,), kernel_sizes=(3,), hidden=(16,), sparsity=grid)
    candidate, _ = reference_candidate(space)
    assert candidate.allocation.caps == {"head": 0.2}  # only the candidate's own layers
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=0))
    pipeline = TrialPipeline(space, tiny_splits, MagnitudePruning(), settings, torch.device("cpu"))
    result, _ = pipeline.run(candidate, SEED)
    assert result.sparsity_target["head"] == 0.2
    assert abs(result.sparsity_achieved["head"] - 0.2) < 0.02
    assert result.sparsity_target["block2.conv"] > 0.5  # the others as LAMP shares them out


@pytest.mark.parametrize("caps", [{"head": 1.0}, {"head": -0.1}, {"head": "high"}, "head"])
def test_a_bad_cap_is_refused(caps):
    with pytest.raises(ValueError, match="layer_high"):
        SparsityGrid(layer_high=caps)


@pytest.mark.slow
def test_sensitivity_writes_caps_that_a_search_takes_as_printed(tmp_path, compose_config, capsys):
    result = forked_nas("sensitivity", *TINY, "sensitivity.grid=[0.5,0.9]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "architecture: conv 32 k5 > head (the space's largest)" in result.stdout
    [run_dir] = (tmp_path / "outputs" / "runs").iterdir()
    for name in ("sensitivity.csv", "sensitivity.png", "sensitivity.html", "plotly.min.js"):
        assert (run_dir / name).stat().st_size > 0, name
    with (run_dir / "sensitivity.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 2 * 2
    written = yaml.safe_load((run_dir / "sensitivity_bounds.yaml").read_text())
    bounds = written["layer_high"]
    assert set(bounds) == {"block1.conv", "head"}
    assert set(written["shifts"]) == set(bounds)  # the cnn space's LAMP takes shifts
    shift_search = shlex.split(result.stdout.strip().splitlines()[-3])
    assert shift_search[5:] == [
        "space.sparsity.shift={low:-2.0,high:2.0,step:0.5}",
        f"study.warm_start_shifts={{block1.conv:{written['shifts']['block1.conv']!r},"
        f"head:{written['shifts']['head']!r}}}",
    ]
    command = result.stdout.strip().splitlines()[-1]
    argv = shlex.split(command)  # as a shell would split it
    assert argv[:4] == ["python", "-m", "nas", "search"]

    searched = forked_nas(
        *argv[3:], *TINY[1:], "space.sparsity.allocation=per_layer", "space.sparsity.low=0",
        "study.n_trials=1", "study.siblings=0", cwd=tmp_path,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    study = optuna.load_study(study_name="cnn-smoke", storage=storage(tmp_path))
    assert study.user_attrs["space_config"]["sparsity"]["layer_high"] == bounds
    [trial] = study.trials
    for layer, cap in bounds.items():
        assert trial.params[f"sparsity.{layer}"] <= cap

    trial_run = tmp_path / "trial-run"
    cfg = compose_config(
        *TINY, *study_at(tmp_path), "sensitivity.trial=0", "sensitivity.grid=[0.5]"
    )
    commands.sensitivity(cfg, launch_dir=tmp_path, run_dir=trial_run)
    assert f"{trial.user_attrs['arch']} (trial 0 of study 'cnn-smoke')" in capsys.readouterr().out
    assert (trial_run / "sensitivity.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, override, fragments",
    [
        ("search", "space.sparsity.layer_high={block9.conv:0.5}", ("no layer block9.conv",)),
        ("sensitivity", "sensitivity.grid=[0.5,1.0]", ("sensitivity.grid", "[0.5, 1.0]")),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, command, override, fragments):
    result = forked_nas(command, *TINY, override, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "outputs" / "smoke.db").exists()
    assert not list(tmp_path.rglob("sensitivity.csv"))


@pytest.mark.parametrize(
    "command, overrides, message",
    [
        (
            "search",
            ["space.sparsity.layer_high={block9.conv:0.5}"],
            r"no layer block9.conv \(its layers: block1.conv, head\)",
        ),
        (
            "search",
            ["space.sparsity.layer_high={head:1.0}"],
            r"space.sparsity.layer_high.head must be a number in \[0, 1\), got 1.0",
        ),
        ("sensitivity", ["sensitivity.grid=[]"], r"sensitivity.grid .* got \[\]"),
        ("sensitivity", ["sensitivity.grid=[0.5,-0.1]"], "sensitivity.grid"),
        ("sensitivity", ["sensitivity.tolerance=-1"], "sensitivity.tolerance"),
        ("sensitivity", ["sensitivity.finetune_epochs=0.5"], "sensitivity.finetune_epochs"),
        ("sensitivity", ["sensitivity.trial=5"], "trial=5 is not a finished trial; finished: 0"),
        (
            "sensitivity",
            ["sensitivity.trial=0", "baseline.arch={arch.blocks:1}"],
            "give baseline.arch or sensitivity.trial, not both",
        ),
    ],
)
def test_bad_values_are_usage_errors(compose_config, tmp_path, command, overrides, message):
    (tmp_path / "outputs").mkdir()
    study = optuna.create_study(
        study_name="cnn-smoke", storage=storage(tmp_path),
        directions=["maximize", "minimize", "minimize"],
    )  # fmt: skip
    distribution = optuna.distributions.IntDistribution(1, 1)
    study.add_trial(
        optuna.trial.create_trial(
            params={"arch.blocks": 1},
            distributions={"arch.blocks": distribution},
            values=[0.5, 10, 10],
        )  # fmt: skip
    )
    cfg = compose_config(*TINY, *study_at(tmp_path), *overrides)
    with pytest.raises(UsageError, match=message):
        getattr(commands, command)(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
    assert len(study.trials) == 1
    assert not (tmp_path / "run").exists()
