"""What a study records of its trials: every user attr by name and type (`attrs`), and a
trial's measures read back whatever the study's objectives (`measures`). Writers and
readers alike go through these names.

May import `nas.trial` and below; `nas.search`, `nas.report`, `nas.studies` and `nas.cli`
import it.
"""
