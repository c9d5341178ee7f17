"""Pruning-aware neural architecture search with Optuna, PyTorch and Hydra.

Search spaces build on `nas.space` (`Candidate`, `SparsityGrid`); one trial's pipeline is
`nas.trial.pipeline.TrialPipeline`; `nas.studies.joint_search.run_search` runs a whole study;
`nas.ModelSpace.from_model(model, example_input)` is the space of your own network.
"""

__all__ = ["ModelSpace", "load_model", "load_predictor"]


def __getattr__(name: str):
    # `nas.load_model`, `nas.load_predictor` and `nas.ModelSpace` import torch on first use
    # only: `python -m nas --help` stays fast.
    if name == "load_model":
        from nas.report.export import load_model

        return load_model
    if name == "load_predictor":
        from nas.report.predictor import load_predictor

        return load_predictor
    if name == "ModelSpace":
        from nas.derive import ModelSpace

        return ModelSpace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
