"""Pruning-aware neural architecture search with Optuna, PyTorch and Hydra."""

from nas.objective import METRIC_NAMES, TrialPipeline, TrialResult
from nas.space import Candidate, SearchSpace, SparsityGrid

__all__ = [
    "METRIC_NAMES",
    "Candidate",
    "SearchSpace",
    "SparsityGrid",
    "TrialPipeline",
    "TrialResult",
]
