"""Timing a model's forward pass: median of repeats after warm-up, on any device."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def forward_seconds(
    model: nn.Module, x: torch.Tensor, warmup: int = 10, repeats: int = 50
) -> float:
    """Median seconds per forward pass of `model` on `x` (on `x`'s device), under
    `torch.inference_mode()`, after `warmup` untimed passes. On a GPU every pass is
    synchronised before the clock stops; the CPU thread count is left as it is."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1; got {warmup}, {repeats}")
    synchronize = torch.cuda.synchronize if x.device.type == "cuda" else lambda: None
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        synchronize()
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)
