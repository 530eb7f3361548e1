"""IDLE_TIMEOUT_NOT_APPLIED for idle timeouts asked under a wrong, malformed or misplaced
key, which the well-formed-ask check cannot see.

An annotation such as ``alb.ingress.kubernetes.io/connection-idle-timeout: "1800"`` plainly
asks for 1800 s; no controller reads it, so the load balancer keeps its old timeout and
the 504s go on. Offline (judging manifests), the load balancer's value is unknown, so any
ask the data shows cannot apply is reported, with its reason.
"""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations import roles
from checks.annotations.judge import Evaluation, evaluate
from checks.annotations.reasons import explain_not_applied, idle_fixes, upgrade_fixes
from checks.annotations_idle import (
    DEFAULT_IDLE_TIMEOUT_S,
    asked_idle_timeouts,
    served_objects,
)
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)
CODE = "IDLE_TIMEOUT_NOT_APPLIED"


def _objects(snapshot: Snapshot, lb: LoadBalancer) -> list[KubeObject]:
    """Objects whose annotations were meant for ``lb``: those it serves, and for an ALB the
    asked Service when one of its Ingresses routes to it."""
    objects = served_objects(lb, snapshot.service, snapshot.ingresses)
    service = snapshot.service
    if (
        lb.type == "application"
        and service is not None
        and service not in objects
        and any(roles.routes_to(i, service) for i in objects)
    ):
        objects.append(service)
    return objects


def _finding(
    snapshot: Snapshot,
    lb: LoadBalancer,
    obj: KubeObject,
    key: str,
    seconds: int,
    effective: int | None,
    reasons: list[str],
    fixes: list[Fix] | None = None,
) -> Finding:
    """``fixes``: what makes the ask apply; by default, moving it where the controller reads
    it."""
    ref = kube.ref(obj)
    if effective is None:
        summary = (
            f"{ref} asks for an idle timeout of {seconds} s under {key}, which "
            f"will not be applied: the {lb.type} load balancer keeps its current value "
            f"({DEFAULT_IDLE_TIMEOUT_S[lb.type]} s when new)."
        )
    else:
        summary = (
            f"{ref} asks for an idle timeout of {seconds} s under {key}, but {lb.name} has "
            f"{effective} s: the annotation was not applied."
        )
    evidence = [f"reason: {r}" for r in reasons]
    if effective is not None:
        evidence.append(f"{lb.type} load balancer {lb.name}: idle timeout {effective} s")
    return Finding(
        CODE,
        Status.FAIL,
        Severity.HIGH,
        summary,
        ref,
        tuple(evidence),
        tuple(idle_fixes(snapshot, lb, obj, seconds, key) if fixes is None else fixes),
    )


def _judge_lb(snapshot: Snapshot, lb: LoadBalancer, evaluation: Evaluation) -> list[Finding]:
    offline = roles.offline(snapshot)
    effective = None if offline else lb.idle_timeout_s
    if effective is None and not offline and lb.type == "network":
        effective = DEFAULT_IDLE_TIMEOUT_S["network"]
    objects = _objects(snapshot, lb)
    # What the well-formed-ask check reads: only the objects the load balancer serves.
    well_formed = {
        (kube.ref(a.obj), a.key): a.seconds
        for a in asked_idle_timeouts(lb, served_objects(lb, snapshot.service, snapshot.ingresses))
        if a.seconds is not None
    }
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for issue in evaluation.issues:
        if issue.idle_seconds is None or not any(issue.obj is o for o in objects):
            continue
        ident = (kube.ref(issue.obj), issue.key)
        # The well-formed-ask check already reports these against the live value.
        if ident in seen or (not offline and ident in well_formed):
            continue
        seen.add(ident)
        if effective is not None and issue.idle_seconds == effective:
            continue
        reasons = explain_not_applied(snapshot, issue.obj, issue.key, evaluation)
        findings.append(
            _finding(snapshot, lb, issue.obj, issue.key, issue.idle_seconds, effective, reasons)
        )
    if not offline:
        return findings
    for (ref, key), seconds in well_formed.items():
        if (ref, key) in seen:
            continue
        obj = next(o for o in objects if kube.ref(o) == ref)
        reasons = explain_not_applied(snapshot, obj, key, evaluation)
        # Offline, only reasons that certainly stop the ask count (not an unknown release).
        certain = [r for r in reasons if "could not be read" not in r]
        if certain:
            # The ask is already where the controller reads it: only an upgrade can help; a
            # group's disagreement has its own finding and fix.
            upgrade = upgrade_fixes(snapshot, lb, obj, key, seconds, evaluation)
            findings.append(_finding(snapshot, lb, obj, key, seconds, None, certain, upgrade))
    return findings


def judge(snapshot: Snapshot) -> list[Finding]:
    evaluation = evaluate(snapshot)
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        findings.extend(_judge_lb(snapshot, lb, evaluation))
    return findings


CHECK = Check(
    name="idle_timeout_ask_problems",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Idle timeout asked where no controller applies it",
    explains=(
        "An idle timeout asked under a misspelt, malformed or misplaced key never reaches the "
        "load balancer, which keeps cutting requests at its old timeout."
    ),
    judge=judge,
    templates=("annotate_idle_timeout.sh.j2", "annotation_nlb_conntrack.sh.j2"),
    step="annotations",
)
