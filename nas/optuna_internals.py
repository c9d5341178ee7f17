"""The only door into Optuna's private API, for what no public one does; nothing else in
`nas` may use an underscored Optuna or Hydra name (`tests/test_layout.py` checks).

- `compute_hypervolume`: Optuna's WFG hypervolume (`optuna._hypervolume`). Optuna exposes
  hypervolume only inside its plots and samplers; the front-quality measures use its own
  algorithm so that they agree with what Optuna computes.
- `storage_of`: the storage a `Study` reads and writes (`Study._storage`). Optuna has no
  public accessor; the supernet's claims create and delete studies in that same storage.

May import nothing of `nas`.
"""

from __future__ import annotations

import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.storages import BaseStorage

__all__ = ["compute_hypervolume", "storage_of"]


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage `study` lives in."""
    return study._storage
