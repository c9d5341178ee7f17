"""Pruning-aware neural architecture search with Optuna, PyTorch and Hydra.

Search spaces build on `nas.space` (`Candidate`, `SparsityGrid`); one trial's pipeline is
`nas.objective.TrialPipeline`; `nas.study.run_search` runs a whole study.
"""
