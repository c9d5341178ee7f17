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

May import nothing of `nas`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager

import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage

__all__ = ["compute_hypervolume", "held_storage", "storage_of"]


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage `study` lives in."""
    return study._storage


def _held(method: Callable) -> Callable:
    """`method` of a `_HeldStorage`, run inside its `hold()`."""

    @functools.wraps(method)
    def call(self: _HeldStorage, *args, **kwargs):
        with self.hold():
            return method(self, *args, **kwargs)

    return call


def _every_call_held(cls: type[_CachedStorage]) -> type[_CachedStorage]:
    """`cls` with each storage call of `_CachedStorage` (its public methods, and
    `_get_stale_trial_ids`) run inside `self.hold()`."""
    for name in dir(_CachedStorage):
        method = getattr(_CachedStorage, name)
        if callable(method) and (not name.startswith("_") or name == "_get_stale_trial_ids"):
            setattr(cls, name, _held(method))
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
