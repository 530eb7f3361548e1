"""PROXY_TIMEOUT_REACHED: an in-cluster proxy cut requests before the load balancer would.

ingress-nginx gives up on an upstream that sends nothing for ``proxy-read-timeout`` (60 s
unless its ConfigMap or an Ingress annotation says otherwise) and answers 504 itself. For
the load balancer that 504 is a response from its target: CloudWatch counts it as a target
5XX (``HTTPCode_Target_5XX_Count`` on an ALB, ``HTTPCode_Backend_5XX`` on a Classic LB), not
an ELB one, and the latency maximum sits at the proxy's timeout. An inner request timeout
shorter than the outer one is the right order, so the values alone are no finding: it takes
minutes whose latency reached the proxy's timeout and that count target 5XX. An NLB, and a
Classic LB with only TCP listeners, publish no HTTP metrics, so behind them it is unknown.
"""

from __future__ import annotations

import logging

from checks import kube, series
from checks.fixes import fix
from checks.ladder import (
    PROXY_READ_TIMEOUT,
    NginxLayer,
    NginxValue,
    lb_idle,
    lb_label,
    lbs_in_front,
    nginx_layers,
)
from checks.metrics_catalog import ELB_5XX_METRICS, LATENCY_METRIC, TARGET_5XX_METRIC
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.rules.app_keepalive import pools_connections
from checks.snapshot import KubeObject, LoadBalancer, Snapshot
from checks.thresholds import IDLE_TIMEOUT_MARGIN_S

logger = logging.getLogger(__name__)

CODE = "PROXY_TIMEOUT_REACHED"
# Responses the targets sent, which is where a proxy's own 504 is counted.
# How far below the load balancer's idle timeout a suggested proxy timeout stays.
MARGIN_S = 5
_NGINX_METRICS = (
    "ingress-nginx's own metrics (nginx_ingress_controller_request_duration_seconds, and "
    "nginx_ingress_controller_requests with status 504) could not be reached"
)


