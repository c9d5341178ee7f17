"""Objects built from config nodes, with a bad node reported in one line."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from nas.errors import UsageError


def configured(node: DictConfig, what: str, **kwargs):
    """The object `node` (the config group `what`) describes, built by
    `hydra.utils.instantiate` with `kwargs`; a missing `_target_` or a bad value is a
    one-line UsageError."""
    if node.get("_target_") is None:
        raise UsageError(f"{what}._target_ is not set: pass {what}._target_=module.Class")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = str(error.__cause__ or error).strip().splitlines()[0]
        raise UsageError(f"{what}: {cause}") from error
