"""A search space derived from any PyTorch network: its groups of coupled output channels
found by torch-pruning's dependency graph (`groups`), its runs of residual blocks
(`depth`), one elastic width per group, one depth per run and one sparsity per Conv2d and
Linear layer (`space`, `ModelSpace`).

May import `nas.space`, `nas.supernet`, `nas.prune` and `nas.errors`.
"""

from nas.derive.space import ModelSpace

__all__ = ["ModelSpace"]
