"""TCP keepalive against an NLB's idle timeout.

An NLB forgets a TCP flow that stays idle for its idle timeout (350 s unless the listener
says otherwise) and answers the next packet on it with a reset. A keepalive probe sent
before then counts as traffic and keeps the flow, so on a path through an NLB that shows
resets, the pods' ``net.ipv4.tcp_keepalive_time`` (the node's, for host-network pods) must
be below the idle timeout. A Classic LB or an ALB ends the client's TCP connection itself
and keeps its own timers on requests, not on probes that carry no data, so there the values
are evidence, not a cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from checks import kube
from checks.fixes import fix
from checks.models import Finding, Fix, KubePatch, Severity, Status
from checks.registry import Check
from checks.rules.app_keepalive import Owner, owner_of
from checks.snapshot import KubeObject, LoadBalancer, Snapshot
from checks.thresholds import MAX_IDLE_TIMEOUT_S
from checks.topology import find_gap

logger = logging.getLogger(__name__)

CODE = "TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT"
KEEPALIVE_TIME = "net.ipv4.tcp_keepalive_time"
SHOWN = (KEEPALIVE_TIME, "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")
RESET_METRICS = ("TCP_ELB_Reset_Count", "TCP_Target_Reset_Count", "TCP_Client_Reset_Count")
NLB_DEFAULT_IDLE_TIMEOUT_S = 350
NLB_MAX_IDLE_TIMEOUT_S = MAX_IDLE_TIMEOUT_S["network"]
LISTENER_ATTRIBUTES_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-listener-attributes"
_LB_KIND = {"classic": "Classic LB", "application": "ALB", "network": "NLB"}


@dataclass
class Reading:
    """A pod's effective TCP keepalive settings and where they were read."""

    pod: KubeObject
    subject: str  # the key in Snapshot.sysctls: "NS/POD" or "node/NAME"
    host_network: bool
    values: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # why the keepalive time could not be read

    @property
    def pod_ref(self) -> str:
        return f"{kube.namespace(self.pod)}/{kube.name(self.pod)}"

    @property
    def keepalive_time(self) -> int | None:
        return self.values.get(KEEPALIVE_TIME)

    @property
    def where(self) -> str:
        return (
            f"node {self.subject.removeprefix('node/')} (host network)"
            if self.host_network
            else "the pod"
        )

    def shown(self) -> str:
        parts = [f"{k.rsplit('.', 1)[-1]} {self.values[k]}" for k in SHOWN if k in self.values]
        return ", ".join(parts)


def read(snapshot: Snapshot, pod: KubeObject) -> Reading:
    host_network = kube.spec(pod).get("hostNetwork") is True
    node = str(kube.spec(pod).get("nodeName", ""))
    subject = f"node/{node}" if host_network else f"{kube.namespace(pod)}/{kube.name(pod)}"
    reading = Reading(pod, subject, host_network)
    if host_network and not node:
        reading.reason = "the host-network pod is not scheduled on a node"
        return reading
    sysctls = snapshot.sysctls.get(subject)
    if sysctls is None:
        gap = snapshot.gap("sysctls")
        reading.reason = f"not read: {gap.reason}" if gap else f"{subject} was not read"
    elif KEEPALIVE_TIME not in sysctls.values:
        reading.reason = sysctls.error or f"{KEEPALIVE_TIME} was not among the values read"
    reading.values = dict(sysctls.values) if sysctls else {}
    return reading


def pod_sysctls(pod_or_template: KubeObject) -> list[dict[str, str]]:
    context = kube.spec(pod_or_template).get("securityContext") or {}
    return [
        {"name": str(s.get("name", "")), "value": str(s.get("value", ""))}
        for s in context.get("sysctls") or []
    ]


def judge(snapshot: Snapshot) -> list[Finding]:
    readings = [read(snapshot, pod) for pod in snapshot.pods]
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        proxy = snapshot.proxy_behind(lb)
        if lb.type == "network" and proxy is not None:
            # The NLB's flows end at the proxy's pods, not at the asked Service's.
            findings.append(
                Finding(
                    CODE,
                    Status.UNKNOWN,
                    Severity.MEDIUM,
                    f"The NLB {lb.name}'s flows end at {proxy.kind}; its pods' TCP keepalive "
                    "settings were not read.",
                    f"network load balancer {lb.name}",
                    (
                        f"{proxy.kind} Service {kube.ref(proxy.service)} is what the NLB "
                        "targets; the asked Service's pods sit behind it.",
                    ),
                )
            )
        elif lb.type == "network":
            findings.extend(_judge_nlb(snapshot, lb, readings))
        else:
            findings.append(_evidence_only(lb, readings))
    return findings


def _label(lb: LoadBalancer) -> str:
    return f"{_LB_KIND[lb.type]} {lb.name}"


