"""Every user attr a trial carries, one typed `Attr` each: the measures a finished
trial records (the fields of `TrialResult`, written together by `TrialResult.user_attrs`),
the marks a queued trial is given (what it follows up, its own fine-tuning epochs) and
the reasons a trial failed or did not run; and the few a study carries of itself.

An attr a trial lacks reads as its `missing` value: trials of studies made before the
attr existed load unchanged (`dense_sliced` and `recalibration_epochs` came with weight
sharing, for example).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class HasUserAttrs(Protocol):
    """A trial, frozen or running, as far as its user attrs go."""

    @property
    def user_attrs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Attr(Generic[T]):
    """One user attr: its key, and what a trial without it reads as."""

    key: str
    missing: T | None = None

    def of(self, trial: HasUserAttrs | Mapping[str, Any]) -> T | None:
        """This attr of `trial` (or of a mapping of user attrs), `missing` if it has none."""
        attrs = trial if isinstance(trial, Mapping) else trial.user_attrs
        return attrs[self.key] if self.key in attrs else copy.copy(self.missing)

    def on(self, trial: HasUserAttrs | Mapping[str, Any]) -> bool:
        """Whether `trial` (or a mapping of user attrs) carries this attr at all."""
        attrs = trial if isinstance(trial, Mapping) else trial.user_attrs
        return self.key in attrs

    def set(self, trial: Any, value: T) -> None:
        """Record `value` as this attr of the running `trial`."""
        trial.set_user_attr(self.key, value)

    def __call__(self, value: T) -> dict[str, T]:
        """`{key: value}`, for the user attrs a trial is queued with."""
        return {self.key: value}


# What a finished trial measured beside its objectives (`TrialResult`).
ARCH: Attr[str] = Attr("arch")
TEST_ACCURACY: Attr[float] = Attr("test_accuracy")
DENSE_ACCURACY: Attr[float] = Attr("dense_accuracy")
DENSE_PARAMS: Attr[int] = Attr("dense_params")
DENSE_FLOPS: Attr[int] = Attr("dense_flops")
SPARSITY_TARGET: Attr[dict] = Attr("sparsity_target", {})
SPARSITY_ACHIEVED: Attr[dict] = Attr("sparsity_achieved", {})
SPARSITY_RULE: Attr[dict] = Attr("sparsity_rule")
TRAIN_EPOCHS: Attr[float] = Attr("train_epochs", 0)
TRAIN_FLOPS: Attr[int] = Attr("train_flops")
RECALIBRATION_EPOCHS: Attr[float] = Attr("recalibration_epochs", 0)
RESUMED_FROM_EPOCH: Attr[int] = Attr("resumed_from_epoch", 0)
DENSE_CACHED: Attr[bool] = Attr("dense_cached", False)
DENSE_SLICED: Attr[bool] = Attr("dense_sliced", False)
FINETUNE_SKIPPED: Attr[bool] = Attr("finetune_skipped", False)
REMOVED_CHANNELS: Attr[list] = Attr("removed_channels", [])
SECONDS: Attr[float] = Attr("seconds")
LATENCY_MS: Attr[float] = Attr("latency_ms")
MACRO_F1: Attr[float] = Attr("macro_f1")
WORST_CLASS_ACCURACY: Attr[float] = Attr("worst_class_accuracy")
AGREEMENT: Attr[float] = Attr("agreement")
KL_DIVERGENCE: Attr[float] = Attr("kl_divergence")
ECE: Attr[float] = Attr("ece")

# What a queued trial follows up, and how it runs.
FINETUNE_EPOCHS: Attr[int] = Attr("finetune_epochs")  # fine-tunes this many epochs instead
SIBLING_OF: Attr[int] = Attr("sibling_of")  # the trial whose architecture it prunes further
DENSITY_FACTOR: Attr[float] = Attr("density_factor", 1.0)  # of its first trial's densities
POLISH_OF: Attr[int] = Attr("polish_of")  # the front trial it fine-tunes longer
REVISIT_OF: Attr[int] = Attr("revisit_of")  # the front trial whose architecture it revisits
RETRY_OF: Attr[int] = Attr("retry_of")  # the trial that died and that it runs again
QUEUED_WITH = (FINETUNE_EPOCHS, SIBLING_OF, DENSITY_FACTOR, POLISH_OF, REVISIT_OF)  # a retry's too

# Why a trial failed, or did not run.
FAIL_REASON: Attr[str] = Attr("fail_reason")
NOT_RUN: Attr[str] = Attr("not_run")  # refused before training (the budget is spent, ...)
REPEATS: Attr[int] = Attr("repeats")  # the finished trial whose parameters it repeats

TRIAL_ATTRS: tuple[Attr, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Attr)
)

# What a study records of itself (beside its settings, `nas.search.recorded`).
SPACE: Attr[str] = Attr("space")  # the `_target_` of the space it searches
SUPERNET: Attr[dict] = Attr("supernet", {})  # its supernet: epochs trained, cost, checkpoint
PREPROCESSING: Attr[dict] = Attr("preprocessing")  # how its data's images became inputs
