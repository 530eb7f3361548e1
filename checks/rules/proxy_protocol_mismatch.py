"""PROXY_PROTOCOL_MISMATCH: the load balancer and the server behind it disagree on the
PROXY protocol header.

When the load balancer sends the header and ingress-nginx does not expect it, nginx reads
the header as a broken request; when nginx expects it and the load balancer does not send
it, nginx waits for a header that never comes. Either way clients get errors or time-outs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from checks import kube
from checks.annotations import roles
from checks.annotations.values import parse_string_map
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)
CODE = "PROXY_PROTOCOL_MISMATCH"
PROXY_KEY = "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"
TG_ATTRIBUTES_KEY = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
TG_PROXY_ATTRIBUTE = "proxy_protocol_v2.enabled"
NGINX_SETTING = "use-proxy-protocol"


@dataclass(frozen=True)
class Sender:
    sends: bool
    evidence: str


@dataclass(frozen=True)
class Receiver:
    """An ingress-nginx controller and what its ConfigMap says."""

    namespace: str
    configmap: str  # "" when the controller names none
    expects: bool | None  # None: the ConfigMap it names could not be read
    evidence: str


def sender(lb: LoadBalancer, service: KubeObject | None) -> Sender:
    notes = kube.annotations(service) if service is not None else {}
    if lb.type == "application":
        return Sender(False, f"{lb.name} is an ALB, which never sends a PROXY protocol header")
    if lb.type == "network":
        explicit = [
            (tg.name, tg.attributes[TG_PROXY_ATTRIBUTE])
            for tg in lb.target_groups
            if TG_PROXY_ATTRIBUTE in tg.attributes
        ]
        if explicit:
            on = [name for name, value in explicit if value.strip().lower() == "true"]
            shown = ", ".join(f"{name}: {value}" for name, value in explicit)
            return Sender(bool(on), f"target group attribute {TG_PROXY_ATTRIBUTE} ({shown})")
        asked = parse_string_map(notes.get(TG_ATTRIBUTES_KEY, ""), escaped=True).pairs
        if TG_PROXY_ATTRIBUTE in asked:
            raw = asked[TG_PROXY_ATTRIBUTE]
            return Sender(
                raw.lower() == "true",
                f"annotation {TG_ATTRIBUTES_KEY}: {TG_PROXY_ATTRIBUTE}={raw}",
            )
    value = notes.get(PROXY_KEY)
    if value is not None:
        return Sender(value.strip() == "*", f"annotation {PROXY_KEY}: {value!r}")
    return Sender(False, f"{lb.name} has no PROXY protocol setting (off by default)")


def _nginx_args(snapshot: Snapshot) -> list[tuple[str, list[str]]]:
    """(namespace, args) of every ingress-nginx controller container in the snapshot."""
    found: list[tuple[str, list[str]]] = []
    for obj in [*snapshot.pods, *snapshot.workloads]:
        template = obj if obj.get("kind") == "Pod" else kube.pod_template(obj)
        for container in kube.containers(template):
            args = [
                str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]
            ]
            image = str(container.get("image", ""))
            if "ingress-nginx/controller" in image or any(
                a.endswith("nginx-ingress-controller") for a in args
            ):
                found.append((kube.namespace(obj) or snapshot.namespace, args))
    return found


def receiver(snapshot: Snapshot) -> Receiver | None:
    controllers = _nginx_args(snapshot)
    if not controllers:
        return None
    namespace, args = controllers[0]
    ref = next((a.split("=", 1)[1] for a in args if a.startswith("--configmap=")), "")
    ref = ref.replace("$(POD_NAMESPACE)", namespace)
    if not ref:
        return Receiver(namespace, "", False, "ingress-nginx names no ConfigMap (PROXY off)")
    cm_namespace, _, cm_name = ref.rpartition("/")
    configmap = snapshot.configmaps.get(cm_name)
    if (
        configmap is not None
        and cm_namespace
        and kube.namespace(configmap) not in ("", cm_namespace)
    ):
        configmap = None
    if configmap is None:
        if snapshot.gap("kubernetes:configmaps") is not None:
            return Receiver(cm_namespace or namespace, cm_name, None, f"ConfigMap {ref} not read")
        # ingress-nginx runs on its defaults when the ConfigMap it names does not exist.
        return Receiver(
            cm_namespace or namespace,
            cm_name,
            False,
            f"ConfigMap {ref} does not exist ({NGINX_SETTING} false by default)",
        )
    data = configmap.get("data") or {}
    raw = str(data.get(NGINX_SETTING, "false"))
    shown = (
        f"ConfigMap {ref}: {NGINX_SETTING}={raw!r}"
        if NGINX_SETTING in data
        else (f"ConfigMap {ref} does not set {NGINX_SETTING} (false by default)")
    )
    return Receiver(cm_namespace or namespace, cm_name, raw.strip().lower() == "true", shown)


def judge(snapshot: Snapshot) -> list[Finding]:
    server = receiver(snapshot)
    service = snapshot.service
    if server is None or service is None:
        return []
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        if kube.ref(service) not in roles.refs_of(lb):
            continue
        sent = sender(lb, service)
        resource = f"{lb.type} load balancer {lb.name}"
        if server.expects is None:
            findings.append(
                Finding(
                    CODE,
                    Status.UNKNOWN,
                    Severity.HIGH,
                    f"Could not read ingress-nginx's ConfigMap {server.configmap} to compare "
                    f"with {lb.name}'s PROXY protocol setting.",
                    resource,
                    (sent.evidence, server.evidence),
                )
            )
            continue
        if sent.sends == server.expects:
            state = "both use" if sent.sends else "neither uses"
            findings.append(
                Finding(
                    CODE,
                    Status.PASS,
                    Severity.HIGH,
                    f"{lb.name} and ingress-nginx agree: {state} the PROXY protocol.",
                    resource,
                    (sent.evidence, server.evidence),
                )
            )
            continue
        if sent.sends:
            summary = (
                f"{lb.name} sends a PROXY protocol header but ingress-nginx does not expect "
                "one: nginx reads the header as a broken request."
            )
        else:
            summary = (
                f"ingress-nginx expects a PROXY protocol header that {lb.name} never sends: "
                "nginx waits for it and the connections fail."
            )
        fixes: tuple[Fix, ...] = ()
        if server.configmap:
            fixes = (
                fix(
                    f"Make ingress-nginx {'expect' if sent.sends else 'not expect'} the header "
                    "(or change the load balancer instead)",
                    "shell",
                    "annotation_proxy_protocol.sh.j2",
                    namespace=server.namespace,
                    name=server.configmap,
                    patch={"data": {NGINX_SETTING: "true" if sent.sends else "false"}},
                ),
            )
        findings.append(
            Finding(
                CODE,
                Status.FAIL,
                Severity.HIGH,
                summary,
                resource,
                (sent.evidence, server.evidence),
                fixes,
            )
        )
    return findings


CHECK = Check(
    name="proxy_protocol_mismatch",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="PROXY protocol on one side only",
    explains=(
        "A PROXY protocol header that only one side expects breaks every connection between "
        "the load balancer and ingress-nginx: 400s, resets or time-outs that the load "
        "balancer reports as 502/504."
    ),
    judge=judge,
    templates=("annotation_proxy_protocol.sh.j2",),
    step="annotations",
)