def _evidence_only(lb: LoadBalancer, readings: list[Reading]) -> Finding:
    evidence = [
        f"{r.pod_ref}: {r.shown()} (read in {r.where})"
        if not r.reason
        else f"{r.pod_ref}: {r.reason}"
        for r in readings
    ]
    evidence.append(
        "TCP keepalive probes carry no data: they do not keep a Classic LB or ALB connection "
        "open, so these values are evidence, not a cause."
    )
    return Finding(
        code=CODE,
        status=Status.PASS,
        severity=Severity.INFO,
        summary=f"TCP keepalive does not decide idle timeouts on the {_label(lb)}",
        resource=lb.serves or lb.name,
        evidence=tuple(evidence),
    )


def _idle_timeout(lb: LoadBalancer) -> tuple[int, str]:
    if lb.idle_timeout_s is not None:
        return lb.idle_timeout_s, "tcp.idle_timeout.seconds"
    return NLB_DEFAULT_IDLE_TIMEOUT_S, "the NLB's default"


def _resets(snapshot: Snapshot, lb: LoadBalancer) -> dict[str, int] | None:
    metrics = snapshot.metrics.get(lb.name) or {}
    present = {name: int(metrics[name].total) for name in RESET_METRICS if name in metrics}
    return present or None


def _judge_nlb(snapshot: Snapshot, lb: LoadBalancer, readings: list[Reading]) -> list[Finding]:
    idle, idle_from = _idle_timeout(lb)
    resets = _resets(snapshot, lb)
    total = sum(resets.values()) if resets else 0
    minutes = max(1, snapshot.window_s // 60)
    idle_text = f"the {_label(lb)}'s idle timeout of {idle} s ({idle_from})"
    if resets is None:
        reset_text = f"no TCP reset metrics were read for the {_label(lb)}"
    else:
        counts = ", ".join(f"{name} {count}" for name, count in resets.items())
        reset_text = f"in the last {minutes} min: {counts}"
    readable = [r for r in readings if not r.reason]
    unreadable = [r for r in readings if r.reason]
    findings: list[Finding] = []

    if resets is not None and total == 0:
        values = "; ".join(f"{r.pod_ref}: {r.shown()}" for r in readable) or "none read"
        return [
            Finding(
                code=CODE,
                status=Status.PASS,
                severity=Severity.INFO,
                summary=f"The {_label(lb)} shows no TCP resets",
                resource=lb.serves or lb.name,
                evidence=(f"{reset_text}.", f"TCP keepalive read: {values}; {idle_text}."),
            )
        ]

    if not readings:
        gap = find_gap(snapshot, "kubernetes:pods")
        why = f"pods not read: {gap.reason}" if gap else "no pod of the Service was found"
        return [
            Finding(
                code=CODE,
                status=Status.UNKNOWN,
                severity=Severity.MEDIUM,
                summary=f"Could not read the TCP keepalive of the pods behind the {_label(lb)}",
                resource=lb.serves or lb.name,
                evidence=(
                    why,
                    *([f"needs {gap.needs}"] if gap and gap.needs else []),
                    f"{reset_text}; {idle_text}.",
                ),
            )
        ]

    groups: dict[tuple[object, ...], list[Reading]] = {}
    for reading in readable:
        owner = owner_of(snapshot, reading.pod)
        shared = owner.ref if owner.kind != "pod" else "pod"
        node = reading.subject if reading.host_network else ""
        key = (shared, node, reading.keepalive_time, reading.shown())
        groups.setdefault(key, []).append(reading)
    for group in groups.values():
        findings.append(_judge_group(snapshot, lb, group, idle, idle_text, reset_text, resets))
    if unreadable:
        findings.append(_unknown(lb, unreadable, idle_text))
    return findings


def _judge_group(
    snapshot: Snapshot,
    lb: LoadBalancer,
    group: list[Reading],
    idle: int,
    idle_text: str,
    reset_text: str,
    resets: dict[str, int] | None,
) -> Finding:
    first = group[0]
    value = first.keepalive_time
    assert value is not None
    pods = ", ".join(r.pod_ref for r in group)
    owner = owner_of(snapshot, first.pod)
    resource = owner.ref if owner.kind != "pod" else f"pod/{first.pod_ref}"
    measured = f"{pods}: {first.shown()} (read in {first.where})"
    if value < idle:
        return Finding(
            code=CODE,
            status=Status.PASS,
            severity=Severity.INFO,
            summary=f"TCP keepalive starts after {value} s, before the {_label(lb)} forgets "
            f"idle flows at {idle} s",
            resource=resource,
            evidence=(f"{measured}; {idle_text}.", f"{reset_text}."),
        )
    explanation = (
        f"The NLB forgets a flow idle for {idle} s and resets the next packet on it; the first "
        f"keepalive probe comes after {value} s, too late to keep the flow. The setting acts "
        "only on sockets that enable SO_KEEPALIVE."
    )
    if resets is None:
        return Finding(
            code=CODE,
            status=Status.UNKNOWN,
            severity=Severity.INFO,
            summary=f"TCP keepalive starts after {value} s, not before the {_label(lb)}'s "
            f"{idle} s idle timeout; whether it resets connections could not be read",
            resource=resource,
            evidence=(f"{measured}; {idle_text}.", f"{reset_text}.", explanation),
        )
    return Finding(
        code=CODE,
        status=Status.FAIL,
        severity=Severity.HIGH,
        summary=f"TCP keepalive starts after {value} s, not before the {_label(lb)} forgets "
        f"idle flows at {idle} s, and the NLB is resetting connections",
        resource=resource,
        evidence=(f"{measured}; {idle_text}.", f"{reset_text}.", explanation),
        fixes=tuple(_fixes(snapshot, lb, group, owner, idle, value)),
    )


def _unknown(lb: LoadBalancer, readings: list[Reading], idle_text: str) -> Finding:
    evidence = []
    for reading in readings:
        line = f"{reading.pod_ref} ({reading.where}): {reading.reason}"
        own = pod_sysctls(reading.pod)
        if own:
            shown = ", ".join(f"{s['name']}={s['value']}" for s in own)
            line += f"; the pod's securityContext.sysctls sets {shown}"
        evidence.append(line)
    evidence.append(f"Each must start TCP keepalive before {idle_text}.")
    return Finding(
        code=CODE,
        status=Status.UNKNOWN,
        severity=Severity.INFO,
        summary=f"Could not read the TCP keepalive time of {len(readings)} pod(s) behind the "
        f"{_label(lb)}",
        resource=f"pod/{readings[0].pod_ref}",
        evidence=tuple(evidence),
    )


# ---- fixes ----------------------------------------------------------------------------


def suggested_keepalive_time(idle: int) -> int:
    """Comfortably below the idle timeout, so the first probe arrives in time."""
    return idle - 50 if idle >= 120 else max(1, idle // 2)


def _fixes(
    snapshot: Snapshot,
    lb: LoadBalancer,
    group: list[Reading],
    owner: Owner,
    idle: int,
    value: int,
) -> list[Fix]:
    reading = group[0]
    seconds = suggested_keepalive_time(idle)
    fixes: list[Fix] = []
    if reading.host_network:
        fixes.append(
            fix(
                f"Start TCP keepalive after {seconds} s on the nodes (host-network pods)",
                "shell",
                "sysctl_node.j2",
                key=KEEPALIVE_TIME,
                seconds=seconds,
                node=reading.subject.removeprefix("node/"),
            )
        )
    else:
        template = owner.template or reading.pod
        sysctls = [s for s in pod_sysctls(template) if s["name"] != KEEPALIVE_TIME]
        sysctls.append({"name": KEEPALIVE_TIME, "value": str(seconds)})
        patch: dict[str, Any] = {"securityContext": {"sysctls": sysctls}}
        body = {"spec": {"template": {"spec": patch}}}
        pod_fix = fix(
            f"Start TCP keepalive after {seconds} s in the pods",
            "shell",
            "sysctl_pod.j2",
            namespace=owner.namespace,
            owner_kind=owner.kind,
            owner_name=owner.name,
            patchable=owner.patchable,
            patch=body,
            sysctls=sysctls,
            targets=[f"pod/{kube.name(r.pod)}" for r in group],
        )
        if owner.patchable:
            apply = KubePatch(owner.kind, owner.namespace, owner.name, "merge", body)
            pod_fix = replace(pod_fix, apply=apply)
        fixes.append(pod_fix)
    longer = value + 60
    service = _service(snapshot, lb)
    ports = [lst.port for lst in lb.listeners if lst.protocol.upper() == "TCP"]
    if longer <= NLB_MAX_IDLE_TIMEOUT_S and service and ports:
        annotations = [
            (f"{LISTENER_ATTRIBUTES_ANNOTATION}.TCP-{port}", f"tcp.idle_timeout.seconds={longer}")
            for port in ports
        ]
        above_default = longer > NLB_DEFAULT_IDLE_TIMEOUT_S
        nlb_fix = fix(
            f"Or give the NLB's TCP listeners an idle timeout of {longer} s",
            "shell",
            "sysctl_nlb_idle_timeout.j2",
            namespace=service[0],
            service=service[1],
            annotations=annotations,
            above_default=above_default,
        )
        if not above_default:
            # Above the default the targets' conntrack timeout must follow: an AWS change too.
            listeners = {"metadata": {"annotations": dict(annotations)}}
            nlb_fix = replace(
                nlb_fix, apply=KubePatch("Service", service[0], service[1], "merge", listeners)
            )
        fixes.append(nlb_fix)
    return fixes


def _service(snapshot: Snapshot, lb: LoadBalancer) -> tuple[str, str] | None:
    if lb.serves.startswith("service/"):
        parts = lb.serves.split("/")
        if len(parts) == 3:
            return parts[1], parts[2]
    if snapshot.service is not None:
        return kube.namespace(snapshot.service), kube.name(snapshot.service)
    return None


CHECK = Check(
    name="tcp_keepalive",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="TCP keepalive starts before the NLB forgets idle flows",
    explains=(
        "An NLB drops a TCP flow idle for its idle timeout (350 s by default) and resets the "
        "next packet on it. Long-lived idle connections (database pools, HTTP clients) then "
        "fail on their next use unless TCP keepalive probes start before the timeout."
    ),
    judge=judge,
    templates=("sysctl_pod.j2", "sysctl_node.j2", "sysctl_nlb_idle_timeout.j2"),
    step="keep-alive",
)
