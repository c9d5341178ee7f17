"""A search space derived from any PyTorch network: its groups of coupled output channels
found by torch-pruning's dependency graph (`groups`), one elastic width per group and one
sparsity per Conv2d and Linear layer (`space`, `ModelSpace`).

May import `nas.space`, `nas.supernet`, `nas.prune` and `nas.errors`.
"""

from nas.derive.space import ModelSpace

__all__ = ["ModelSpace"]
