"""Objects built from config nodes, with a bad node reported in one line."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from nas.errors import UsageError
from nas.space import SearchSpace, bind_to_data, finds_layers_on_data


def configured(node: DictConfig, what: str, **kwargs):
    """The object `node` (the config group `what`) describes, built by
    `hydra.utils.instantiate` with `kwargs`; a missing `_target_` or a bad value is a
    one-line UsageError."""
    unset = _unset_target(node, what)
    if unset:
        raise UsageError(f"{unset}._target_ is not set: pass {unset}._target_=module.Class")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = str(error.__cause__ or error).strip().splitlines()[0]
        raise UsageError(f"{what}: {cause}") from error


def _unset_target(node: DictConfig, path: str) -> str | None:
    """The path of `node`, or of the first config node within it, whose `_target_` is
    null (a space's `model`, say); None when every one is set."""
    if node.get("_target_", "") is None:
        return path
    for key, child in node.items():
        if isinstance(child, DictConfig) and (found := _unset_target(child, f"{path}.{key}")):
            return found
    return None


def bound(space: SearchSpace, in_shape: tuple[int, ...], n_classes: int) -> SearchSpace:
    """`space` told the data's input shape and class count (`bind_to_data`), a space
    that does not fit them a one-line UsageError; returns `space`."""
    try:
        bind_to_data(space, in_shape, n_classes)
    except ValueError as error:
        raise UsageError(str(error)) from error
    return space


def configured_space(cfg: DictConfig) -> SearchSpace:
    """The space `cfg.space` describes, bound to the data `cfg.data` describes (loaded
    only for a space that finds its layers on the data)."""
    space = configured(cfg.space, "space")
    if finds_layers_on_data(space):
        splits = configured(cfg.data, "data")
        bound(space, splits.in_shape, splits.n_classes)
    return space
