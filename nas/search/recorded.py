"""The settings a study records when it is created (user attrs `<group>_config`), read
back with the `_target_` paths of modules that have moved since mapped to today's, so
that a study made by an earlier version still reports, exports, retrains and resumes."""

from __future__ import annotations

from typing import Any

import optuna

# Module prefixes of `_target_`s before nas/ was grouped into subpackages, and today's.
MOVED_MODULES = {
    "nas.pruning.": "nas.prune.methods.",
    "nas.schedule.": "nas.prune.schedule.",
}


def current_target(target: str) -> str:
    """`target` with a moved module's old path replaced by its current one."""
    for old, new in MOVED_MODULES.items():
        if target.startswith(old):
            return new + target.removeprefix(old)
    return target


def upgraded(config: Any) -> Any:
    """A copy of a recorded config (nested dicts and lists) with every `_target_` current."""
    if isinstance(config, dict):
        return {
            key: current_target(value) if key == "_target_" and isinstance(value, str)
            else upgraded(value)
            for key, value in config.items()
        }  # fmt: skip
    if isinstance(config, list):
        return [upgraded(item) for item in config]
    return config


def recorded_config(study: optuna.Study, group: str) -> Any | None:
    """The `group` config (`space`, `data`, `train`, `prune`, ...) that `study` records,
    with current `_target_`s; None when the study records none."""
    key = f"{group}_config"
    return upgraded(study.user_attrs[key]) if key in study.user_attrs else None
