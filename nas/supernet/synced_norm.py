"""BatchNorm over the whole batch when each rank holds a share of it: the mean and the
variance of every channel are summed over the ranks (on CPU too, where
`torch.nn.SyncBatchNorm` refuses to run), with gradients flowing back through the sums,
so that a network trained on shares computes what it would on the whole batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _Summed(torch.autograd.Function):
    """A tensor summed over the ranks; its gradient, summed over the ranks likewise, is
    each rank's gradient of the total loss (every rank's loss depends on every share)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        summed = tensor.clone()
        dist.all_reduce(summed)
        return summed

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        summed = grad.clone()
        dist.all_reduce(summed)
        return summed


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks, differentiably."""
    return _Summed.apply(tensor)


class SyncedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm (1-d or 2-d) whose training statistics are the whole batch's across
    the ranks; in eval mode an ordinary BatchNorm. Same tensors as the layer it replaces."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2-D to 5-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.track_running_stats:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_tensor([x.numel() // max(x.size(1), 1)])
        totals = all_reduce(torch.cat([x.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
            self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
            unbiased = var.detach() * n / (n - 1).clamp(min=1)
            self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return out


def synced_batch_norm(network: nn.Module) -> nn.Module:
    """`network` with every BatchNorm replaced by a `SyncedBatchNorm` of the same
    settings, on the same device (in place; returned for chaining)."""
    for name, module in list(network.named_modules()):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parent_name, _, child = name.rpartition(".")
            parent = network.get_submodule(parent_name)
            device = next(module.buffers(), module.weight).device
            synced = SyncedBatchNorm(
                module.num_features, module.eps, module.momentum, module.affine,
                module.track_running_stats, device=device,
            )  # fmt: skip
            synced.train(module.training)
            setattr(parent, child, synced)
    return network
