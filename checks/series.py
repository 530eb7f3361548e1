"""Reading CloudWatch series of a snapshot: lookups and minute-by-minute alignment."""

from __future__ import annotations

from checks.metrics_catalog import series_key
from checks.snapshot import LoadBalancer, MetricSeries, Snapshot


def get(
    snapshot: Snapshot, lb: LoadBalancer, name: str, target_group: str = ""
) -> MetricSeries | None:
    return snapshot.metrics.get(lb.name, {}).get(series_key(name, target_group))


def by_minute(series: MetricSeries | None) -> dict[float, float]:
    """Minute timestamp -> value, for the minutes that have a datapoint."""
    if series is None:
        return {}
    if series.timestamps:
        return {
            ts: v for ts, v in zip(series.timestamps, series.values, strict=False) if v is not None
        }
    # Series built without timestamps are aligned on their last minute.
    count = len(series.values)
    return {float(i - count): v for i, v in enumerate(series.values) if v is not None}


def window_minutes(snapshot: Snapshot, per_minute: dict[float, float]) -> int:
    """The minutes a count is "in N of the last M minutes" of: the asked window, or the
    datapoints read when they reach further back."""
    return max(snapshot.window_s // 60, len(per_minute))


def sum_by_minute(*series: MetricSeries | None) -> dict[float, float]:
    """Per-minute maximum of several counts of the same responses (e.g. ELB 504 and ELB
    5XX, where the second includes the first)."""
    merged: dict[float, float] = {}
    for one in series:
        for minute, value in by_minute(one).items():
            merged[minute] = max(merged.get(minute, 0.0), value)
    return merged


def total_across_target_groups(
    snapshot: Snapshot, lb: LoadBalancer, name: str
) -> MetricSeries | None:
    """A load-balancer-wide series, or the per-target-group ones added up where AWS only
    reports it per target group."""
    whole = get(snapshot, lb, name)
    if whole is not None:
        return whole
    parts = [get(snapshot, lb, name, tg.name) for tg in lb.target_groups]
    present = [p for p in parts if p is not None]
    if not present:
        return None
    minutes: dict[float, float] = {}
    for part in present:
        for minute, value in by_minute(part).items():
            minutes[minute] = minutes.get(minute, 0.0) + value
    ordered = sorted(minutes)
    return MetricSeries(
        name=name,
        stat=present[0].stat,
        values=tuple(minutes[m] for m in ordered),
        timestamps=tuple(ordered),
    )


def fmt_seconds(value: float) -> str:
    return f"{value:.1f} s" if value % 1 else f"{int(value)} s"
