"""The settings a study records when it is created (user attrs `<group>_config`), read
back with the `_target_` paths of modules that have moved since mapped to today's, so
that a study made by an earlier version still reports, exports, retrains and resumes;
and the recorded settings a resume must not change."""

from __future__ import annotations

import json
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

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
    with current `_target_`s and the settings added since it was recorded at the values
    that behave as before (`ADDED_SETTINGS`); None when the study records none."""
    key = f"{group}_config"
    return as_recorded(study.user_attrs[key], group) if key in study.user_attrs else None


def as_recorded(config: Any, group: str) -> Any:
    """A copy of the `group` config a study records, with current `_target_`s and the
    settings added since (`ADDED_SETTINGS`) that it lacks at the values that behave as
    before, where it records the node they belong to."""
    config = upgraded(config)
    for setting, (owner, value) in ADDED_SETTINGS.items():
        root, *owner_path = owner.split(".")
        node = config if root == group else None
        for part in owner_path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            *path, name = setting.removeprefix(f"{owner}.").split(".")
            for part in path:
                node = node.setdefault(part, {})
            node.setdefault(name, value)
    return config


# The config groups that change a trial's numbers; a study records each as `<group>_config`,
# beside its `seed`.
TRIAL_SETTING_GROUPS = ("space", "data", "train", "finetune", "prune", "schedule")
# Keys within them that change no number: whether missing data may be downloaded.
FREE_SETTINGS = frozenset({"data.download"})
# Settings added since studies were first recorded, with the value that behaves as the
# versions before them did and the group they belong to: a study that records that group
# but not the setting is read as having the value.
ADDED_SETTINGS = {
    "train.supernet.covering": ("train.supernet", False),
    "train.supernet.distill_warmup": ("train.supernet", 0),
    "train.supernet.largest_every": ("train.supernet", 1),
    "train.polish.share": ("train", 0.0),
    "train.polish.epochs": ("train", 5),
    "train.polish.order": ("train", "accurate"),
    "space.sparsity.shift": ("space.sparsity", None),
}
_UNSET = object()


def trial_settings(cfg: DictConfig) -> dict[str, Any]:
    """The user attrs that record what changes a trial's numbers: `<group>_config` for each
    group of `TRIAL_SETTING_GROUPS`, resolved to plain containers, and `seed`."""
    configs = {
        f"{group}_config": OmegaConf.to_container(cfg[group], resolve=True)
        for group in TRIAL_SETTING_GROUPS
    }
    return {**configs, "seed": cfg.seed}


def _leaves(value: Any, key: str) -> dict[str, Any]:
    """`value` (nested dicts) as {dotted key: value}, a list or scalar counting as one."""
    if isinstance(value, dict) and value:
        return {
            dotted: leaf
            for name, item in value.items()
            for dotted, leaf in _leaves(item, f"{key}.{name}").items()
        }
    return {key: value}


def _shown(value: Any) -> str:
    """`value` as an override would write it."""
    if value is _UNSET:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value)


def setting_changes(study: optuna.Study, settings: dict[str, Any]) -> list[str]:
    """`key old -> new` for every setting of `settings` (see `trial_settings`) that `study`
    records with another value; a setting the study does not record is not compared, and
    one added since (`ADDED_SETTINGS`) is compared with the value that behaves as before."""
    changes = []
    for attr, value in settings.items():
        if attr not in study.user_attrs:
            continue
        prefix = attr.removesuffix("_config")
        old = _leaves(as_recorded(study.user_attrs[attr], prefix), prefix)
        new = _leaves(json.loads(json.dumps(value)), prefix)  # as the study stores it
        for key in [*new, *(key for key in old if key not in new)]:
            before, after = old.get(key, _UNSET), new.get(key, _UNSET)
            if key not in FREE_SETTINGS and before != after:
                changes.append(f"{key} {_shown(before)} -> {_shown(after)}")
    return changes
