"""The series a chart needs for each load balancer whose metrics carry a failing finding.

Pure: reads the snapshot's CloudWatch series and the findings already judged, and returns
:class:`~checks.models.ChartData` for renderers that can draw (the Slack app uploads a PNG).
The latency is drawn against the idle timeout; the load balancer's own 5XX responses and
its connection errors are counted under it.
"""

from __future__ import annotations

import logging
import re

from checks import series
from checks.metrics_catalog import CONNECTION_ERROR_METRIC, ELB_5XX_METRICS, LATENCY_METRIC
from checks.models import ChartData, Finding
from checks.snapshot import LoadBalancer, MetricSeries, Snapshot

logger = logging.getLogger(__name__)

# Findings whose evidence is a load balancer's CloudWatch series.
METRIC_CODES = frozenset(
    {"IDLE_TIMEOUT_REACHED", "BACKEND_CONNECTION_ERRORS", "PROXY_TIMEOUT_REACHED"}
)


def _names(resource: str) -> set[str]:
    return set(re.split(r"[\s,/]+", resource)) - {""}


def _lbs_for(snapshot: Snapshot, finding: Finding) -> list[LoadBalancer]:
    """The load balancers a finding is about: those named in its resource, else all.

    A finding about an in-cluster proxy names the proxy, not a load balancer; the load
    balancers in front of it carry the same timeouts in their metrics.
    """
    named = [lb for lb in snapshot.load_balancers if lb.name in _names(finding.resource)]
    return named or list(snapshot.load_balancers)


def _aligned(
    minutes: list[float], found: dict[str, MetricSeries | None]
) -> dict[str, list[float | None]]:
    aligned: dict[str, list[float | None]] = {}
    for name, one in found.items():
        if one is None:
            continue
        by_minute = series.by_minute(one)
        aligned[name] = [by_minute.get(m) for m in minutes]
    return aligned


def chart_for(
    snapshot: Snapshot, lb: LoadBalancer, codes: tuple[str, ...] = ()
) -> ChartData | None:
    """Latency against the idle timeout, with 5XX and connection errors under it; None for a
    load balancer without a latency series (an NLB, or no datapoints)."""
    latency_name = LATENCY_METRIC.get(lb.type)
    if latency_name is None:
        return None
    latency = series.get(snapshot, lb, latency_name)
    if latency is None:
        return None
    counted: dict[str, MetricSeries | None] = {
        name: series.get(snapshot, lb, name) for name in ELB_5XX_METRICS.get(lb.type, ())
    }
    connection_errors = CONNECTION_ERROR_METRIC.get(lb.type)
    if connection_errors is not None:
        counted[connection_errors] = series.total_across_target_groups(
            snapshot, lb, connection_errors
        )
    everything = [latency, *(one for one in counted.values() if one is not None)]
    minutes = sorted({m for one in everything for m in series.by_minute(one)})
    if not minutes:
        return None
    idle = lb.idle_timeout_s
    return ChartData(
        title=f"{latency_name} of {lb.name} ({lb.type})",
        unit="s",
        series=_aligned(minutes, {f"{latency_name} ({latency.stat.lower()})": latency}),
        timestamps=minutes,
        threshold=float(idle) if idle is not None else None,
        threshold_label=f"idle timeout {idle} s" if idle is not None else "",
        counts={k: v for k, v in _aligned(minutes, counted).items() if any(v)},
        resource=lb.name,
        codes=codes,
    )


def build_charts(snapshot: Snapshot, findings: list[Finding]) -> list[ChartData]:
    """One chart per load balancer that a failing or warning metric finding is about."""
    codes_by_lb: dict[str, list[str]] = {}
    for finding in findings:
        if not finding.is_problem or finding.code not in METRIC_CODES:
            continue
        for lb in _lbs_for(snapshot, finding):
            codes = codes_by_lb.setdefault(lb.name, [])
            if finding.code not in codes:
                codes.append(finding.code)
    charts: list[ChartData] = []
    for lb in snapshot.load_balancers:
        if lb.name not in codes_by_lb:
            continue
        chart = chart_for(snapshot, lb, tuple(codes_by_lb[lb.name]))
        if chart is None:
            # Limitation: an NLB has no latency metric, so its reset findings get no chart.
            logger.debug("no chart for %s: no latency series", lb.name)
            continue
        charts.append(chart)
    return charts
