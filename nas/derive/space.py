"""`ModelSpace`: the search space of a user's own network, its widths and per-layer sparsity
derived from the network itself."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial

import optuna
import torch
from torch import nn

from nas.checks import at_least, checked, within
from nas.derive.depth import BlockRun, block_runs, drop_blocks, left_out
from nas.derive.groups import WIDTH_LAYERS, ChannelGroup, Frozen, channel_groups
from nas.derive.reorder import reorder_by_importance
from nas.prune.methods import evaluating, remove_outputs_fn
from nas.space import Candidate, SparsityGrid
from nas.supernet.elastic import Supernet
from nas.trial.pipeline import DenseSource


class ModelSpace:
    """Every narrower version of `model`, pruned per layer.

    One width parameter per group of coupled output channels (`nas.derive.groups`):
    `arch.<first layer>.width`, a share of the group's channels from `widths`, rounded to a
    multiple of `multiple` (at least `multiple`, at most all of them); a candidate keeps
    the first channels of each group. With `depth`, one `arch.<run>.depth` per run of
    residual blocks of an `nn.Sequential` (`nas.derive.depth`): how many of its first
    blocks a candidate keeps, 0 to all. One sparsity per Conv2d and Linear layer it keeps,
    sampled as `sparsity` says (a `SparsityGrid` or its config). The model's inputs and its
    outputs (the classes) are never cut; frozen groups keep their width, each with its
    reason.

    The groups are found with an input of the data's shape: `bind(in_shape, n_classes)`
    (the search calls it), or `from_model(model, example_input)`. With `weights` (a
    state_dict file), or from `from_model`, the model's trained weights are the starting
    point: `bind` puts each group's channels in order of importance once, and a candidate's
    dense weights are its slice (`dense_source`), BatchNorm then re-estimated by the trial.
    Without trained weights each candidate starts from freshly initialised weights
    (`reset_parameters` of every layer, seeded by the trial), or, with weight sharing, from
    the supernet `supernet` makes of the largest.

    With `adapt_input`, a first convolution made for another number of input channels (3
    for RGB, say, on one-channel digits) is rebuilt for the data's, its kernels summed over
    the channels.
    """

    def __init__(
        self,
        model: nn.Module,
        widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        multiple: int = 8,
        sparsity: dict | SparsityGrid | None = None,
        adapt_input: bool = True,
        weights: str | None = None,
        depth: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"space.model must build a torch.nn.Module: set space.model._target_ to an "
                f"importable callable that returns one, got {model!r}"
            )
        checked("space.widths", tuple(widths), tuple[float, ...], within(0, 1, "(]"))
        if not widths:
            raise ValueError("space.widths must list at least one share of the channels")
        checked("space.multiple", multiple, int, at_least(1))
        checked("space.adapt_input", adapt_input, bool)
        checked("space.depth", depth, bool)
        checked("space.weights", weights, str | None)
        if weights is not None:
            load_weights(model, weights)
        self.model = model
        self.trained = weights is not None
        self.widths = sorted({float(w) for w in widths})
        self.multiple = multiple
        self.adapt_input = adapt_input
        self.depth = depth
        self.sparsity = SparsityGrid.of(sparsity)
        self.in_shape: tuple[int, ...] | None = None
        self.groups: list[ChannelGroup] = []
        self.frozen: list[Frozen] = []
        self.runs: list[BlockRun] = []

    @classmethod
    def from_model(
        cls, model: nn.Module, example_input: torch.Tensor, trained: bool = True, **options
    ) -> ModelSpace:
        """The space of `model`, its groups found on `example_input` (a batch); with
        `trained`, every candidate starts from its slice of `model`'s own weights."""
        space = cls(model, **options)
        space.trained = trained
        space.bind(tuple(example_input.shape[1:]), None)
        return space

    def bind(self, in_shape: tuple[int, ...], n_classes: int | None) -> None:
        """Find the groups with inputs of `in_shape`; ValueError unless the model gives
        `n_classes` outputs (not checked when None) or has a width to search."""
        if self.in_shape == tuple(in_shape):
            return
        if self.adapt_input:
            adapt_first_conv(self.model, in_shape[0])
        example = torch.zeros(2, *in_shape)
        try:
            with evaluating(self.model), torch.no_grad():
                outputs = self.model(example).shape[-1]
        except RuntimeError as error:
            raise ValueError(
                f"space.model cannot compute the data's inputs of shape {list(in_shape)}: "
                f"{str(error).splitlines()[0]}"
            ) from error
        if n_classes is not None and outputs != n_classes:
            raise ValueError(
                f"space.model gives {outputs} outputs but the data has {n_classes} classes: "
                f"set its number of classes (e.g. +space.model.num_classes={n_classes})"
            )
        self.groups, self.frozen = channel_groups(self.model, example)
        self.runs = block_runs(self.model, example) if self.depth else []
        if self.trained:
            reorder_by_importance(self.model, self.groups, example)
        self.in_shape = tuple(in_shape)
        if not self.runs and not any(len(self.choices(group)) > 1 for group in self.groups):
            raise ValueError(
                "space.model has nothing that can be cut (every group of channels is frozen): "
                + "; ".join(f"{', '.join(f.layers)}: {f.reason}" for f in self.frozen)
            )

    def choices(self, group: ChannelGroup) -> list[int]:
        """The widths `group` may take, narrowest first."""
        m, channels = self.multiple, group.channels
        return sorted({min(channels, max(m, round(w * channels / m) * m)) for w in self.widths})

    @property
    def layers(self) -> list[str]:
        """Module paths of the model's Conv2d and Linear layers: one sparsity each."""
        return [p for p, m in self.model.named_modules() if isinstance(m, WIDTH_LAYERS)]

    def sample(self, trial: optuna.Trial) -> Candidate:
        """A depth for each run of residual blocks, a width for each group left with more
        than one, then the sparsities of the layers left."""
        self._check_bound()
        depths = {
            _depth_key(run): trial.suggest_categorical(
                f"arch.{_depth_key(run)}", list(range(len(run.blocks) + 1))
            )
            for run in self.runs
        }
        kept = self._kept(depths)
        widths = {
            group.name: trial.suggest_categorical(f"arch.{group.name}.width", choices)
            for group in self.groups
            if len(choices := self.choices(group)) > 1 and any(map(kept, group.layers))
        }
        layers = [layer for layer in self.layers if kept(layer)]
        return self.sparsity.candidate(trial, {**depths, **widths}, layers)

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The model with each group cut to its width, its layers freshly initialised."""
        network = self._cut(candidate.arch)
        if torch.empty(0).device.type == "meta":  # a supernet's skeleton: structure only
            return network
        for module in network.modules():
            if hasattr(module, "reset_parameters") and module is not network:
                module.reset_parameters()
        return network

    @property
    def dense_source(self) -> DenseSource | None:
        """Where a candidate's dense weights come from instead of training: its slice of
        the trained model, or None when the model's weights are not the starting point."""
        return self.trained_weights if self.trained else None

    def trained_weights(self, candidate: Candidate) -> dict[str, torch.Tensor]:
        """A state_dict for `build(candidate)`: the first channels of each group of the
        trained model, whose channels `bind` put in order of importance."""
        network = self._shared_cut(candidate.arch)
        return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}

    def supernet(self, in_shape: tuple[int, ...], n_classes: int) -> Supernet:
        """The supernet of the model: every candidate is a slice of the full widths."""
        largest = Candidate({group.name: group.channels for group in self.groups})
        return Supernet(partial(self.build, in_shape=in_shape, n_classes=n_classes), [largest])

    def describe(self, candidate: Candidate) -> str:
        """e.g. `ResNet depths 1/2 widths 32/64 64/128 ...` for the runs of blocks cut
        short and the groups cut below full width."""
        short = [
            f"{d}/{len(run.blocks)}"
            for run in self.runs
            if (d := candidate.arch.get(_depth_key(run), len(run.blocks))) < len(run.blocks)
        ]
        cut = [
            f"{w}/{g.channels}"
            for g in self.groups
            if (w := candidate.arch.get(g.name, g.channels)) < g.channels
        ]
        named = (("depths", short), ("widths", cut))
        parts = [f"{what} {' '.join(values)}" for what, values in named if values]
        return f"{type(self.model).__name__} " + (" ".join(parts) or "full size")

    def summary(self) -> list[str]:
        """What the space searches, line by line: each group with its layers and widths,
        each frozen group with its reason, and the layers that get a sparsity."""
        self._check_bound()
        lines = [f"{type(self.model).__name__} on inputs {list(self.in_shape)}: "
                 f"{len(self.groups)} groups of coupled channels"]  # fmt: skip
        for group in self.groups:
            widths = "/".join(map(str, self.choices(group)))
            lines.append(f"  arch.{group.name}.width: {widths} of {group.channels} "
                         f"(layers {', '.join(group.layers)})")  # fmt: skip
        for run in self.runs:
            depths = "/".join(map(str, range(len(run.blocks) + 1)))
            lines.append(f"  arch.{_depth_key(run)}: {depths} of the residual blocks "
                         f"{', '.join(run.blocks)}")  # fmt: skip
        lines.append(f"frozen ({len(self.frozen)}):")
        lines += [f"  {', '.join(f.layers)}: {f.reason}" for f in self.frozen]
        lines.append(f"sparsity ({self.sparsity.allocation}) for {len(self.layers)} layers")
        return lines

    def _check_bound(self) -> None:
        if self.in_shape is None:
            raise RuntimeError("ModelSpace.bind(in_shape, n_classes) must run first")

    def _cut(self, arch: Mapping[str, int]) -> nn.Module:
        """A copy of the model with the trailing channels of each group beyond its width
        in `arch` removed, with their BatchNorms and the next layers' inputs."""
        return copy.deepcopy(self._shared_cut(arch))

    def _shared_cut(self, arch: Mapping[str, int]) -> nn.Module:
        """The cut model of `_cut`, shared with later calls for the same `arch`: read it,
        never change it."""
        self._check_bound()
        dropped = self._dropped(arch)
        kept = _kept_by(dropped)
        cuts = {
            next(layer for layer in group.layers if kept(layer)): arch[group.name]
            for group in self.groups
            if group.name in arch and any(map(kept, group.layers))
        }
        plan = {"drop": sorted(dropped), "cut": cuts}
        return _cut_model(self.model, self.in_shape, json.dumps(plan, sort_keys=True))

    def _dropped(self, arch: Mapping[str, int]) -> set[str]:
        """The blocks the depths of `arch` leave out."""
        depths = {run.name: arch[_depth_key(run)] for run in self.runs if _depth_key(run) in arch}
        return left_out(self.runs, depths)

    def _kept(self, arch: Mapping[str, int]) -> Callable[[str], bool]:
        """Whether a module path is kept by the depths of `arch` (a predicate)."""
        return _kept_by(self._dropped(arch))


