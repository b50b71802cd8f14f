"""The digest's picture: on duty vs pledged per country (biggest gaps first) and arrivals per day.

Rendered headless with matplotlib's Agg backend into PNG bytes; no display, no global pyplot state
(a Figure per call, so concurrent renders in several threads do not interfere).
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from commands.countries import country_by_code
from commands.digest_content import DigestData, ordered_by_gap

MAX_BARS = 20
ON_DUTY_COLOUR = "#2a9d8f"
PLEDGED_COLOUR = "#d9dde3"
ARRIVALS_COLOUR = "#1d3557"


def render_chart(data: DigestData, *, dpi: int = 100) -> bytes:
    """A PNG: per country (or per capability for one country) on duty against pledged, and arrivals
    per day over the last 14 days."""
    figure = Figure(figsize=(10, 9), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1.3))

    labels, pledged, on_duty = _bars(data)
    positions = range(len(labels))
    top.barh(positions, pledged, color=PLEDGED_COLOUR, label="pledged")
    top.barh(positions, on_duty, color=ON_DUTY_COLOUR, height=0.55, label="on duty")
    for position, (wanted, present) in enumerate(zip(pledged, on_duty, strict=True)):
        top.text(max(wanted, present), position, f"  {present:,} / {wanted:,}", va="center", fontsize=7)
    top.margins(x=0.1)  # room for the labels at the end of the bars
    top.set_yticks(list(positions), labels, fontsize=8)
    top.invert_yaxis()  # biggest gap at the top
    top.set_xlabel("personnel")
    what = country_by_code(data.scope).name if data.scope else "all countries"
    top.set_title(f"On duty vs pledged — {what} (biggest gaps first)", loc="left", fontsize=11)
    top.legend(loc="lower right", fontsize=8, frameon=False)
    top.grid(axis="x", alpha=0.3)

    days = [day.strftime("%d/%m") for day, _ in data.arrivals_by_day]
    counts = [count for _, count in data.arrivals_by_day]
    bottom.bar(days, counts, color=ARRIVALS_COLOUR)
    bottom.set_title(f"Arrivals per day — last {len(days)} days", loc="left", fontsize=11)
    bottom.tick_params(axis="x", labelsize=7)
    bottom.grid(axis="y", alpha=0.3)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bars(data: DigestData) -> tuple[list[str], list[int], list[int]]:
    if data.scope is not None:
        status = data.statuses.get(data.scope)
        items = (
            sorted(status.by_capability.items(), key=lambda kv: (-kv[1].gap, kv[0] or ""))
            if status is not None
            else []
        )
        return (
            [key or "unspecified" for key, _ in items],
            [bucket.pledged for _, bucket in items],
            [max(bucket.on_duty, 0) for _, bucket in items],
        )
    ordered = ordered_by_gap(data.statuses)[:MAX_BARS]
    return (
        [country_by_code(code).name for code, _ in ordered],
        [bucket.pledged for _, bucket in ordered],
        [max(bucket.on_duty, 0) for _, bucket in ordered],
    )
