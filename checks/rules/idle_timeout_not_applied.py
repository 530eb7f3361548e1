"""IDLE_TIMEOUT_NOT_APPLIED: an annotation asks for an idle timeout the load balancer does
not have.

The usual surprise after a fix "that should have worked": the 504s continue at the old
timeout because the controller never applied the new one.
"""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations.reasons import explain_not_applied, upgrade_fixes
from checks.annotations.roles import OFFLINE_AREA
from checks.annotations_idle import (
    ALB_IDLE_KEY,
    DEFAULT_IDLE_TIMEOUT_S,
    asked_idle_timeouts,
    class_params_idle_timeout,
    served_objects,
)
from checks.fixes import fix
from checks.kube import ref
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.rules.idle_timeout_reached import keepalive_ceiling
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)
CODE = "IDLE_TIMEOUT_NOT_APPLIED"


def _keepalive_caveat(snapshot: Snapshot, lb: LoadBalancer, seconds: int) -> list[str]:
    """Evidence that applying ``seconds`` would put the servers' keep-alive under it."""
    ceiling, source = keepalive_ceiling(snapshot, lb)
    if ceiling is None or seconds <= ceiling:
        return []
    return [
        f"once {seconds} s applies, {source} closes idle connections sooner: raise its "
        f"keep-alive too (see APP_KEEPALIVE_BELOW_IDLE_TIMEOUT) or ask for at most {ceiling} s, "
        "or the 504s turn into 502s"
    ]


def _params_fix(params: KubeObject, seconds: int) -> tuple[Fix, ...]:
    """Set the idle timeout in the IngressClassParams (every Ingress of the class gets it)."""
    attributes = kube.spec(params).get("loadBalancerAttributes")
    if not isinstance(attributes, list):
        return ()
    index = next(
        (
            i
            for i, a in enumerate(attributes)
            if isinstance(a, dict) and a.get("key") == ALB_IDLE_KEY
        ),
        None,
    )
    if index is None:
        return ()
    patch = [
        {
            "op": "replace",
            "path": f"/spec/loadBalancerAttributes/{index}/value",
            "value": str(seconds),
        }
    ]
    return (
        fix(
            f"Set {seconds} s in {ref(params)} (for every Ingress of the class)",
            "shell",
            "json_patch.sh.j2",
            kind="ingressclassparams",
            namespace="",
            name=kube.name(params),
            patch=patch,
        ),
    )


def _class_params(
    snapshot: Snapshot, objects: list[KubeObject]
) -> dict[str, tuple[KubeObject, int]]:
    """Ingress ref -> the IngressClassParams idle timeout that overrides its annotations."""
    found: dict[str, tuple[KubeObject, int]] = {}
    for obj in objects:
        if obj.get("kind") != "Ingress":
            continue
        params = class_params_idle_timeout(
            obj, snapshot.ingress_classes, snapshot.ingress_class_params
        )
        if params is not None:
            found[ref(obj)] = params
    return found


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    offline = snapshot.gap(OFFLINE_AREA) is not None
    for lb in snapshot.load_balancers:
        resource = f"{lb.type} load balancer {lb.name}"
        effective = lb.idle_timeout_s if not offline else None
        if effective is None and lb.type == "network":
            effective = DEFAULT_IDLE_TIMEOUT_S["network"]
        objects = served_objects(lb, snapshot.service, snapshot.ingresses)
        overrides = _class_params(snapshot, objects) if lb.type == "application" else {}
        for params, seconds in {id(p): (p, n) for p, n in overrides.values()}.values():
            if effective is not None and seconds != effective:
                findings.append(
                    Finding(
                        CODE,
                        Status.FAIL,
                        Severity.HIGH,
                        f"{ref(params)} sets an idle timeout of {seconds} s but {lb.name} has "
                        f"{effective} s: it was not applied.",
                        resource,
                        (
                            f"spec.loadBalancerAttributes {ALB_IDLE_KEY}={seconds}",
                            f"{lb.type} load balancer attribute: {effective} s",
                            "Look at the Ingresses' events for reconcile errors.",
                        ),
                    )
                )
        if offline:
            # Judging manifests: nothing to compare an ask with but the IngressClassParams.
            objects = [o for o in objects if ref(o) in overrides]
        for ask in asked_idle_timeouts(lb, objects):
            override = overrides.get(ref(ask.obj))
            if override is not None and ask.seconds is not None and override[1] != ask.seconds:
                params, seconds = override
                findings.append(
                    Finding(
                        CODE,
                        Status.FAIL,
                        Severity.HIGH,
                        f"{ref(ask.obj)} asks for an idle timeout of {ask.seconds} s, but its "
                        f"class's {ref(params)} sets {seconds} s, which wins.",
                        resource,
                        (
                            f"annotation {ask.key}: "
                            f"{kube.annotations(ask.obj).get(ask.key, ask.raw)!r}",
                            f"{ref(params)} spec.loadBalancerAttributes: {ALB_IDLE_KEY}={seconds}",
                            "IngressClassParams override the annotations of every Ingress of "
                            "the class: change the value there, or move the Ingress to a class "
                            "without it.",
                            *_keepalive_caveat(snapshot, lb, ask.seconds),
                        ),
                        _params_fix(params, ask.seconds),
                    )
                )
                continue
            if effective is None:
                gap = snapshot.gap("lb-attributes") or snapshot.gap("listener-attributes")
                findings.append(
                    Finding(
                        CODE,
                        Status.UNKNOWN,
                        Severity.HIGH,
                        f"Could not read the idle timeout of {lb.name} to compare with "
                        f"{ref(ask.obj)}.",
                        resource,
                        (gap.reason if gap else "attribute missing",),
                    )
                )
            elif ask.seconds is not None and ask.seconds != effective:
                findings.append(
                    Finding(
                        CODE,
                        Status.FAIL,
                        Severity.HIGH,
                        f"{ref(ask.obj)} asks for an idle timeout of {ask.seconds} s but "
                        f"{lb.name} has {effective} s: the annotation was not applied.",
                        resource,
                        (
                            f"annotation {ask.key}: "
                            f"{kube.annotations(ask.obj).get(ask.key, ask.raw)!r}",
                            f"{lb.type} load balancer attribute: {effective} s",
                            *(
                                explain_not_applied(snapshot, ask.obj, ask.key)
                                or [
                                    "Look at the object's events for reconcile errors "
                                    f"(`kubectl describe {ref(ask.obj).split('/')[0]} -n "
                                    f"{kube.namespace(ask.obj)} {kube.name(ask.obj)}`)."
                                ]
                            ),
                            *_keepalive_caveat(snapshot, lb, ask.seconds),
                        ),
                        tuple(upgrade_fixes(snapshot, lb, ask.obj, ask.key, ask.seconds)),
                    )
                )
            elif ask.seconds is not None:
                findings.append(
                    Finding(
                        CODE,
                        Status.PASS,
                        Severity.HIGH,
                        f"The idle timeout {ref(ask.obj)} asks for ({ask.seconds} s) is "
                        f"applied on {lb.name}.",
                        resource,
                    )
                )
    return findings


CHECK = Check(
    name="idle_timeout_not_applied",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Idle timeout annotation not applied",
    explains=(
        "The load balancer keeps cutting requests at its old idle timeout while the manifest "
        "says otherwise."
    ),
    judge=judge,
    step="annotations",
)
