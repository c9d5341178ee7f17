from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from nas.__main__ import COMMANDS, main_help, normalise_overrides
from nas.cli.config_dir import available_spaces
from nas.errors import UsageError
from nas.search.storage import storage_location
from search_spaces.cnn import CNNSpace
from tests.conftest import CONF_DIR


def test_defaults_compose_without_a_space(compose_config):
    cfg = compose_config()
    assert "space" not in cfg
    assert cfg.study.n_trials == 30
    assert cfg.data._target_ == "nas.data.load_mnist5k"


def test_space_is_added_with_plus_and_instantiates(compose_config):
    cfg = compose_config("+space=cnn", "space.blocks=[2,2]", "space.sparsity.high=0.5")
    space = instantiate(cfg.space)
    assert isinstance(space, CNNSpace)
    assert space.blocks == (2, 2)
    assert space.sparsity.high == 0.5


def test_smoke_debug_switch_shrinks_the_run(compose_config):
    cfg = compose_config("+space=cnn", "+debug=smoke")
    assert cfg.data._target_ == "nas.data.synthetic_images"
    assert (cfg.train.epochs, cfg.train.finetune_epochs, cfg.study.n_trials) == (1, 1, 2)


@pytest.fixture
def study_of(monkeypatch):
    """The study name and storage URL that a command launched in a folder with overrides
    resolves to, with Hydra's runtime config set as the CLI sets it."""
    hydra = HydraConfig.instance()
    monkeypatch.setattr(hydra, "cfg", hydra.cfg)  # restored after the test

    def _study_of(launch_dir: Path, *overrides: str) -> tuple[str, str]:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
        hydra.set_config(cfg)
        url, _ = storage_location(cfg.study.storage, cfg.study.artifacts, launch_dir)
        return str(cfg.study.name), url

    return _study_of


def test_a_smoke_run_has_a_study_and_a_storage_of_its_own(study_of, tmp_path):
    assert study_of(tmp_path, "+space=cnn") == ("cnn", f"sqlite:///{tmp_path}/outputs/nas.db")
    smoke = study_of(tmp_path, "+space=cnn", "+debug=smoke")
    assert smoke == ("cnn-smoke", f"sqlite:///{tmp_path}/outputs/smoke.db")


@pytest.mark.parametrize("sampler", ["tpe", "random", "nsga2", "gp"])
def test_each_sampler_option_instantiates_with_a_seed(compose_config, sampler):
    cfg = compose_config(f"sampler={sampler}")
    assert isinstance(instantiate(cfg.sampler, seed=1), optuna.samplers.BaseSampler)


def test_space_override_without_plus_is_accepted():
    assert normalise_overrides(["space=cnn", "seed=1"]) == ["+space=cnn", "seed=1"]
    assert normalise_overrides(["+space=cnn"]) == ["+space=cnn"]
    assert "cnn" in available_spaces()


def test_unknown_space_names_the_available_ones():
    with pytest.raises(UsageError, match="unknown search space 'nope'; available: .*cnn"):
        normalise_overrides(["+space=nope"])


def test_the_help_parts_every_command_from_its_summary_by_two_spaces():
    lines = main_help().splitlines()
    for name, summary in COMMANDS.items():
        assert f"  {name}  " in next(line for line in lines if line.endswith(summary))
