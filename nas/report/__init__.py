"""What reads a study and shows it: the front as a table, CSV and JSON (`front`), charts
(`study_charts`, drawn from `study_views`, written by `plots`; the re-validated front's
`revalidation_chart` and the `sensitivity_chart`), each defined once and drawn as HTML and
PNG (`charts`), trial notes and the dashboard server (`dashboard`), export formats and
`load_model` (`export`), and front-quality measures (`front_quality`).

May import `nas.trial` and below; never `nas.search`.
"""
