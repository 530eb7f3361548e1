"""TARGETS_UNHEALTHY: the load balancer marks targets unhealthy.

With every target unhealthy an ALB or NLB fails open, a Classic LB answers 503; with some
unhealthy, the healthy ones take all requests. Either way the reason code says where to look.
"""

from __future__ import annotations

import logging

from checks.aws_reasons import explain
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import LoadBalancer, Snapshot, TargetHealth

logger = logging.getLogger(__name__)
CODE = "TARGETS_UNHEALTHY"
_NOT_COUNTED = {"initial", "draining", "unused"}


def _health_check_line(lb: LoadBalancer) -> list[str]:
    return [
        f"health check of {tg.name}: {tg.health_check.protocol} port {tg.health_check.port}"
        + (f" path {tg.health_check.path}" if tg.health_check.path else "")
        + (f", success codes {tg.health_check.matcher}" if tg.health_check.matcher else "")
        for tg in lb.target_groups
        if any(not t.healthy and t.state not in _NOT_COUNTED for t in tg.targets)
    ]


def _describe(target: TargetHealth, group: str) -> str:
    where = f"{target.id}:{target.port}" if target.port else target.id
    reason = target.reason or ""
    detail = explain(reason) or target.description
    text = f"{where} in {group}: {target.state}"
    if reason:
        text += f" ({reason})"
    if detail:
        text += f": {detail}"
    return text


def _targets(lb: LoadBalancer) -> list[tuple[str, TargetHealth]]:
    if lb.type == "classic":
        return [(lb.name, t) for t in lb.instances]
    return [(tg.name, t) for tg in lb.target_groups for t in tg.targets]


def _probe_fixes(snapshot: Snapshot, lb: LoadBalancer) -> list[Fix]:
    """For HTTP health checks that fail, the same request from inside the cluster."""
    fixes: list[Fix] = []
    for tg in lb.target_groups:
        hc = tg.health_check
        if hc.protocol.upper() not in ("HTTP", "HTTPS"):
            continue
        bad = [t for t in tg.targets if not t.healthy and t.state not in _NOT_COUNTED]
        if not bad or tg.target_type != "ip":
            continue
        target = bad[0]
        port = target.port if hc.port == "traffic-port" else hc.port
        url = f"{hc.protocol.lower()}://{target.id}:{port}{hc.path or '/'}"
        fixes.append(
            fix(
                f"Ask {url} from inside the cluster, as the health check does "
                f"(expects {hc.matcher or '200'})",
                "shell",
                "health_probe.sh.j2",
                namespace=snapshot.namespace,
                url=url,
            )
        )
    return fixes


def _fixes(snapshot: Snapshot, lb: LoadBalancer) -> tuple[Fix, ...]:
    if lb.type == "classic":
        return (
            fix(
                "See each instance's health and reason",
                "shell",
                "describe_health.sh.j2",
                lb_type="classic",
                name=lb.name,
                region=snapshot.region,
            ),
        )
    described = [
        fix(
            f"See target health of {tg.name}",
            "shell",
            "describe_health.sh.j2",
            lb_type=lb.type,
            name=tg.name,
            arn=tg.arn,
            region=snapshot.region,
        )
        for tg in lb.target_groups
        if any(not t.healthy and t.state not in _NOT_COUNTED for t in tg.targets)
    ]
    return tuple(_probe_fixes(snapshot, lb) + described)


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        resource = f"{lb.type} load balancer {lb.name}"
        gap = snapshot.gap("target-health")
        targets = _targets(lb)
        if not targets:
            if gap is not None:
                findings.append(
                    Finding(
                        CODE,
                        Status.UNKNOWN,
                        Severity.HIGH,
                        f"Could not read target health of {lb.name}.",
                        resource,
                        (gap.reason,),
                    )
                )
            continue
        unhealthy = [(g, t) for g, t in targets if not t.healthy and t.state not in _NOT_COUNTED]
        if not unhealthy:
            findings.append(
                Finding(
                    CODE,
                    Status.PASS,
                    Severity.HIGH,
                    f"All {len(targets)} target(s) of {lb.name} are healthy.",
                    resource,
                )
            )
            continue
        every = len(unhealthy) == len(targets)
        findings.append(
            Finding(
                CODE,
                Status.FAIL if every else Status.WARN,
                Severity.CRITICAL if every else Severity.MEDIUM,
                f"{len(unhealthy)} of {len(targets)} target(s) of {lb.name} are unhealthy"
                + (": no healthy target is left." if every else "."),
                resource,
                (*(_describe(t, g) for g, t in unhealthy), *_health_check_line(lb)),
                _fixes(snapshot, lb),
            )
        )
    return findings


CHECK = Check(
    name="targets_unhealthy",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Targets marked unhealthy",
    explains="Unhealthy targets get no traffic; with none healthy, requests fail.",
    judge=judge,
    templates=("describe_health.sh.j2",),
    step="load balancer",
)
