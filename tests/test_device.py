"""`device=`: a device this machine cannot open is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest
import torch

from nas.trial.train import resolve_device
from tests.conftest import assert_one_line_error, forked_nas

# Neither CUDA nor MPS is present where the tests run without an accelerator.
needs_no_accelerator = pytest.mark.skipif(
    torch.accelerator.is_available(), reason="this machine has an accelerator"
)


@needs_no_accelerator
@pytest.mark.parametrize("name", ["mps", "mps:0", "cuda", "cuda:7", "xpu", "hip"])
def test_a_device_this_machine_lacks_is_refused_naming_the_ones_it_has(name):
    with pytest.raises(ValueError) as error:
        resolve_device(name)
    assert str(error.value) == f"device {name!r} is not available here; available: auto, cpu"


@pytest.mark.parametrize("name", ["tpu", "bogus", "cuda:x", "-1"])
def test_a_name_torch_does_not_know_is_refused(name):
    with pytest.raises(ValueError, match=f"unknown device {name!r}: expected auto, cpu, cuda"):
        resolve_device(name)


def test_the_cpu_is_always_there():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.accelerator.is_available():
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.slow
@needs_no_accelerator
def test_search_on_a_missing_device_is_one_line_and_exit_2(tmp_path):
    result = forked_nas("search", "+space=cnn", "+debug=smoke", "device=mps", cwd=tmp_path)
    assert_one_line_error(result, "device 'mps' is not available here")
    assert not (tmp_path / "outputs" / "smoke.db").exists()
