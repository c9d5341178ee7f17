"""Pruning as mechanism: per-layer masks, N:M and structured channel removal
(`methods`), allocation rules that share one overall sparsity among layers
(`allocation`), when fine-tuning prunes (`schedule`) and counting nonzero parameters and
FLOPs (`counting`).

Imports only torch (and torch-pruning); knows nothing of trials or studies.
"""