def _kept_by(dropped: set[str]) -> Callable[[str], bool]:
    """Whether a module path lies outside every block of `dropped` (a predicate)."""
    return lambda path: not any(path == b or path.startswith(b + ".") for b in dropped)


def _depth_key(run: BlockRun) -> str:
    """The key of `run`'s depth in a candidate's architecture (`arch.<key>` in a trial)."""
    return f"{run.name}.depth"


def load_weights(model: nn.Module, path: str) -> None:
    """Load the state_dict saved at `path` into `model`; ValueError in one line when it
    cannot be read or does not fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as error:
        first = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise ValueError(f"space.weights={path}: {first}") from error


def adapt_first_conv(model: nn.Module, channels: int) -> None:
    """Rebuild `model`'s first Conv2d (in registration order) for `channels` input
    channels when it takes another number, each new kernel the old ones' sum over their
    input channels; a grouped first convolution is left as it is."""
    path, first = next(
        ((p, m) for p, m in model.named_modules() if isinstance(m, nn.Conv2d)), (None, None)
    )
    if first is None or first.in_channels == channels or first.groups != 1:
        return
    conv = nn.Conv2d(
        channels, first.out_channels, first.kernel_size, first.stride, first.padding,
        first.dilation, bias=first.bias is not None, padding_mode=first.padding_mode,
    )  # fmt: skip
    with torch.no_grad():
        conv.weight.copy_(first.weight.sum(1, keepdim=True).expand_as(conv.weight) / channels)
        if first.bias is not None:
            conv.bias.copy_(first.bias)
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, conv)


@lru_cache(maxsize=8)  # a trial's slice and build, a supernet's largest and smallest
def _cut_model(model: nn.Module, in_shape: tuple[int, ...], plan_json: str) -> nn.Module:
    """`model` with the blocks `plan_json` drops left out, then the group of each layer it
    cuts cut to its width (kept for reuse)."""
    import torch_pruning as tp

    plan = json.loads(plan_json)
    network = copy.deepcopy(model)
    drop_blocks(network, set(plan["drop"]))
    example = torch.zeros(2, *in_shape, device="cpu")
    with evaluating(network), torch.device("cpu"):  # the template's device, even in a skeleton
        for name, width in plan["cut"].items():
            layer = network.get_submodule(name)
            channels = layer.weight.shape[0]
            if width < channels:
                graph = tp.DependencyGraph().build_dependency(network, example_inputs=example)
                group = graph.get_pruning_group(
                    layer, remove_outputs_fn(layer), idxs=list(range(width, channels))
                )
                group.prune()
    return network
