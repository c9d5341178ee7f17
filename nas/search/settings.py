"""The `study` config group as one checked value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nas.checks import BadSetting, at_least, check_fields, checked, one_of, setting, within
from nas.search.siblings import RULES as SIBLING_RULES
from nas.trial.early_exit import RULES as EARLY_EXIT_RULES


@dataclass(frozen=True)
class StudySettings:
    """Where the study lives, how many trials it needs, and how dead trials are handled:
    conf/study/default.yaml holds each setting's default and meaning, its field here the
    type and bounds every value is checked against."""

    name: str
    objectives: tuple[str, ...]
    storage: str | None
    artifacts: str | None
    n_trials: int = setting(at_least(1))
    heartbeat_interval: int = setting(at_least(1))
    grace_period: int  # more than heartbeat_interval
    max_retry: int = setting(at_least(0))
    max_consecutive_failures: int = setting(at_least(1))
    checkpoint_over_epochs: int = setting(at_least(0))
    max_epochs: int | None = setting(at_least(1))
    max_nonzero_params: int | None = setting(at_least(1))
    max_flops: int | None = setting(at_least(1))
    min_accuracy_kept: float | None = setting(within(0, 1, "(]"))
    dense_cache: int = setting(at_least(0))
    early_exit: str = setting(one_of(*EARLY_EXIT_RULES))
    early_exit_margin: float = setting(within(0, 1))
    siblings: int = setting(at_least(0))
    sibling_factor: float = setting(within(0, 1, "()"))
    sibling_rule: str = setting(one_of(*SIBLING_RULES))
    sibling_tolerance: float = setting(within(0, 1))
    revisit_share: float = setting(within(0, 1, "[)"))
    warm_start: bool
    warm_start_shifts: Mapping[str, float] | None

    def __post_init__(self) -> None:
        check_fields(self, "study")
        checked("study.grace_period", self.grace_period, int, at_least(self.heartbeat_interval + 1))
        if self.warm_start_shifts is not None and not self.warm_start:
            raise BadSetting("study.warm_start_shifts is set but study.warm_start is false")
