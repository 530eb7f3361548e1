"""Which CloudWatch metrics a report reads for each load balancer type, and how.

The one home for metric names, namespaces and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.snapshot import LbType


@dataclass(frozen=True)
class MetricSpec:
    name: str
    stat: str
    per_target_group: bool = False


NAMESPACES: dict[LbType, str] = {
    "classic": "AWS/ELB",
    "application": "AWS/ApplicationELB",
    "network": "AWS/NetworkELB",
}

METRICS: dict[LbType, tuple[MetricSpec, ...]] = {
    "classic": (
        MetricSpec("Latency", "Maximum"),
        MetricSpec("HTTPCode_ELB_5XX", "Sum"),
        MetricSpec("HTTPCode_Backend_5XX", "Sum"),
        MetricSpec("BackendConnectionErrors", "Sum"),
        MetricSpec("RequestCount", "Sum"),
        MetricSpec("UnHealthyHostCount", "Maximum"),
        MetricSpec("HealthyHostCount", "Minimum"),
        MetricSpec("SurgeQueueLength", "Maximum"),
        MetricSpec("SpilloverCount", "Sum"),
    ),
    "application": (
        MetricSpec("TargetResponseTime", "Maximum"),
        MetricSpec("HTTPCode_ELB_5XX_Count", "Sum"),
        MetricSpec("HTTPCode_ELB_504_Count", "Sum"),
        MetricSpec("HTTPCode_ELB_502_Count", "Sum"),
        MetricSpec("HTTPCode_Target_5XX_Count", "Sum"),
        MetricSpec("TargetConnectionErrorCount", "Sum", per_target_group=True),
        MetricSpec("RequestCount", "Sum"),
        MetricSpec("UnHealthyHostCount", "Maximum", per_target_group=True),
    ),
    "network": (
        MetricSpec("TCP_ELB_Reset_Count", "Sum"),
        MetricSpec("TCP_Target_Reset_Count", "Sum"),
        MetricSpec("TCP_Client_Reset_Count", "Sum"),
        MetricSpec("ActiveFlowCount", "Average"),
        MetricSpec("UnHealthyHostCount", "Maximum", per_target_group=True),
    ),
}

# The metric that shows how long the load balancer waited for a target, per type.
LATENCY_METRIC: dict[LbType, str] = {"classic": "Latency", "application": "TargetResponseTime"}
# Responses the load balancer itself produced (not the targets).
ELB_5XX_METRICS: dict[LbType, tuple[str, ...]] = {
    "classic": ("HTTPCode_ELB_5XX",),
    "application": ("HTTPCode_ELB_504_Count", "HTTPCode_ELB_5XX_Count"),
}
CONNECTION_ERROR_METRIC: dict[LbType, str] = {
    "classic": "BackendConnectionErrors",
    "application": "TargetConnectionErrorCount",
}
# 5XX the targets answered themselves.
TARGET_5XX_METRIC: dict[LbType, str] = {
    "classic": "HTTPCode_Backend_5XX",
    "application": "HTTPCode_Target_5XX_Count",
    "network": "",
}
NLB_RESET_METRICS = ("TCP_ELB_Reset_Count", "TCP_Target_Reset_Count", "TCP_Client_Reset_Count")


def series_key(name: str, target_group: str = "") -> str:
    """Key of a series in ``Snapshot.metrics[lb]``: per-target-group series get a suffix."""
    return f"{name}@{target_group}" if target_group else name
