"""What reads a study and shows it: the front as a table, CSV and JSON (`front`), plots
(`plots`), trial notes and the dashboard server (`dashboard`), export formats and
`load_model` (`export`), and front-quality measures (`front_quality`).

May import `nas.trial` and below; never `nas.search`.
"""
