"""PNG charts of a report's :class:`~checks.models.ChartData`, drawn with matplotlib.

The latency is drawn on top with the idle timeout as a dashed line; the per-minute counts
(load-balancer 5XX, connection errors) as bars under it, on the same time axis.
matplotlib is an optional dependency (``pip install 'eks504[charts]'``): without it
:func:`render_png` returns None and the report goes out without pictures.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from datetime import UTC, datetime

from checks.models import ChartData

logger = logging.getLogger(__name__)

# Timestamps below this are minutes relative to the last one, not seconds since the epoch.
_EPOCH_2001 = 1e9
_warned = threading.Event()
# pyplot keeps global state; one figure is drawn at a time.
_draw_lock = threading.Lock()


def chart_filename(chart: ChartData) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{chart.resource or chart.title}".lower()).strip("-")
    return f"{slug or 'chart'}-latency.png"


def alt_text(chart: ChartData) -> str:
    """A sentence for screen readers, with the numbers the picture shows."""
    peaks = [
        f"{name} peaks at {max(v for v in values if v is not None):g} {chart.unit}"
        for name, values in chart.series.items()
        if any(v is not None for v in values)
    ]
    totals = [
        f"{name} {sum(v for v in values if v is not None):g} in total"
        for name, values in chart.counts.items()
    ]
    parts = [chart.title, *peaks]
    if chart.threshold is not None:
        parts.append(chart.threshold_label or f"threshold {chart.threshold:g} {chart.unit}")
    parts += totals
    return "; ".join(parts)[:1000]


def _x_values(timestamps: list[float]) -> tuple[list[object], str]:
    if timestamps and min(timestamps) > _EPOCH_2001:
        return [datetime.fromtimestamp(t, tz=UTC) for t in timestamps], "time (UTC)"
    return list(timestamps), "minutes"


def render_png(chart: ChartData) -> bytes | None:
    """The chart as PNG bytes, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        if not _warned.is_set():
            _warned.set()
            logger.warning("charts need matplotlib: pip install 'eks504[charts]'")
        return None

    xs, x_label = _x_values(chart.timestamps)
    with _draw_lock:
        fig, (top, bottom) = plt.subplots(
            2,
            1,
            sharex=True,
            figsize=(8, 4.5),
            dpi=100,
            gridspec_kw={"height_ratios": [3, 2]},
        )
        try:
            for name, values in chart.series.items():
                top.plot(
                    xs,
                    [float("nan") if v is None else v for v in values],
                    label=name,
                    marker="o",
                    markersize=3,
                )
            if chart.threshold is not None:
                top.axhline(
                    chart.threshold,
                    color="tab:red",
                    linestyle="--",
                    label=chart.threshold_label or f"{chart.threshold:g} {chart.unit}",
                )
            top.set_ylabel(chart.unit)
            peak = max(
                [v for values in chart.series.values() for v in values if v is not None]
                + ([chart.threshold] if chart.threshold is not None else [])
                + [1.0]
            )
            # Headroom keeps the threshold line and the legend off the points at the limit.
            top.set_ylim(0, peak * 1.35)
            top.set_title(chart.title, fontsize=10)
            top.legend(loc="upper left", fontsize=8, ncols=2)
            top.grid(alpha=0.3)

            names = list(chart.counts)
            width = _bar_width(xs) / max(1, len(names))
            for i, name in enumerate(names):
                offset = (i - (len(names) - 1) / 2) * width
                bar_x = [_shift(x, offset) for x in xs]
                heights = [0.0 if v is None else v for v in chart.counts[name]]
                bottom.bar(bar_x, heights, width=width, label=name)
            bottom.set_ylabel("per minute")
            bottom.set_xlabel(x_label)
            if names:
                bottom.legend(loc="upper left", fontsize=8)
            bottom.grid(alpha=0.3)
            if xs and isinstance(xs[0], datetime):
                minutes = mdates.DateFormatter("%H:%M", tz=UTC)  # type: ignore[no-untyped-call]
                bottom.xaxis.set_major_formatter(minutes)
            fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="png")
        finally:
            plt.close(fig)
    return out.getvalue()


def _bar_width(xs: list[object]) -> float:
    # Bars of one minute, in the axis' units: days for dates, minutes otherwise.
    if xs and isinstance(xs[0], datetime):
        return 0.8 / (24 * 60)
    return 0.8


def _shift(x: object, offset: float) -> object:
    if isinstance(x, datetime):
        from datetime import timedelta

        return x + timedelta(days=offset)
    assert isinstance(x, int | float)
    return x + offset
