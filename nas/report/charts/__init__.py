"""Charts defined once and drawn twice: a chart is a backend-neutral `spec.Chart` (axes,
series, titles); `html` draws it with plotly as an interactive page, `png` with
matplotlib as a static image. The charts themselves are defined in `nas.report`.
"""
