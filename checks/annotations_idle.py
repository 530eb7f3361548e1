"""Where each load balancer type takes its idle timeout from, and how to read the value a
Kubernetes object asks for. The one home of these keys."""

from __future__ import annotations

from dataclasses import dataclass

from checks import kube, numbers
from checks.snapshot import KubeObject, LoadBalancer

CLB_IDLE_TIMEOUT = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"
ALB_LB_ATTRIBUTES = "alb.ingress.kubernetes.io/load-balancer-attributes"
ALB_IDLE_KEY = "idle_timeout.timeout_seconds"
NLB_LISTENER_ATTRIBUTES_PREFIX = "service.beta.kubernetes.io/aws-load-balancer-listener-attributes."
NLB_IDLE_KEY = "tcp.idle_timeout.seconds"

# What AWS applies when nothing is asked.
DEFAULT_IDLE_TIMEOUT_S = {"classic": 60, "application": 60, "network": 350}


def parse_attributes(value: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` as the AWS Load Balancer Controller reads it; malformed pairs are
    skipped here (the annotation checks report them)."""
    pairs: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if sep and key.strip():
            pairs[key.strip()] = val.strip()
    return pairs


def format_attributes(pairs: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs.items())


@dataclass(frozen=True)
class IdleTimeoutAsk:
    """An idle timeout that an object's annotation asks for."""

    obj: KubeObject
    key: str
    raw: str
    seconds: int | None


def asked_idle_timeouts(lb: LoadBalancer, objects: list[KubeObject]) -> list[IdleTimeoutAsk]:
    """The idle timeouts the objects serving through ``lb`` ask for, by its type's key."""
    asks: list[IdleTimeoutAsk] = []
    for obj in objects:
        notes = kube.annotations(obj)
        if lb.type == "classic" and CLB_IDLE_TIMEOUT in notes:
            raw = notes[CLB_IDLE_TIMEOUT]
            asks.append(IdleTimeoutAsk(obj, CLB_IDLE_TIMEOUT, raw, _int(raw)))
        elif lb.type == "application" and ALB_LB_ATTRIBUTES in notes:
            pairs = parse_attributes(notes[ALB_LB_ATTRIBUTES])
            if ALB_IDLE_KEY in pairs:
                raw = pairs[ALB_IDLE_KEY]
                asks.append(IdleTimeoutAsk(obj, ALB_LB_ATTRIBUTES, raw, _int(raw)))
        elif lb.type == "network":
            for key, value in notes.items():
                if key.startswith(NLB_LISTENER_ATTRIBUTES_PREFIX):
                    pairs = parse_attributes(value)
                    if NLB_IDLE_KEY in pairs:
                        raw = pairs[NLB_IDLE_KEY]
                        asks.append(IdleTimeoutAsk(obj, key, raw, _int(raw)))
    return asks


def _int(raw: str) -> int | None:
    text = raw.strip().strip('"').strip("'")
    return numbers.whole(text)


def served_objects(
    lb: LoadBalancer, service: KubeObject | None, ingresses: list[KubeObject]
) -> list[KubeObject]:
    """The Kubernetes objects that configure ``lb``: its Service, or its Ingresses."""
    refs = {r.strip() for r in lb.serves.split(",") if r.strip()}
    candidates = ([service] if service else []) + ingresses
    return [o for o in candidates if kube.ref(o) in refs]


def class_params_idle_timeout(
    ingress: KubeObject, classes: list[KubeObject], params: list[KubeObject]
) -> tuple[KubeObject, int] | None:
    """The idle timeout the Ingress's IngressClassParams set, which override every Ingress
    annotation of the class: (the IngressClassParams, seconds), or None."""
    class_name = str(
        kube.spec(ingress).get("ingressClassName")
        or kube.annotations(ingress).get("kubernetes.io/ingress.class", "")
    )
    ingress_class = next((c for c in classes if kube.name(c) == class_name), None)
    ref = kube.spec(ingress_class).get("parameters") if ingress_class else None
    if not isinstance(ref, dict) or ref.get("kind") != "IngressClassParams":
        return None
    found = next((p for p in params if kube.name(p) == str(ref.get("name"))), None)
    if found is None:
        return None
    attributes = kube.spec(found).get("loadBalancerAttributes")
    if not isinstance(attributes, list):
        return None
    for attribute in attributes:
        if isinstance(attribute, dict) and attribute.get("key") == ALB_IDLE_KEY:
            seconds = _int(str(attribute.get("value", "")))
            return (found, seconds) if seconds is not None else None
    return None
