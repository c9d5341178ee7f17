from __future__ import annotations

import logging
import subprocess
import sys
import time

import optuna
import pytest
import torch
from optuna.samplers import RandomSampler
from optuna.trial import FixedTrial
from torch import nn

import nas
import nas.report.export
from nas.prune.methods import MagnitudePruning, make_permanent
from nas.report.export import (
    ExportedFiles,
    compare_latency,
    export_model,
    load_model,
    measure_latency,
)
from search_spaces.cnn import CNNSpace
from search_spaces.mobilenet import MobileNetSpace
from search_spaces.resnet import ResNetSpace

IN_SHAPE = (1, 12, 12)
N_CLASSES = 4
MIXED = {
    "sparsity.block1.conv": 0.5,
    "sparsity.block2.conv": 0.9,
    "sparsity.hidden": 0.9,
    "sparsity.head": 0.5,
}


def pruned_model(
    sparsity: dict[str, float], channels: tuple[int, int] = (8, 16), hidden: int = 32
) -> nn.Module:
    """A CNNSpace network with random batch-norm statistics, pruned and in eval mode."""
    torch.manual_seed(0)
    space = CNNSpace(channels=(8, 16, 32), hidden=(0, 32, 64))
    params = {
        "arch.blocks": 2,
        "arch.block1.channels": channels[0],
        "arch.block2.channels": channels[1],
        "arch.kernel_size": 3,
        "arch.hidden": hidden,
        **sparsity,
    }
    candidate = space.sample(FixedTrial(params))
    model = space.build(candidate, IN_SHAPE, N_CLASSES)
    with torch.no_grad():  # fresh statistics (0 and 1) would hide batch-norm mistakes
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    MagnitudePruning().apply(model, candidate.sparsity)
    make_permanent(model)
    return model.eval()


def uniform(ratio: float) -> dict[str, float]:
    return {name: ratio for name in MIXED}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[nn.Module, ExportedFiles]:
    model = pruned_model(MIXED)
    return model, export_model(model, IN_SHAPE, tmp_path_factory.mktemp("export") / "trial7")


@pytest.mark.slow
def test_writes_three_files_with_their_sizes(exported):
    _, files = exported
    names = [path.name for path, _ in files.sizes()]
    assert names == ["trial7.state_dict.pt", "trial7.sparse.pt", "trial7.pt2"]
    for path, size in files.sizes():
        assert size == path.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["state_dict", "sparse", "program"])
def test_every_file_loads_to_equal_outputs(exported, kind):
    model, files = exported
    torch.manual_seed(1)
    rng_state = torch.get_rng_state()
    loaded = load_model(getattr(files, kind))
    assert torch.equal(torch.get_rng_state(), rng_state)  # loading draws no random numbers
    assert not loaded.training
    with torch.inference_mode():
        for batch in (1, 5):  # the example input had 2 samples: the batch size is free
            x = torch.randn(batch, *IN_SHAPE)
            assert torch.equal(loaded(x), model(x))


@pytest.mark.slow
def test_state_dict_file_holds_the_plain_state_dict(exported):
    model, files = exported
    payload = torch.load(files.state_dict, weights_only=True)
    assert payload["format"] == "nas.state_dict"
    fresh = pruned_model(uniform(0.0))
    fresh.load_state_dict(payload["state_dict"])
    for key, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], tensor)


@pytest.mark.slow
def test_sparse_file_size_tracks_sparsity(tmp_path):
    # Measured on this 16-32 / hidden-64 network (23,440 weights, 12x12 input): sparse / state
    # dict = 1.04 at 0 %, 0.58 at 50 % and 0.21 at 90 % sparsity. A float32 weight costs 32
    # bits in the state_dict file and 1 mask bit + 32 x density in the sparse one (0.13 of
    # it at 90 %); the rest is torch.save's fixed cost per tensor and file, the same in both.
    # Bounds leave room for that overhead to move between torch versions.
    sizes = {}
    for ratio in (0.0, 0.5, 0.9):
        model = pruned_model(uniform(ratio), channels=(16, 32), hidden=64)
        sizes[ratio] = export_model(model, IN_SHAPE, tmp_path / f"s{ratio}")
    assert len({files.state_dict_bytes for files in sizes.values()}) == 1
    dense = sizes[0.0].state_dict_bytes
    assert 0.95 * dense < sizes[0.0].sparse_bytes < 1.10 * dense  # the mask costs 1/32
    assert sizes[0.0].sparse_bytes > sizes[0.5].sparse_bytes > sizes[0.9].sparse_bytes
    assert sizes[0.5].sparse_bytes < 0.70 * dense
    assert sizes[0.9].sparse_bytes < 0.30 * dense


