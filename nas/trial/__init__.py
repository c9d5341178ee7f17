"""One candidate's run: the pipeline that builds, trains, prunes, fine-tunes and evaluates
it (`pipeline`), with its training loops (`train`), distillation (`distill`), the dense
weight cache (`dense_cache`), mid-trial checkpoints (`checkpoint`), the objectives and
metrics it reports (`objectives`, `metrics`), early exit (`early_exit`) and latency.

May import `nas.prune`, `nas.data`, `nas.space` and `nas.errors`; knows nothing of a
study's storage beyond the checkpoint interface it is handed.
"""
