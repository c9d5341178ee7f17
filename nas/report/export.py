"""Export a pruned model to files people can deploy, and load them back.

`export_model(model, in_shape, out)` writes three files next to each other:

`<out>.state_dict.pt`
    `{"format": "nas.state_dict", "version": 1, "in_shape": ..., "architecture": ...,
    "state_dict": model.state_dict()}`: the plain state_dict, zeros included, so
    `torch.load(path, weights_only=True)["state_dict"]` is what `load_state_dict` takes.
`<out>.sparse.pt`
    `{"format": "nas.sparse", "version": 1, "in_shape": ..., "architecture": ...,
    "sparse": {key: {"shape", "mask", "values"}}, "dense": {key: tensor}}`. Each conv and
    linear `weight` is its nonzero mask, packed 8 entries a byte in `numpy.packbits` order
    (most significant bit first, row-major, padded with zero bits; `numpy.unpackbits(mask,
    count=numel)` reads it), and its nonzero entries in that order, in the weight's own
    dtype. Every other tensor (biases, batch-norm weights and running statistics) is in
    `dense` as is. The file shrinks with sparsity: about 1 + 32 x density bits per float32
    weight, against 32 bits in the state_dict file.
`<out>.pt2`
    `torch.export.export(model, (example,))` with a dynamic batch dimension, saved with
    `torch.export.save`; `torch.export.load(path).module()` runs it without this package
    or the search space's code. If torch.export fails for a model, a TorchScript trace
    goes to `<out>.ts` instead (logged as a warning; torch 2.14 deprecates TorchScript).

Why the two .pt files carry an `architecture`: a bare state_dict cannot be loaded without
the code that builds the network. Pickling the module would need `weights_only=False`,
which runs arbitrary code on load, and embedding the .pt2 program would store every weight
twice and undo the sparse file's savings. Search spaces build `nn.Sequential` trees of
`torch.nn` layers, so the architecture is that tree written as data: each node is
`{"type": "Sequential", "children": [[name, node], ...]}` or `{"type": "<torch.nn class
name>", "kwargs": {...}}` with the layer's constructor arguments (ints, floats, strings,
tuples). `load_model` only ever instantiates `torch.nn` classes from it, and everything
loads with `torch.load(..., weights_only=True)`. A model with other modules (a residual
block class, torchvision ops) has `"architecture": None` and `"program": "<out>.pt2"`
instead: its .pt files take their structure from that program, which must stay beside
them. `export_model` loads each written file back and checks that it gives the same
outputs as `model` before returning.

`load_model(path)` loads any of the files into a CPU module that gives outputs equal
(`torch.equal`) to the exported model's on the same CPU input. The sparse file restores
pruned weights as +0.0 where the state_dict may hold -0.0 (mask folding multiplies
negative weights by 0); the numbers and the outputs compare equal.

Latency: `measure_latency` times forward passes on the CPU. The zeros of unstructured
pruning sit in dense tensors and dense kernels multiply them like any other number, so
neither the pruned model nor the exported program is expected to run faster than the
dense network, and the sparse file saves storage, not time: only a runtime with sparse
kernels (and enough sparsity) would turn zeros into speed. Compare, do not assume.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.prune.counting import prunable_layers
from nas.trial.latency import forward_seconds

log = logging.getLogger(__name__)

STATE_DICT_FORMAT = "nas.state_dict"
SPARSE_FORMAT = "nas.sparse"
FORMAT_VERSION = 1
SUFFIXES = {
    "state_dict": ".state_dict.pt",
    "sparse": ".sparse.pt",
    "program": ".pt2",
    "torchscript": ".ts",
}
# Beside the files: how a raw image becomes an input, and the class names.
PREPROCESSING_SUFFIX = ".preprocessing.json"
# Constructor arguments that say where a layer's tensors live, not what the layer is.
_PLACEMENT_ARGS = {"device", "dtype"}
# Example inputs have 2 samples: torch.export specialises a batch dimension of size 1.
_EXAMPLE_BATCH = 2


@dataclass(frozen=True)
class ExportedFiles:
    """The files `export_model` wrote and their sizes in bytes.

    `program` is `<out>.pt2`, or `<out>.ts` where torch.export failed.
    """

    state_dict: Path
    sparse: Path
    program: Path
    state_dict_bytes: int
    sparse_bytes: int
    program_bytes: int

    def sizes(self) -> list[tuple[Path, int]]:
        """(path, size in bytes) of each file: state_dict, sparse, program."""
        return [
            (self.state_dict, self.state_dict_bytes),
            (self.sparse, self.sparse_bytes),
            (self.program, self.program_bytes),
        ]


def export_model(
    model: nn.Module,
    in_shape: tuple[int, ...],
    out: str | Path,
    preprocessing: Mapping[str, Any] | None = None,
) -> ExportedFiles:
    """Write `model` (in eval mode) as `<out>.state_dict.pt`, `<out>.sparse.pt` and
    `<out>.pt2` (or `<out>.ts`, see the module docstring); `out` is a path without suffix.
    `preprocessing` (`Preprocessing.as_dict()` of the data it learnt), when given, goes
    into both .pt files and beside them as `<out>.preprocessing.json`, for
    `nas.load_predictor`.

    Each file is loaded back with `load_model` and must give outputs equal to `model`'s on
    a random input of shape `(2, *in_shape)`, else RuntimeError. ValueError for a model in
    training mode.
    """
    if model.training:
        raise ValueError("export needs a model in eval mode: call model.eval() first")
    if any(t.device.type != "cpu" for t in model.state_dict().values()):
        model = copy.deepcopy(model).cpu()
    in_shape = tuple(int(n) for n in in_shape)
    try:
        architecture = describe_architecture(model)
    except ValueError:  # custom modules: the .pt files take their structure from the program
        architecture = None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {kind: out.with_name(out.name + suffix) for kind, suffix in SUFFIXES.items()}

    example = torch.randn(
        _EXAMPLE_BATCH, *in_shape, generator=torch.Generator().manual_seed(0), dtype=_dtype(model)
    )
    program, stale = paths["program"], paths["torchscript"]
    try:
        exported = torch.export.export(
            model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)
        )
        torch.export.save(exported, program)
    except Exception as error:  # any failure to capture the graph: fall back to a trace
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        program, stale = paths["torchscript"], paths["program"]
        log.warning(
            "torch.export failed (%s: %s); writing a TorchScript trace to %s instead",
            type(error).__name__,
            reason,
            program,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
            traced = torch.jit.trace(model, example)
            torch.jit.save(traced, program)
    stale.unlink(missing_ok=True)  # an earlier export's program must not pass for this one

    header = {"version": FORMAT_VERSION, "in_shape": in_shape, "architecture": architecture}
    sidecar = out.with_name(out.name + PREPROCESSING_SUFFIX)
    sidecar.unlink(missing_ok=True)  # an earlier export's must not pass for this one's
    if preprocessing is not None:
        header["preprocessing"] = dict(preprocessing)
        sidecar.write_text(json.dumps(dict(preprocessing), indent=1) + "\n")
    if architecture is None:
        header["program"] = program.name
    state_dict = {key: t.detach() for key, t in model.state_dict().items()}
    torch.save(
        {"format": STATE_DICT_FORMAT, **header, "state_dict": state_dict}, paths["state_dict"]
    )
    sparse, dense = _sparse_parts(model, state_dict)
    torch.save(
        {"format": SPARSE_FORMAT, **header, "sparse": sparse, "dense": dense}, paths["sparse"]
    )

    files = ExportedFiles(
        state_dict=paths["state_dict"],
        sparse=paths["sparse"],
        program=program,
        state_dict_bytes=paths["state_dict"].stat().st_size,
        sparse_bytes=paths["sparse"].stat().st_size,
        program_bytes=program.stat().st_size,
    )
    with torch.inference_mode():
        expected = model(example)
        for path, _ in files.sizes():
            if not torch.equal(load_model(path)(example), expected):
                raise RuntimeError(
                    f"{path} does not reproduce the model's outputs; it is not a faithful export"
                )
    return files


class ExportedProgramModule(nn.Module):
    """A loaded torch.export program as a module that accepts `.eval()` and `.train()`:
    the graph was captured in eval mode, and exported modules refuse both calls."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program
        self.training = False

    def train(self, mode: bool = True) -> ExportedProgramModule:
        if mode:
            raise ValueError("an exported program runs in eval mode only; it cannot train")
        return self

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.program(*inputs)