def test_unknown_format_is_one_line_value_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "someone.else", "version": 1, "state_dict": {}}, path)
    with pytest.raises(ValueError, match="unknown format 'someone.else'") as error:
        load_model(path)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.slow
def test_bare_state_dict_is_refused(tmp_path, exported):
    model, _ = exported
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match="no 'format' header"):
        load_model(path)


@pytest.mark.slow
def test_pickled_module_is_refused_without_running_it(tmp_path, exported):
    model, _ = exported
    path = tmp_path / "pickled.pt"
    torch.save(model, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load_model(path)


def test_load_model_is_a_lazy_package_attribute():
    assert nas.load_model is nas.report.export.load_model
    assert "load_model" in nas.__all__
    with pytest.raises(AttributeError):
        nas.no_such_name  # noqa: B018
    code = "import sys, nas; assert 'torch' not in sys.modules, 'nas imports torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_torchscript_when_torch_export_fails(tmp_path, monkeypatch, caplog):
    model = pruned_model(MIXED)
    (tmp_path / "m.pt2").write_bytes(b"an earlier export")

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot capture this graph")

    monkeypatch.setattr(torch.export, "export", refuse)
    with caplog.at_level(logging.WARNING, logger="nas.report.export"):
        files = export_model(model, IN_SHAPE, tmp_path / "m")
    assert files.program == tmp_path / "m.ts"
    assert not (tmp_path / "m.pt2").exists()
    assert "cannot capture this graph" in caplog.text
    x = torch.randn(3, *IN_SHAPE)
    with torch.inference_mode():
        assert torch.equal(load_model(files.program)(x), model(x))


def test_export_refuses_training_mode(tmp_path):
    model = pruned_model(MIXED).train()
    with pytest.raises(ValueError, match="eval mode"):
        export_model(model, IN_SHAPE, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("space", [ResNetSpace(), MobileNetSpace()])
def test_models_of_custom_modules_load_their_structure_from_the_program(tmp_path, space):
    torch.manual_seed(0)
    candidate = space.sample(optuna.create_study(sampler=RandomSampler(seed=1)).ask())
    model = space.build(candidate, IN_SHAPE, N_CLASSES)
    MagnitudePruning().apply(model, candidate.sparsity)
    make_permanent(model)
    model.eval()
    files = export_model(model, IN_SHAPE, tmp_path / "m")
    header = torch.load(files.sparse, weights_only=True)
    assert header["architecture"] is None and header["program"] == "m.pt2"
    x = torch.randn(3, *IN_SHAPE)
    with torch.inference_mode():
        for path, _ in files.sizes():
            assert torch.equal(load_model(path)(x), model(x)), path.name


class SlowAfter(nn.Module):
    """Returns its input; sleeps `seconds` in every forward pass after the first `quick`
    ones. `shapes` records the shape of every input."""

    def __init__(self, quick: int, seconds: float) -> None:
        super().__init__()
        self.quick, self.seconds = quick, seconds
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        if len(self.shapes) > self.quick:
            time.sleep(self.seconds)
        return x


def test_measure_latency_is_the_median_of_the_timed_passes_after_the_warm_up():
    model = SlowAfter(quick=3, seconds=0.01)  # quick: the 2 warm-up passes, 1 of 3 timed
    seconds = measure_latency(model, IN_SHAPE, batch_size=2, warmup=2, repeats=3)
    assert model.shapes == [(2, *IN_SHAPE)] * 5
    assert seconds >= 0.01  # a minimum, or a median with the warm-up, would be a quick pass


@pytest.mark.slow
def test_compare_latency_times_the_model_and_its_exported_program(exported):
    model, files = exported
    comparison = compare_latency(model, files.program, IN_SHAPE, batch_size=2, warmup=1, repeats=3)
    assert comparison.dense_s > 0 and comparison.exported_s > 0
    assert str(comparison).endswith("(median of 3 after 1 warm-up, batch 2, CPU)")
