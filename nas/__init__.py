"""Pruning-aware neural architecture search with Optuna, PyTorch and Hydra.

Search spaces build on `nas.space` (`Candidate`, `SparsityGrid`); one trial's pipeline is
`nas.trial.pipeline.TrialPipeline`; `nas.studies.joint_search.run_search` runs a whole study.
"""

__all__ = ["load_model"]


def __getattr__(name: str):
    # `nas.load_model` imports torch on first use only: `python -m nas --help` stays fast.
    if name == "load_model":
        from nas.report.export import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
