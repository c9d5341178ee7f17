"""The chart of a layer-sensitivity run (`nas.studies.sensitivity`): validation accuracy
against the sparsity of the one layer pruned, a line per layer, with the dense accuracy
and the tolerance under it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from nas.report.charts.spec import MARKERS, TAB10, TAB20, Axis, Chart, Level, Points

TITLE = "Validation accuracy with one layer pruned, the others dense"
LINE_MARKERS = tuple(marker for marker in MARKERS if marker not in ("open circle", "x"))


class Measured(Protocol):
    """One layer pruned alone to one sparsity, and what the network measured then (see
    `nas.studies.sensitivity.Point`)."""

    layer: str
    sparsity: float
    accuracy: float
    accuracy_drop: float
    nonzero_params: int


def by_layer(points: Sequence[Measured]) -> dict[str, list[Measured]]:
    """`points` grouped by layer, in the order they come."""
    layers: dict[str, list[Measured]] = {}
    for point in points:
        layers.setdefault(point.layer, []).append(point)
    return layers


def percent(sparsity: float) -> str:
    """`sparsity` as a percentage: 90%, 99.5%."""
    return f"{100 * sparsity:g}%"


def _position(sparsity: float) -> float:
    """Where a sparsity lies on the x axis: at -log10(density), so that 0.9, 0.99, ...
    spread evenly (the tick labels give the sparsity)."""
    return -math.log10(1 - sparsity)


def sensitivity_chart(
    points: Sequence[Measured], dense: float, tolerance: float, caption: str
) -> Chart:
    """Validation accuracy of `points` against the pruned layer's sparsity, one line per
    layer, with the `dense` accuracy and `dense - tolerance` as horizontal lines."""
    layers = by_layer(points)
    colors = TAB10 if len(layers) <= len(TAB10) else TAB20
    series: list = []
    for index, (layer, line) in enumerate(layers.items()):
        hover = [
            f"{layer} at {percent(p.sparsity)}: accuracy {p.accuracy:.2%}, drop "
            f"{p.accuracy_drop:.2%}, {p.nonzero_params:,} nonzero parameters"
            for p in line
        ]
        series.append(
            Points(
                layer, [_position(p.sparsity) for p in line], [p.accuracy for p in line],
                color=colors[index % len(colors)], marker=LINE_MARKERS[index % len(LINE_MARKERS)],
                line="solid", hover=hover,
            )
        )  # fmt: skip
    series.append(Level(dense, f"dense ({dense:.1%})"))
    series.append(Level(dense - tolerance, f"dense − {tolerance:.1%} (caps)", dash=True))
    grid = sorted({p.sparsity for p in points})
    x = Axis(
        "sparsity of the pruned layer (log density scale)",
        ticks=tuple((_position(s), percent(s)) for s in grid),
    )
    y = Axis("validation accuracy", percent=True)
    return Chart(TITLE, x, y, tuple(series), caption=caption, legend_title="pruned layer")
