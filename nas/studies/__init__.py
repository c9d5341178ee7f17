"""Whole runs of trials, each searched and then reported: the joint search itself
(`joint_search`), the baselines beside it (`baseline`), per-layer sensitivity
(`sensitivity`) and the front retrained with other seeds (`retrain`) or on other folds of
its data (`cross_validation`).

May import `nas.search`, `nas.report` and everything below them; only `nas.cli` imports it.
"""
