"""Weight sharing: one supernet per study from which every candidate's dense weights are
sliced (`elastic`), and how it is trained (`sandwich`).

May import `nas.trial`, `nas.space`, `nas.prune`, `nas.data` and `nas.errors`; the search
imports it, the trial pipeline never does (it is handed a source of dense weights).
"""
