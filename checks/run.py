"""Judges a snapshot with every registered check and assembles the report."""

from __future__ import annotations

import logging
import time

from checks import kube
from checks.models import Finding, LoadBalancerSummary, Report, Severity, Status, Target
from checks.registry import Check, all_checks
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)


def judge_all(snapshot: Snapshot, checks: list[Check] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for check in checks if checks is not None else all_checks():
        started = time.monotonic()
        try:
            produced = check.judge(snapshot)
        except Exception as exc:  # one broken check must not take the report down
            logger.exception("check %s failed", check.name)
            produced = [
                Finding(
                    code,
                    Status.UNKNOWN,
                    check.severity,
                    f"The {check.title.lower()} check could not finish.",
                    evidence=(f"{type(exc).__name__}: {exc}",),
                )
                for code in check.codes
            ]
        logger.debug(
            "check %s -> %d finding(s) in %.4f s",
            check.name,
            len(produced),
            time.monotonic() - started,
        )
        findings.extend(produced)
    return findings


def _path(snapshot: Snapshot) -> list[str]:
    hops = ["client"]
    for lb in snapshot.load_balancers:
        hops.append(f"{lb.type} LB {lb.name}")
    for proxy in snapshot.proxies:
        ns, name = kube.namespace(proxy.service), kube.name(proxy.service)
        hops.append(f"{proxy.kind} (service {ns}/{name})")
    hops.append(f"service {snapshot.namespace}/{snapshot.service_name}")
    if snapshot.pods:
        hops.append(f"{len(snapshot.pods)} pod(s)")
    return hops


def build_report(snapshot: Snapshot, checks: list[Check] | None = None) -> Report:
    findings = judge_all(snapshot, checks)
    for gap in snapshot.gaps:
        if not gap.area.startswith("kubernetes:"):
            continue
        findings.append(
            Finding(
                "KUBERNETES_ACCESS",
                Status.UNKNOWN,
                Severity.INFO,
                f"Could not read {gap.resource}.",
                gap.resource,
                (gap.reason,),
            )
        )
    return Report(
        target=Target(snapshot.namespace, snapshot.service_name, snapshot.cluster),
        load_balancers=[
            LoadBalancerSummary(
                name=lb.name,
                type=lb.type,
                dns_name=lb.dns_name,
                scheme=lb.scheme,
                serves=lb.serves,
                idle_timeout_s=lb.idle_timeout_s,
            )
            for lb in snapshot.load_balancers
        ],
        findings=findings,
        path=_path(snapshot),
        generated_at=time.time(),
        window_s=snapshot.window_s,
    )
