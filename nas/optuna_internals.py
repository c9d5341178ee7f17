"""The only door into Optuna's private API, for what no public one does; nothing else in
`nas` may use an underscored Optuna or Hydra name (`tests/test_layout.py` checks).

- `compute_hypervolume`: Optuna's WFG hypervolume (`optuna._hypervolume`). Optuna exposes
  hypervolume only inside its plots and samplers; the front-quality measures use its own
  algorithm so that they agree with what Optuna computes.
- `storage_of`: the storage a `Study` reads and writes (`Study._storage`). Optuna has no
  public accessor; the supernet's claims create and delete studies in that same storage.
- `held_storage`: an RDB storage as a study uses it, behind Optuna's cache of its trials
  (`optuna.storages._CachedStorage`, what `optuna.create_study` wraps an `RDBStorage`
  in), with each call run inside a context (the search holds signals there). Optuna has
  no public hook around storage calls; besides the public methods, the private
  `_get_stale_trial_ids` of its heartbeat protocol is one (`fail_stale_trials` calls it).
- `CachedStorage`: that cache's class, for `benchmarks/storage_timer.py`, which times
  every storage call a study makes, its cached reads included.
- `unbeaten_trial_ids`: the running trials that never recorded a heartbeat, read from the
  RDB storage's tables (`optuna.storages._rdb.models`). Optuna's stale check passes over
  a trial without a heartbeat, so one whose worker died between taking it and its first
  heartbeat stays RUNNING for good, and the study waits for it; no public API tells.

May import nothing of `nas`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models
from optuna.trial import TrialState

__all__ = [
    "CachedStorage",
    "compute_hypervolume",
    "held_storage",
    "storage_of",
    "unbeaten_trial_ids",
]
CachedStorage = _CachedStorage


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage `study` lives in."""
    return study._storage


def _held(name: str) -> Callable:
    """`_CachedStorage`'s method `name` for a `_HeldStorage`, run inside its `hold()`;
    looked up at each call, so that what patches `_CachedStorage` later (a timer) applies."""

    @functools.wraps(getattr(_CachedStorage, name))
    def call(self: _HeldStorage, *args, **kwargs):
        with self.hold():
            return getattr(_CachedStorage, name)(self, *args, **kwargs)

    return call


def _every_call_held(cls: type[_CachedStorage]) -> type[_CachedStorage]:
    """`cls` with each storage call of `_CachedStorage` (its public methods, and
    `_get_stale_trial_ids`) run inside `self.hold()`."""
    for name in dir(_CachedStorage):
        if callable(getattr(_CachedStorage, name)) and (
            not name.startswith("_") or name == "_get_stale_trial_ids"
        ):
            setattr(cls, name, _held(name))
    return cls


@_every_call_held
class _HeldStorage(_CachedStorage):
    def __init__(self, backend: RDBStorage, hold: Callable[[], AbstractContextManager]) -> None:
        super().__init__(backend)
        self.hold = hold


def held_storage(storage: RDBStorage, hold: Callable[[], AbstractContextManager]) -> BaseStorage:
    """`storage` behind Optuna's cache of its trials, as a study would use it, each of its
    calls run inside `hold()`."""
    return _HeldStorage(storage, hold)


def unbeaten_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of `study`'s running trials that started more than its storage's grace
    period ago and never recorded a heartbeat (none for a storage without heartbeats)."""
    storage = study._storage
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not isinstance(backend, RDBStorage) or backend.heartbeat_interval is None:
        return []
    grace = timedelta(seconds=backend.grace_period or 2 * backend.heartbeat_interval)
    session = backend.scoped_session()
    try:
        running = (
            session.query(models.TrialModel)
            .filter(models.TrialModel.study_id == study._study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .all()
        )
        now = datetime.now()  # the clock Optuna stamps a trial's start with
        return [
            trial.trial_id
            for trial in running
            if not trial.heartbeats
            and trial.datetime_start is not None
            and now - trial.datetime_start > grace
        ]
    finally:
        session.close()
