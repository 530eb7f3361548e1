"""IDLE_TIMEOUT_REACHED: requests cut by the load balancer at its idle timeout.

A Classic LB or ALB answers 504 when a target sends nothing back within the idle timeout.
The trace in CloudWatch: the latency maximum sits at the idle timeout in the same minutes
that count load-balancer 5XX/504 responses.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from checks import kube, numbers, series
from checks.annotations_idle import (
    ALB_IDLE_KEY,
    ALB_LB_ATTRIBUTES,
    CLB_IDLE_TIMEOUT,
    format_attributes,
    parse_attributes,
    served_objects,
)
from checks.fixes import fix
from checks.links import metric_url
from checks.metrics_catalog import ELB_5XX_METRICS, LATENCY_METRIC
from checks.models import Finding, Fix, KubePatch, Severity, Status
from checks.registry import Check
from checks.rules.app_keepalive import pools_connections
from checks.servers import detect
from checks.snapshot import KubeObject, LoadBalancer, Snapshot
from checks.thresholds import IDLE_TIMEOUT_MARGIN_S, MAX_IDLE_TIMEOUT_S

logger = logging.getLogger(__name__)
CODE = "IDLE_TIMEOUT_REACHED"
# How much shorter than the servers' keep-alive a suggested idle timeout stays.
KEEPALIVE_MARGIN_S = 5
_NUMBER = re.compile(r"(?<![\w.])([0-9]+)(?![\w.])")


def suggested_timeout(current: int, lb_type: str, ceiling: int | None = None) -> int:
    """A longer idle timeout to offer: double, on a whole minute, within AWS's range, and
    under ``ceiling`` (what the servers behind keep idle connections for) when that still
    leaves it longer than now."""
    doubled = max(current * 2, 120)
    value = min(-(-doubled // 60) * 60, MAX_IDLE_TIMEOUT_S[lb_type])
    if ceiling is not None and current < ceiling < value:
        return ceiling
    return value


def keepalive_ceiling(snapshot: Snapshot, lb: LoadBalancer) -> tuple[int | None, str]:
    """The longest idle timeout that keeps every server behind ``lb`` closing idle
    connections after it: their shortest keep-alive less a margin. ``(None, "")`` where no
    server behind reuses connections or its keep-alive is unknown."""
    if not pools_connections(lb) or snapshot.proxy_behind(lb) is not None:
        return None, ""
    shortest: tuple[float, str] | None = None
    for pod in snapshot.pods:
        for container in kube.containers(pod):
            found = detect(container, pod, snapshot.configmaps)
            if not found.reuses_connections or found.idle_timeout_s is None:
                continue
            if shortest is None or found.idle_timeout_s < shortest[0]:
                where = f"{found.server} in {kube.namespace(pod)}/{kube.name(pod)}"
                shortest = (found.idle_timeout_s, f"{where} ({found.source})")
    if shortest is None:
        return None, ""
    return int(shortest[0]) - KEEPALIVE_MARGIN_S, shortest[1]


def _pending_asks(snapshot: Snapshot, lb: LoadBalancer, idle: int) -> list[str]:
    """Idle timeouts the manifests already ask for, under any key, that differ from the one
    in effect: the fix for those is making the ask apply, not a new value."""
    asks = []
    for obj in served_objects(lb, snapshot.service, snapshot.ingresses):
        for key, value in kube.annotations(obj).items():
            if "idle" not in key and "idle_timeout" not in value:
                continue
            found = _NUMBER.findall(value)
            asked = numbers.whole(found[-1]) if found else None
            if asked is not None and asked != idle:
                asks.append(f"{kube.ref(obj)} asks for {asked} s under {key}")
    return asks


def _annotation_patch(obj: KubeObject, key: str, value: str) -> KubePatch:
    body = {"metadata": {"annotations": {key: value}}}
    kind = str(obj.get("kind", ""))
    return KubePatch(kind, kube.namespace(obj), kube.name(obj), "merge", body)


def _fixes(snapshot: Snapshot, lb: LoadBalancer, new: int) -> tuple[Fix, ...]:
    fixes: list[Fix] = []
    for obj in served_objects(lb, snapshot.service, snapshot.ingresses):
        if lb.type == "classic":
            annotate = fix(
                f"Raise the Classic LB idle timeout to {new} s",
                "shell",
                "annotate_idle_timeout.sh.j2",
                kind="service",
                namespace=kube.namespace(obj),
                name=kube.name(obj),
                key=CLB_IDLE_TIMEOUT,
                value=str(new),
            )
            fixes.append(
                replace(annotate, apply=_annotation_patch(obj, CLB_IDLE_TIMEOUT, str(new)))
            )
            fixes.append(
                fix(
                    "The same, to commit with the Service manifest",
                    "yaml",
                    "annotation_yaml.j2",
                    key=CLB_IDLE_TIMEOUT,
                    value=str(new),
                )
            )
        elif lb.type == "application":
            pairs = parse_attributes(kube.annotations(obj).get(ALB_LB_ATTRIBUTES, ""))
            pairs[ALB_IDLE_KEY] = str(new)
            value = format_attributes(pairs)
            annotate = fix(
                f"Raise the ALB idle timeout to {new} s (other attributes kept)",
                "shell",
                "annotate_idle_timeout.sh.j2",
                kind="ingress",
                namespace=kube.namespace(obj),
                name=kube.name(obj),
                key=ALB_LB_ATTRIBUTES,
                value=value,
            )
            fixes.append(replace(annotate, apply=_annotation_patch(obj, ALB_LB_ATTRIBUTES, value)))
            fixes.append(
                fix(
                    "The same, to commit with the Ingress manifest",
                    "yaml",
                    "annotation_yaml.j2",
                    key=ALB_LB_ATTRIBUTES,
                    value=value,
                )
            )
    return tuple(fixes)


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        if lb.type not in LATENCY_METRIC:
            continue  # an NLB has no idle-timeout 504: it resets idle flows instead
        resource = f"{lb.type} load balancer {lb.name}"
        idle = lb.idle_timeout_s
        latency_name = LATENCY_METRIC[lb.type]
        latency = series.get(snapshot, lb, latency_name)
        gap = snapshot.gap("metrics") or snapshot.gap("lb-attributes")
        if idle is None or latency is None:
            reason = (
                gap.reason
                if gap
                else (
                    f"no {latency_name} datapoints in the last {snapshot.window_s // 60} minutes"
                    if idle is not None
                    else "the idle timeout attribute could not be read"
                )
            )
            errors = sum(
                s.total
                for s in (series.get(snapshot, lb, m) for m in ELB_5XX_METRICS[lb.type])
                if s is not None
            )
            if not gap and idle is not None and errors > 0:
                # 5XX without latency datapoints: whether they were cut cannot be told.
                reason = (
                    f"no {latency_name} datapoints while {int(errors)} load-balancer 5XX were "
                    "counted"
                )
            status = Status.UNKNOWN if gap or idle is None or errors > 0 else Status.PASS
            findings.append(
                Finding(
                    CODE,
                    status,
                    Severity.HIGH,
                    f"Could not compare {latency_name} with the idle timeout of {lb.name}."
                    if status is Status.UNKNOWN
                    else f"No traffic on {lb.name} to compare with its idle timeout.",
                    resource,
                    (reason,),
                )
            )
            continue
        elb_errors = series.sum_by_minute(
            *(series.get(snapshot, lb, m) for m in ELB_5XX_METRICS[lb.type])
        )
        latency_by_minute = series.by_minute(latency)
        at_limit = {m for m, v in latency_by_minute.items() if v >= idle - IDLE_TIMEOUT_MARGIN_S}
        cut = sorted(m for m in at_limit if elb_errors.get(m, 0) > 0)
        peak = max(latency_by_minute.values(), default=0.0)
        errors_in_cut = int(sum(elb_errors[m] for m in cut))
        minutes = series.window_minutes(snapshot, latency_by_minute)
        if cut:
            error_label = "ELB 504" if lb.type == "application" else "ELB 5XX"
            pending = _pending_asks(snapshot, lb, idle)
            ceiling, ceiling_source = keepalive_ceiling(snapshot, lb)
            new = suggested_timeout(idle, lb.type, ceiling)
            advice: list[str] = []
            fixes: tuple[Fix, ...] = ()
            if pending:
                advice = [
                    *pending,
                    "that ask is not in effect: make it apply (see IDLE_TIMEOUT_NOT_APPLIED) "
                    "rather than setting another value",
                ]
            else:
                fixes = _fixes(snapshot, lb, new)
                if ceiling is not None and new > ceiling:
                    advice = [
                        f"{ceiling_source} closes idle connections sooner than {new} s: raise "
                        "it too (see APP_KEEPALIVE_BELOW_IDLE_TIMEOUT), or the longer idle "
                        "timeout trades these 504s for 502s"
                    ]
                    # Applied alone, the change would cause the 502s: no one-click apply.
                    fixes = tuple(replace(f, apply=None) for f in fixes)
                elif ceiling is not None:
                    advice = [
                        f"{new} s stays under the keep-alive of {ceiling_source}, so "
                        "connections are still closed by the load balancer first"
                    ]
            findings.append(
                Finding(
                    CODE,
                    Status.FAIL,
                    Severity.HIGH,
                    f"{latency_name} of {lb.name} reached its idle timeout of {idle} s in "
                    f"{len(cut)} of the last {minutes} minutes, with {errors_in_cut} "
                    f"{error_label} responses in those minutes: requests are cut at {idle} s.",
                    resource,
                    (
                        f"{latency_name} maximum: {series.fmt_seconds(peak)} "
                        f"(idle timeout {idle} s, {lb.type} attribute)",
                        f"minutes at the timeout with {error_label}: {len(cut)} of {minutes}",
                        f"{error_label} in those minutes: {errors_in_cut}",
                        f"CloudWatch graph: "
                        f"{metric_url(lb, snapshot.region, latency_name, 'Maximum')}",
                        "Raise the idle timeout above your slowest legitimate request, or make "
                        "that request answer sooner (stream, poll, or run it in the background).",
                        *advice,
                    ),
                    fixes,
                )
            )
        else:
            findings.append(
                Finding(
                    CODE,
                    Status.PASS,
                    Severity.HIGH,
                    f"{latency_name} of {lb.name} stayed under its idle timeout of {idle} s "
                    "in every minute with ELB 5XX.",
                    resource,
                    (f"{latency_name} maximum: {series.fmt_seconds(peak)} over {minutes} minutes",),
                )
            )
    return findings


CHECK = Check(
    name="idle_timeout_reached",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Requests cut at the load balancer's idle timeout",
    explains=(
        "A Classic LB or an ALB closes a request whose target sends nothing for the idle "
        "timeout and answers 504 to the client."
    ),
    judge=judge,
    templates=("annotate_idle_timeout.sh.j2", "annotation_yaml.j2"),
    step="metrics",
)
