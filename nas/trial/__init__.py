"""One candidate's run: the pipeline that takes it through its phases (`pipeline`: dense
weights, prune, fine-tune, measure) with the state it carries between them
(`run_state`), what it measured (`result`), its training loops (`train`), distillation
(`distill`), the dense weight cache (`dense_cache`), the checkpoint interface it is handed
(`checkpoint`), the objectives and metrics it reports (`objectives`, `metrics`), early
exit (`early_exit`) and latency.

May import `nas.prune`, `nas.data`, `nas.space` and `nas.errors`; knows nothing of a
study's storage beyond the checkpoint interface it is handed.
"""
