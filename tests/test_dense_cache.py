"""Trials of one architecture share its dense weights: same results, fewer epochs."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from optuna.trial import FixedTrial

from nas.prune.methods import MagnitudePruning
from nas.search.dense_states import ArtifactDenseStates
from nas.trial.dense_cache import DenseCache, DenseState, arch_seed
from nas.trial.pipeline import TrialPipeline
from search_spaces.cnn import CNNSpace
from tests.conftest import DAMAGES, damage
from tests.test_objective import PARAMS, SETTINGS

CPU = torch.device("cpu")


def state(accuracy: float) -> DenseState:
    return DenseState({}, torch.zeros(1), accuracy, torch.zeros(1))


def test_the_cache_keeps_the_most_recently_used_entries_up_to_its_size():
    cache = DenseCache(2)
    for number in range(3):
        cache.put({"width": number}, 0, state(number))
    assert len(cache) == 2 and cache.get({"width": 0}, 0) is None
    cache.get({"width": 1}, 0)  # now the most recently used
    cache.put({"width": 3}, 0, state(3))
    assert cache.get({"width": 1}, 0).accuracy == 1 and cache.get({"width": 2}, 0) is None
    assert cache.get({"width": 1}, 1) is None  # another seed trains other weights


def test_a_cache_of_size_zero_keeps_nothing_and_a_bad_size_is_refused():
    cache = DenseCache(0)
    cache.put({"width": 1}, 0, state(1))
    assert len(cache) == 0
    with pytest.raises(ValueError, match="dense cache size"):
        DenseCache(-1)


def artifact_states(folder) -> ArtifactDenseStates:
    """Dense states kept as artifacts of one study in `folder`, as a new process opens them."""
    storage = f"sqlite:///{folder / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, load_if_exists=True)
    return ArtifactDenseStates(FileSystemArtifactStore(folder), study, CPU)


def test_a_stored_state_outlives_the_cache_and_memory_stays_its_size(tmp_path):
    weights = {"conv.weight": torch.arange(6.0).reshape(2, 3)}
    kept = DenseState(weights, torch.tensor([1, 2], dtype=torch.uint8), 0.75, torch.ones(2, 3))
    first = DenseCache(1, artifact_states(tmp_path))
    first.put({"width": 1}, 0, kept)
    first.put({"width": 2}, 0, state(2))  # drops width 1 from memory, not from the store
    assert len(first) == 1 and first.get({"width": 1}, 0).accuracy == 0.75
    later = DenseCache(1, artifact_states(tmp_path))  # a resumed study's process
    assert later.holds({"width": 1}, 0) and not later.holds({"width": 1}, 1)
    loaded = later.get({"width": 1}, 0)
    assert torch.equal(loaded.weights["conv.weight"], weights["conv.weight"])
    assert torch.equal(loaded.generator, kept.generator) and loaded.accuracy == 0.75
    assert torch.equal(loaded.val_logits, kept.val_logits)
    assert DenseCache(0, artifact_states(tmp_path)).get({"width": 1}, 0) is None


@pytest.mark.parametrize("how", DAMAGES)
def test_an_unreadable_stored_state_is_reported_deleted_and_trained_again(tmp_path, caplog, how):
    states = artifact_states(tmp_path)
    DenseCache(1, states).put({"width": 1}, 0, state(1))
    (meta,) = get_all_artifact_meta(states.study)
    damage(tmp_path / meta.artifact_id, how)
    assert DenseCache(1, artifact_states(tmp_path)).get({"width": 1}, 0) is None
    (line,) = [r.getMessage() for r in caplog.records if r.name == "nas.search.dense_states"]
    assert line.startswith(f"cannot read {meta.filename} (") and line.endswith("training it again")
    assert not (tmp_path / meta.artifact_id).exists()


def test_the_weight_seed_depends_on_the_architecture_and_the_search_seed_only():
    arch = {"channels": [8, 16], "hidden": 32}
    assert arch_seed(0, arch) == arch_seed(0, dict(reversed(list(arch.items()))))
    assert arch_seed(0, arch) != arch_seed(1, arch)
    assert arch_seed(1, arch) % 2**32 != arch_seed(0, arch) % 2**32  # torch keeps 32 bits
    assert arch_seed(0, arch) != arch_seed(0, {**arch, "hidden": 64})


@pytest.mark.slow
def test_a_cached_trial_skips_dense_training_and_ends_as_an_uncached_one(tiny_splits):
    space = CNNSpace()
    first = space.sample(FixedTrial(PARAMS))
    second = space.sample(FixedTrial({**PARAMS, "sparsity.hidden": 0.5, "sparsity.head": 0.8}))
    cached = TrialPipeline(
        space, tiny_splits, MagnitudePruning(), SETTINGS, CPU, dense_cache=DenseCache(4)
    )
    uncached = dataclasses.replace(cached, dense_cache=DenseCache(0))

    assert cached.planned_epochs(second, seed=5) == 2
    cached.run(first, seed=5)
    assert cached.planned_epochs(second, seed=5) == 1  # fine-tuning only
    reused, _ = cached.run(second, seed=5)
    fresh, _ = uncached.run(second, seed=5)

    assert reused.dense_cached and not fresh.dense_cached
    assert (reused.train_epochs, fresh.train_epochs) == (1, 2)
    assert reused.values() == fresh.values()
    assert reused.test_accuracy == fresh.test_accuracy
    assert reused.dense_accuracy == fresh.dense_accuracy
    assert reused.agreement == fresh.agreement


def test_planning_a_run_leaves_the_order_of_the_cache_alone(tiny_splits):
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    cache = DenseCache(2)
    pipe = TrialPipeline(
        CNNSpace(), tiny_splits, MagnitudePruning(), SETTINGS, CPU, dense_cache=cache
    )
    cache.put(candidate.arch, 5, state(0))  # the least recently used
    cache.put({"width": 1}, 5, state(1))
    assert pipe.planned_epochs(candidate, seed=5) == 1  # cached: fine-tuning only
    cache.put({"width": 2}, 5, state(2))
    assert not cache.holds(candidate.arch, 5) and cache.holds({"width": 1}, 5)