def load_model(path: str | Path) -> nn.Module:
    """The module in a file `export_model` wrote, on the CPU and in eval mode.

    Dispatches on the suffix: `.pt2` (torch.export), `.ts` (TorchScript), otherwise a .pt
    file loaded with `weights_only=True` and read by its `format` header. ValueError with
    one line for a file that is not one of these.
    """
    path = Path(path)
    if path.suffix == SUFFIXES["program"]:
        return ExportedProgramModule(torch.export.load(path).module())
    if path.suffix == SUFFIXES["torchscript"]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
            return torch.jit.load(path, map_location="cpu").eval()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} is not a nas export: it does not load with torch.load(weights_only=True)"
        ) from error
    except RuntimeError as error:  # e.g. not a zip or pickle file at all
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"{path} is not a nas export: {first}") from error
    fmt = payload.get("format") if isinstance(payload, Mapping) else None
    if fmt not in (STATE_DICT_FORMAT, SPARSE_FORMAT):
        found = "no 'format' header" if fmt is None else f"unknown format {fmt!r}"
        raise ValueError(
            f"{path} is not a nas export: {found} "
            f"(expected {STATE_DICT_FORMAT!r} or {SPARSE_FORMAT!r})"
        )
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: {fmt} version {payload.get('version')!r} is not the one this nas reads "
            f"({FORMAT_VERSION})"
        )
    if fmt == STATE_DICT_FORMAT:
        state_dict = payload["state_dict"]
    else:
        try:
            state_dict = {**payload["dense"], **_dense_weights(payload["sparse"])}
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    if payload["architecture"] is None:  # a model of custom modules: structure from the program
        model = load_model(path.with_name(payload["program"]))
        model.load_state_dict(
            state_dict if isinstance(model, torch.jit.ScriptModule) else _prefixed(state_dict)
        )
        return model
    return _rebuild(payload["architecture"], state_dict, path)


