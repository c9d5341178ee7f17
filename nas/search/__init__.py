"""A study and what keeps it alive: opening a compatible study in its storage (`storage`,
`secrets`, `recorded`), signals that never cut a storage call short (`interrupts`), the
checked `study` settings (`settings`), running trials under a shared budget with progress
and failure stops (`study`, `callbacks`), retrying dead trials (`retry`), queueing
siblings and revisits (`siblings`, `revisits`) and never a trial's parameters twice
(`repeats`), the reference and smallest architectures (`reference`), each trial's pruned
weights (`weights`) and objects built from config nodes (`configured`).

May import `nas.trial` and below; never `nas.report` (the caller prints and draws).
"""
