"""What a search's follow-ups ask of its trial pipeline about the candidate that trial
parameters choose: what it costs, and whether its dense weights are cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.record.candidate import candidate_of
from nas.search.objective import holds_dense
from nas.trial.dense_cache import arch_seed
from nas.trial.pipeline import TrialPipeline


@dataclass(frozen=True)
class PipelineCandidates:
    """The candidates of a search's trial `pipeline`, their weights seeded by `seed` and
    their architecture (the `Candidates` of `nas.search.follow_up`)."""

    pipeline: TrialPipeline
    seed: int

    def planned_epochs(self, params: dict[str, Any], finetune_epochs: int | None = None) -> float:
        """The training epochs a trial of `params` costs, fine-tuning `finetune_epochs`
        (the pipeline's own when None)."""
        candidate = candidate_of(self.pipeline.space, params)
        pipeline = self.pipeline
        if finetune_epochs is not None:
            pipeline = pipeline.finetuning(finetune_epochs)
        return pipeline.planned_epochs(candidate, arch_seed(self.seed, candidate.arch))

    def holds_dense(self, params: dict[str, Any]) -> bool:
        """Whether the dense weights of the architecture `params` choose are cached."""
        return holds_dense(self.pipeline, params, self.seed)
