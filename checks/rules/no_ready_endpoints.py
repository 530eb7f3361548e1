"""NO_READY_ENDPOINTS: the Service has no ready endpoints.

With no ready endpoint, nothing serves the Service: ip targets are deregistered or never
registered, and nodes have nowhere to forward. The load balancer answers 503 (ALB with no
targets), 502/504 (no connection), or marks every target unhealthy.
"""

from __future__ import annotations

import logging
from typing import Any

from checks import kube, numbers, topology
from checks.fixes import fix
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, Snapshot

logger = logging.getLogger(__name__)

CODE = "NO_READY_ENDPOINTS"
SEVERITY = Severity.CRITICAL
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _selector(service: KubeObject) -> dict[str, str]:
    raw = kube.spec(service).get("selector") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _slices(snapshot: Snapshot) -> list[KubeObject]:
    return [
        s
        for s in snapshot.endpoint_slices
        if kube.labels(s).get(SERVICE_NAME_LABEL, snapshot.service_name) == snapshot.service_name
    ]


def _slice_endpoints(slices: list[KubeObject]) -> tuple[int, int]:
    """(ready, total) addresses: an endpoint whose ``ready`` is unset counts as ready, as the
    API documents."""
    ready = total = 0
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            count = len(endpoint.get("addresses") or [])
            total += count
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                ready += count
    return ready, total


def _serves(pod: KubeObject) -> bool:
    return (
        kube.pod_ready(pod)
        and bool(topology.pod_ip(pod))
        and not kube.meta(pod).get("deletionTimestamp")
    )


def why_not_ready(pod: KubeObject) -> str:
    """What keeps a pod out of the endpoints, from its status."""
    meta, status = kube.meta(pod), kube.status(pod)
    reasons: list[str] = []
    if meta.get("deletionTimestamp"):
        reasons.append("terminating")
    phase = status.get("phase")
    if phase and phase != "Running":
        reasons.append(f"phase {phase}")
    if not status.get("podIP"):
        reasons.append("no pod IP")
    conditions: dict[str, dict[str, Any]] = {
        str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)
    }
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason"):
            reasons.append(f"container {container.get('name')} waiting: {waiting['reason']}")
        elif state.get("terminated"):
            reason = (state.get("terminated") or {}).get("reason", "terminated")
            reasons.append(f"container {container.get('name')} {reason}")
        elif container.get("ready") is False:
            restarts = numbers.whole(str(container.get("restartCount") or 0)) or 0
            reasons.append(
                f"container {container.get('name')} not ready (readiness probe failing"
                + (f", {restarts} restarts" if restarts else "")
                + ")"
            )
    for gate in kube.spec(pod).get("readinessGates") or []:
        kind = str(gate.get("conditionType", ""))
        value = (conditions.get(kind) or {}).get("status")
        if value != "True":
            reasons.append(f"readiness gate {kind} is {value or 'not set'}")
    ready = conditions.get("Ready")
    if ready is None:
        reasons.append("no Ready condition")
    elif ready.get("status") != "True":
        detail = ready.get("reason") or ""
        if ready.get("message"):
            detail = f"{detail}: {ready['message']}" if detail else str(ready["message"])
        reasons.append(f"Ready is {ready.get('status')}" + (f" ({detail})" if detail else ""))
    return "; ".join(dict.fromkeys(reasons)) or "not Ready"


def judge(snapshot: Snapshot) -> list[Finding]:
    service = snapshot.service
    ask = f"{snapshot.namespace}/{snapshot.service_name}"
    resource = f"service/{ask}"
    if service is None:
        return [Finding(CODE, Status.UNKNOWN, SEVERITY, f"Service {ask} was not read.", resource)]
    if kube.spec(service).get("type") == "ExternalName":
        return [
            Finding(
                CODE,
                Status.PASS,
                SEVERITY,
                f"Service {ask} is an ExternalName: it has no endpoints by design.",
                resource,
            )
        ]
    selector = _selector(service)
    slices = _slices(snapshot)
    slice_gap = topology.find_gap(snapshot, "kubernetes:endpointslices")
    pod_gap = topology.find_gap(snapshot, "kubernetes:pods")
    pods = [
        p
        for p in snapshot.pods
        if kube.namespace(p) in ("", snapshot.namespace)
        and kube.selector_matches(selector, kube.labels(p))
    ]
    serving = [p for p in pods if _serves(p)]
    evidence: list[str] = []
    if selector:
        evidence.append(f"selector {_selector_text(selector)}")
    else:
        evidence.append("the Service has no selector: its endpoints are managed by hand")

    if slices:
        ready, total = _slice_endpoints(slices)
        evidence.append(
            f"EndpointSlices: {ready} ready of {total} address(es) in {len(slices)} slice(s)"
        )
        looked = True
    elif selector and pod_gap is None:
        # No slice was read (or none exists yet): the endpoints follow the Ready pods.
        ready = len(serving)
        looked = True
    elif not selector and slice_gap is None:
        evidence.append("no EndpointSlice names the Service")
        ready = 0
        looked = True
    else:
        ready = 0
        looked = False

    if selector and pod_gap is None:
        evidence.append(f"pods matching the selector: {len(pods)}, Ready: {len(serving)}")
        evidence.extend(
            f"{topology.pod_label(p)}: {why_not_ready(p)}" for p in pods if not _serves(p)
        )
    if not looked:
        reasons = [g.reason for g in (slice_gap, pod_gap) if g is not None]
        return [
            Finding(
                CODE,
                Status.UNKNOWN,
                SEVERITY,
                f"Could not read the endpoints of {ask}.",
                resource,
                tuple(reasons or ["no EndpointSlice and no pod was read"]),
            )
        ]
    if ready:
        return [
            Finding(
                CODE,
                Status.PASS,
                SEVERITY,
                f"Service {ask} has {ready} ready endpoint(s).",
                resource,
                tuple(evidence),
            )
        ]
    if selector and pod_gap is None and not pods:
        summary = f"Service {ask} selects no pod: selector {_selector_text(selector)} matches none."
        evidence.append(
            "compare the selector with the pods' labels: a typo or a renamed label leaves the "
            "Service empty"
        )
    elif selector and pod_gap is None:
        summary = f"Service {ask} has no ready endpoint: none of its {len(pods)} pod(s) is Ready."
    else:
        summary = f"Service {ask} has no ready endpoint."
    logger.debug("%s: no ready endpoint (%d pods, %d slices)", ask, len(pods), len(slices))
    return [
        Finding(
            CODE,
            Status.FAIL,
            SEVERITY,
            summary,
            resource,
            tuple(evidence),
            (
                fix(
                    "See the pods, their labels and why they are not ready",
                    "shell",
                    "endpoints_inspect.sh.j2",
                    namespace=snapshot.namespace,
                    service=snapshot.service_name,
                    selector=_selector_text(selector),
                    label=SERVICE_NAME_LABEL,
                ),
            ),
        )
    ]


CHECK = Check(
    name="no_ready_endpoints",
    codes=(CODE,),
    severity=SEVERITY,
    title="Service with no ready endpoints",
    explains=(
        "With no ready endpoint nothing serves the Service: the load balancer has no healthy "
        "target to send to and answers 502, 503 or 504."
    ),
    judge=judge,
    templates=("endpoints_inspect.sh.j2",),
    step="load balancer",
)