def _prefixed(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state_dict`'s keys as an `ExportedProgramModule` names them."""
    return {f"program.{key}": value for key, value in state_dict.items()}


def measure_latency(
    model: nn.Module,
    in_shape: tuple[int, ...],
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> float:
    """Median seconds per forward pass of `model` on a CPU input of shape
    `(batch_size, *in_shape)`, under `torch.inference_mode()`, after `warmup` untimed
    passes; the thread count (`torch.set_num_threads`) is left as it is."""
    if batch_size < 1:
        raise ValueError(f"need batch_size >= 1; got {batch_size}")
    x = torch.randn(
        batch_size, *in_shape, generator=torch.Generator().manual_seed(0), dtype=_dtype(model)
    )
    return forward_seconds(model, x, warmup, repeats)


@dataclass(frozen=True)
class LatencyComparison:
    """Median CPU seconds per forward pass of a model and of its exported file."""

    dense_s: float
    exported_s: float
    batch_size: int
    warmup: int
    repeats: int

    def __str__(self) -> str:
        return (
            f"dense {self.dense_s * 1e3:.2f} ms, exported {self.exported_s * 1e3:.2f} ms "
            f"(median of {self.repeats} after {self.warmup} warm-up, batch {self.batch_size}, "
            f"CPU)"
        )


def compare_latency(
    model: nn.Module,
    exported: str | Path,
    in_shape: tuple[int, ...],
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> LatencyComparison:
    """`measure_latency` of `model` and of `load_model(exported)`, one after the other.

    Only the .pt2 / .ts program runs differently from `model`; the .pt files load into the
    same eager layers. Expect no speed-up from pruning (see the module docstring).
    """
    timing = {"batch_size": batch_size, "warmup": warmup, "repeats": repeats}
    return LatencyComparison(
        dense_s=measure_latency(model, in_shape, **timing),
        exported_s=measure_latency(load_model(exported), in_shape, **timing),
        **timing,
    )


def describe_architecture(module: nn.Module) -> dict[str, Any]:
    """`module` as data (see the module docstring); ValueError if it is not a tree of
    `nn.Sequential` containers and childless `torch.nn` layers."""
    cls = type(module)
    if cls is nn.Sequential:
        return {
            "type": "Sequential",
            "children": [
                [name, describe_architecture(child)] for name, child in module.named_children()
            ],
        }
    if getattr(nn, cls.__name__, None) is not cls or cls is nn.Module:
        raise ValueError(
            f"cannot export {cls.__module__}.{cls.__qualname__}: only nn.Sequential trees of "
            f"torch.nn layers can be written as data"
        )
    if next(module.children(), None) is not None:
        raise ValueError(
            f"cannot export nn.{cls.__name__}: layers with sub-modules are not supported"
        )
    kwargs = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in _PLACEMENT_ARGS:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(module, name):
            if (
                param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
                or param.default is param.empty
            ):
                raise ValueError(
                    f"cannot export nn.{cls.__name__}: its constructor argument {name!r} "
                    f"is not an attribute to read back"
                )
            continue  # not kept on the layer: the default rebuilds it, and the check verifies
        value = getattr(module, name)
        if isinstance(param.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # e.g. bias=True/False: the layer keeps the tensor or None
        if not _is_plain(value):
            raise ValueError(
                f"cannot export nn.{cls.__name__}: constructor argument {name}={value!r} "
                f"is not a plain value"
            )
        kwargs[name] = value
    return {"type": cls.__name__, "kwargs": kwargs}


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (tuple, list)) and all(_is_plain(v) for v in value)


def _build(node: Mapping[str, Any]) -> nn.Module:
    kind = node["type"]
    if kind == "Sequential":
        return nn.Sequential(OrderedDict((name, _build(child)) for name, child in node["children"]))
    cls = getattr(nn, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"unknown layer type {kind!r} (not a torch.nn module)")
    return cls(**node["kwargs"])


def _rebuild(
    architecture: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], path: Path
) -> nn.Module:
    """The module `architecture` describes, holding `state_dict`'s tensors."""
    try:
        # On the meta device: no memory and no random initialisation (which would move the
        # global RNG); `assign=True` then puts the loaded tensors in place.
        with torch.device("meta"):
            model = _build(architecture)
        model.load_state_dict(state_dict, strict=True, assign=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: the architecture does not match the weights: {first}") from error
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path}: the file holds no values for {', '.join(left)}")
    return model.eval()


def _sparse_parts(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[dict[str, dict[str, Any]], dict[str, torch.Tensor]]:
    """(packed conv/linear weights, every other tensor) of `state_dict`."""
    weights = {f"{name}.weight" for name in prunable_layers(model)}
    sparse, dense = {}, {}
    for key, tensor in state_dict.items():
        if key in weights:
            nonzero = tensor != 0
            sparse[key] = {
                "shape": tuple(tensor.shape),
                "mask": _pack_bits(nonzero.flatten()),
                "values": tensor[nonzero],
            }
        else:
            dense[key] = tensor
    return sparse, dense


def _dense_weights(sparse: Mapping[str, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """The dense tensors of `_sparse_parts`'s packed weights."""
    weights = {}
    for key, packed in sparse.items():
        shape, values = tuple(packed["shape"]), packed["values"]
        numel = 1
        for n in shape:
            numel *= n
        if packed["mask"].numel() != (numel + 7) // 8:
            raise ValueError(
                f"{key}: the mask has {packed['mask'].numel()} bytes for {numel} weights"
            )
        nonzero = _unpack_bits(packed["mask"], numel)
        if int(nonzero.sum()) != values.numel():
            raise ValueError(
                f"{key}: the mask has {int(nonzero.sum())} bits set for {values.numel()} values"
            )
        weight = torch.zeros(numel, dtype=values.dtype)
        weight[nonzero] = values
        weights[key] = weight.reshape(shape)
    return weights


_BIT_VALUES = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
_BIT_SHIFTS = torch.tensor([7, 6, 5, 4, 3, 2, 1, 0], dtype=torch.uint8)


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """A flat bool tensor as uint8, 8 a byte, first bit the most significant (numpy.packbits)."""
    padded = torch.zeros((bits.numel() + 7) // 8 * 8, dtype=torch.uint8)
    padded[: bits.numel()] = bits
    return (padded.view(-1, 8) * _BIT_VALUES).sum(dim=1, dtype=torch.uint8)


def _unpack_bits(packed: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` bits of `_pack_bits`'s output, as a flat bool tensor."""
    bits = (packed.to(torch.uint8).unsqueeze(1) >> _BIT_SHIFTS) & 1
    return bits.flatten()[:count].bool()


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (inputs match it)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.get_default_dtype()