def suggested_timeout(current: float, idle: int) -> tuple[int, bool]:
    """A longer read timeout to offer, and whether the load balancer's idle timeout must
    be raised first for it to stay the inner one."""
    doubled = max(int(current) * 2, 120)
    wanted = -(-doubled // 60) * 60
    below = idle - MARGIN_S
    if below > current:
        return min(wanted, below), False
    return wanted, True


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for layer in nginx_layers(snapshot):
        for lb in lbs_in_front(snapshot, layer):
            findings.extend(_judge(snapshot, layer, lb))
    return findings


def _resource(layer: NginxLayer, ingresses: list[KubeObject]) -> str:
    return kube.ref(ingresses[0]) if ingresses and ingresses[0].get("kind") else layer.service_ref


def _value_text(value: NginxValue) -> str:
    shown = f"{value.seconds:g} s" if value.seconds is not None else "unknown"
    return f"proxy-read-timeout {shown}: {value.source}"


def _judge(snapshot: Snapshot, layer: NginxLayer, lb: LoadBalancer) -> list[Finding]:
    idle, idle_source = lb_idle(lb)
    idle_text = f"the {lb_label(lb)}'s idle timeout is {idle} s ({idle_source})"
    groups = layer.per_ingress(PROXY_READ_TIMEOUT)
    if lb.type not in LATENCY_METRIC or not pools_connections(lb):
        kind = "An NLB" if lb.type == "network" else "A Classic LB with only TCP listeners"
        # Limitation: ingress-nginx's Prometheus metrics are not read, so behind a TCP
        # load balancer a proxy timeout cannot be told from a fast answer.
        return [
            Finding(
                CODE,
                Status.UNKNOWN,
                Severity.INFO,
                f"Could not tell whether {layer.label} cut requests at its proxy-read-timeout "
                f"behind the {lb_label(lb)}",
                _resource(layer, groups[0][0]),
                (
                    f"{kind} publishes no HTTP metrics, and {_NGINX_METRICS}.",
                    *(_value_text(value) for _, value in groups),
                    f"{idle_text[0].upper()}{idle_text[1:]}.",
                ),
            )
        ]
    latency_name = LATENCY_METRIC[lb.type]
    target_name = TARGET_5XX_METRIC[lb.type]
    latency = series.get(snapshot, lb, latency_name)
    gap = snapshot.gap("metrics")
    if latency is None:
        reason = (
            gap.reason
            if gap
            else f"no {latency_name} datapoints in the last {snapshot.window_s // 60} minutes"
        )
        return [
            Finding(
                CODE,
                Status.UNKNOWN if gap else Status.PASS,
                Severity.INFO,
                f"Could not compare {latency_name} of {lb.name} with {layer.label}'s "
                "proxy-read-timeout"
                if gap
                else f"No traffic on {lb.name} to compare with {layer.label}'s proxy-read-timeout",
                _resource(layer, groups[0][0]),
                (reason, *(_value_text(value) for _, value in groups)),
            )
        ]
    # CloudWatch has no datapoint for a minute without target 5XX: absent means none.
    target_5xx = series.by_minute(series.get(snapshot, lb, target_name))
    elb_5xx = series.sum_by_minute(*(series.get(snapshot, lb, m) for m in ELB_5XX_METRICS[lb.type]))
    by_minute = series.by_minute(latency)
    return [
        _judge_group(
            snapshot,
            layer,
            lb,
            ingresses,
            value,
            (idle, idle_text),
            (latency_name, by_minute),
            (target_name, target_5xx),
            elb_5xx,
        )
        for ingresses, value in groups
    ]


def _judge_group(
    snapshot: Snapshot,
    layer: NginxLayer,
    lb: LoadBalancer,
    ingresses: list[KubeObject],
    value: NginxValue,
    idle_info: tuple[int, str],
    latency_info: tuple[str, dict[float, float]],
    target_info: tuple[str, dict[float, float]],
    elb_5xx: dict[float, float],
) -> Finding:
    idle, idle_text = idle_info
    latency_name, by_minute = latency_info
    target_name, target_5xx = target_info
    resource = _resource(layer, ingresses)
    names = ", ".join(f"{kube.namespace(i)}/{kube.name(i)}" for i in ingresses)
    where = f"{layer.label} (Ingress {names})" if ingresses else layer.label
    timeout = value.seconds
    if timeout is None:
        return Finding(
            CODE,
            Status.UNKNOWN,
            Severity.INFO,
            f"Could not read the proxy-read-timeout of {where}",
            resource,
            (_value_text(value),),
        )
    peak = max(by_minute.values(), default=0.0)
    minutes = series.window_minutes(snapshot, by_minute)
    if timeout >= idle:
        return Finding(
            CODE,
            Status.PASS,
            Severity.INFO,
            f"{where} waits {timeout:g} s for a response, not less than the {lb_label(lb)}'s "
            f"idle timeout ({idle} s): the load balancer, not the proxy, cuts slow requests",
            resource,
            (
                f"{_value_text(value)}; {idle_text}.",
                f"{latency_name} maximum: {series.fmt_seconds(peak)} over {minutes} minutes.",
            ),
        )
    at_timeout = {m for m, v in by_minute.items() if v >= timeout - IDLE_TIMEOUT_MARGIN_S}
    cut = sorted(m for m in at_timeout if target_5xx.get(m, 0) > 0)
    if not cut:
        return Finding(
            CODE,
            Status.PASS,
            Severity.INFO,
            f"{where} times requests out after {timeout:g} s, inside the {lb_label(lb)}'s "
            f"{idle} s idle timeout (the right order), and no minute shows it cutting requests",
            resource,
            (
                f"{_value_text(value)}; {idle_text}.",
                f"{latency_name} maximum: {series.fmt_seconds(peak)} over {minutes} minutes; "
                f"minutes at {timeout:g} s with {target_name}: 0.",
            ),
        )
    cut_5xx = int(sum(target_5xx[m] for m in cut))
    cut_elb = int(sum(elb_5xx.get(m, 0) for m in cut))
    cut_peak = max(by_minute[m] for m in cut)
    elb_names = " / ".join(ELB_5XX_METRICS[lb.type])
    return Finding(
        CODE,
        Status.FAIL,
        Severity.HIGH,
        f"{where} cut requests at its proxy-read-timeout of {timeout:g} s in {len(cut)} of the "
        f"last {minutes} minutes, before the {lb_label(lb)}'s {idle} s idle timeout, with "
        f"{cut_5xx} {target_name} in those minutes",
        resource,
        (
            f"{latency_name} reached {series.fmt_seconds(cut_peak)}, the proxy-read-timeout, in "
            f"{len(cut)} of the last {minutes} minutes, with {cut_5xx} {target_name} in those "
            "minutes.",
            f"Those 504s come from ingress-nginx, so the load balancer counts them as "
            f"{target_name}; it sent {cut_elb} of its own ({elb_names}) in those minutes.",
            f"{_value_text(value)}; {idle_text}: the load balancer would have waited longer.",
            "Raise the proxy-read-timeout above the slowest legitimate request and keep it below "
            "the load balancer's idle timeout, or make that request answer sooner.",
        ),
        _fixes(layer, ingresses, timeout, idle),
    )


def _fixes(
    layer: NginxLayer, ingresses: list[KubeObject], timeout: float, idle: int
) -> tuple[Fix, ...]:
    seconds, raise_lb = suggested_timeout(timeout, idle)
    fixes: list[Fix] = []
    if ingresses:
        fixes.append(
            fix(
                f"Let ingress-nginx wait {seconds} s for a response on "
                f"{'this Ingress' if len(ingresses) == 1 else 'these Ingresses'}",
                "shell",
                "proxy_read_timeout_annotation.sh.j2",
                ingresses=[
                    {"namespace": kube.namespace(i), "name": kube.name(i)} for i in ingresses
                ],
                annotation=PROXY_READ_TIMEOUT.annotation,
                seconds=seconds,
                idle=idle,
                raise_lb=raise_lb,
            )
        )
    if layer.configmap is not None:
        fixes.append(
            fix(
                f"{'Or, for' if fixes else 'For'} every Ingress of the controller: "
                f"proxy-read-timeout {seconds} in its ConfigMap",
                "shell",
                "proxy_read_timeout_configmap.sh.j2",
                namespace=kube.namespace(layer.configmap),
                name=kube.name(layer.configmap),
                patch={"data": {PROXY_READ_TIMEOUT.key: str(seconds)}},
                seconds=seconds,
                idle=idle,
                raise_lb=raise_lb,
            )
        )
    return tuple(fixes)


CHECK = Check(
    name="proxy_timeout_reached",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Requests cut by an in-cluster proxy's timeout",
    explains=(
        "ingress-nginx answers 504 itself when the upstream sends nothing for its "
        "proxy-read-timeout; behind a load balancer with a longer idle timeout, slow requests "
        "fail at the proxy's timeout and show as target 5XX, not ELB 5XX."
    ),
    judge=judge,
    templates=("proxy_read_timeout_annotation.sh.j2", "proxy_read_timeout_configmap.sh.j2"),
    step="metrics",
)
