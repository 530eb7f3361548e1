"""BACKEND_CONNECTION_ERRORS: the load balancer failed to connect to, or lost, its targets.

Each error is a request the load balancer could not hand to a target: with no other target
to retry on, the client gets a 502 or 504.
"""

from __future__ import annotations

import logging

from checks import series
from checks.fixes import fix
from checks.links import metric_url
from checks.metrics_catalog import (
    CONNECTION_ERROR_METRIC,
    ELB_5XX_METRICS,
    LATENCY_METRIC,
    TARGET_5XX_METRIC,
)
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import LoadBalancer, Snapshot
from checks.thresholds import TARGET_CONNECT_TIMEOUT_S

logger = logging.getLogger(__name__)
CODE = "BACKEND_CONNECTION_ERRORS"


def _kind_of_failure(snapshot: Snapshot, lb: LoadBalancer, minutes: set[float]) -> list[str]:
    """Tell a target that cannot be reached (connects time out) from one that closes or
    refuses connections (fast failures), and both from errors the app itself returned."""
    lines: list[str] = []
    latency_name = LATENCY_METRIC.get(lb.type)
    latency = series.by_minute(series.get(snapshot, lb, latency_name)) if latency_name else {}
    in_error = [latency[m] for m in minutes if m in latency]
    if in_error:
        slowest = max(in_error)
        if slowest >= TARGET_CONNECT_TIMEOUT_S:
            lines.append(
                f"{latency_name} reached {series.fmt_seconds(slowest)} in those minutes: "
                f"connections time out after {TARGET_CONNECT_TIMEOUT_S:g} s, so the targets "
                "cannot be reached (security groups, network ACLs, or nothing listening)"
            )
        else:
            lines.append(
                f"{latency_name} stayed at {series.fmt_seconds(slowest)} or less in those "
                "minutes: fast failures, so the targets refused or closed the connections "
                "(a keep-alive closed first, or the process restarting)"
            )
    target_5xx = series.get(snapshot, lb, TARGET_5XX_METRIC[lb.type])
    if target_5xx is not None and target_5xx.total > 0:
        lines.append(
            f"{TARGET_5XX_METRIC[lb.type]}: {int(target_5xx.total)}: these 5XX the targets "
            "answered themselves (application errors), apart from the load balancer's"
        )
    return lines


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        metric = CONNECTION_ERROR_METRIC.get(lb.type)
        if metric is None:
            continue
        resource = f"{lb.type} load balancer {lb.name}"
        errors = series.total_across_target_groups(snapshot, lb, metric)
        if errors is None:
            gap = snapshot.gap("metrics")
            if gap is not None:
                findings.append(
                    Finding(
                        CODE,
                        Status.UNKNOWN,
                        Severity.HIGH,
                        f"Could not read {metric} of {lb.name}.",
                        resource,
                        (gap.reason,),
                    )
                )
            else:
                findings.append(
                    Finding(
                        CODE,
                        Status.PASS,
                        Severity.HIGH,
                        f"No {metric} reported for {lb.name}.",
                        resource,
                    )
                )
            continue
        per_minute = series.by_minute(errors)
        # CloudWatch leaves out minutes without data: count minutes over the whole window.
        window = series.window_minutes(snapshot, per_minute)
        bad = {m: v for m, v in per_minute.items() if v > 0}
        total = int(sum(bad.values()))
        if not bad:
            findings.append(
                Finding(
                    CODE,
                    Status.PASS,
                    Severity.HIGH,
                    f"{metric} of {lb.name} is 0 over {window} minutes.",
                    resource,
                )
            )
            continue
        elb_5xx = series.sum_by_minute(
            *(series.get(snapshot, lb, m) for m in ELB_5XX_METRICS[lb.type])
        )
        together = sum(1 for m in bad if elb_5xx.get(m, 0) > 0)
        evidence = [
            f"{metric}: {total} in {len(bad)} of the last {window} minutes "
            f"(peak {int(max(bad.values()))} in a minute)",
            f"minutes that also show ELB 5XX: {together} of {len(bad)}",
            *_kind_of_failure(snapshot, lb, set(bad)),
            f"CloudWatch graph: {metric_url(lb, snapshot.region, metric, 'Sum')}",
        ]
        findings.append(
            Finding(
                CODE,
                Status.FAIL,
                Severity.HIGH,
                f"{lb.name} failed {total} times to connect to or keep a connection with its "
                f"targets ({metric}) in the last {window} minutes.",
                resource,
                (
                    *evidence,
                    "Usual causes, checked in this report: a server behind it closing idle "
                    "keep-alive connections first, security groups or network ACLs dropping "
                    "traffic, targets that stopped listening.",
                ),
                (
                    fix(
                        f"Follow {metric} minute by minute while you fix it",
                        "shell",
                        "watch_metric.sh.j2",
                        namespace_aws={"classic": "AWS/ELB", "application": "AWS/ApplicationELB"}[
                            lb.type
                        ],
                        metric=metric,
                        dimension="LoadBalancerName" if lb.type == "classic" else "LoadBalancer",
                        dimension_value=lb.name
                        if lb.type == "classic"
                        else lb.arn.split(":loadbalancer/", 1)[-1],
                        region=snapshot.region,
                    ),
                ),
            )
        )
    return findings


CHECK = Check(
    name="backend_connection_errors",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Connections from the load balancer to targets fail",
    explains=(
        "When the load balancer cannot open or reuse a connection to a target it answers 502 "
        "or 504 for that request."
    ),
    judge=judge,
    templates=("watch_metric.sh.j2",),
    step="metrics",
)
