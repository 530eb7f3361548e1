"""Who reads an object's annotations: the role each Service or Ingress plays, the kind of
load balancer behind it, and the AWS Load Balancer Controller release that runs.

Ownership is decided in the order the cluster decides it: the load balancer AWS reports
when there is one, then ``spec.loadBalancerClass``, then the type annotation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from checks import kube
from checks.annotations.kb import Version, parse_version
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

LBC_NLB_CLASS = "service.k8s.aws/nlb"
ALB_CONTROLLER = "ingress.k8s.aws/alb"
TYPE_KEY = "service.beta.kubernetes.io/aws-load-balancer-type"
SCHEME_KEY = "service.beta.kubernetes.io/aws-load-balancer-scheme"
NLB_TARGET_TYPE_KEY = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
INTREE_INTERNAL_KEY = "service.beta.kubernetes.io/aws-load-balancer-internal"
LEGACY_CLASS_KEY = "kubernetes.io/ingress.class"
GROUP_KEY = "alb.ingress.kubernetes.io/group.name"
# Where the offline judge records that no AWS account was read.
OFFLINE_AREA = "offline"

_LBC_IMAGE = re.compile(r"aws-load-balancer-controller:v?(\d+\.\d+(?:\.\d+)?)")
_LBC_V1_IMAGE = re.compile(r"aws-alb-ingress-controller:v?(\d+\.\d+(?:\.\d+)?)")
_LBC_TAGS = ("elbv2.k8s.aws/cluster", "service.k8s.aws/stack", "ingress.k8s.aws/stack")


@dataclass(frozen=True)
class ServiceLb:
    """The load balancer a type LoadBalancer Service gets, and who makes it."""

    type: str  # classic | network
    controller: str  # in-tree | lbc | other

    @property
    def role(self) -> str | None:
        if self.controller == "other":
            return None
        if self.type == "classic":
            return "clb"
        return "nlb-lbc" if self.controller == "lbc" else "nlb-intree"


def offline(snapshot: Snapshot) -> bool:
    return snapshot.gap(OFFLINE_AREA) is not None


def refs_of(lb: LoadBalancer) -> set[str]:
    return {r.strip() for r in lb.serves.split(",") if r.strip()}


def lb_for(snapshot: Snapshot, obj: KubeObject) -> LoadBalancer | None:
    ref = kube.ref(obj)
    return next((lb for lb in snapshot.load_balancers if ref in refs_of(lb)), None)


def service_lb(snapshot: Snapshot, service: KubeObject) -> ServiceLb | None:
    """The Service's own load balancer, or None when it is not of type LoadBalancer."""
    spec = kube.spec(service)
    notes = kube.annotations(service)
    lb_class = str(spec.get("loadBalancerClass") or "")
    lb_type = notes.get(TYPE_KEY, "").strip().lower()
    by_lbc = lb_class == LBC_NLB_CLASS or lb_type in ("external", "nlb-ip")
    actual = lb_for(snapshot, service)
    if actual is not None and actual.type in ("classic", "network"):
        tagged = any(t in actual.tags for t in _LBC_TAGS)
        if actual.type == "classic":
            return ServiceLb("classic", "in-tree")
        return ServiceLb("network", "lbc" if by_lbc or tagged else "in-tree")
    if spec.get("type") != "LoadBalancer":
        return None
    if lb_class and lb_class != LBC_NLB_CLASS:
        # EKS Auto Mode's class reads the LBC's keys; other classes are other controllers.
        return ServiceLb("network", "lbc" if lb_class.startswith("eks.amazonaws.com/") else "other")
    if by_lbc:
        return ServiceLb("network", "lbc")
    if lb_type == "nlb":
        return ServiceLb("network", "in-tree")
    return ServiceLb("classic", "in-tree")


def ingress_class(ingress: KubeObject) -> str:
    return str(
        kube.spec(ingress).get("ingressClassName")
        or kube.annotations(ingress).get(LEGACY_CLASS_KEY)
        or ""
    )


def is_alb_ingress(ingress: KubeObject, ingress_classes: list[KubeObject]) -> bool | None:
    """True when the LBC serves the Ingress, False when another controller does, None when
    its class cannot be told."""
    name = ingress_class(ingress)
    if not name:
        defaults = [
            c
            for c in ingress_classes
            if kube.annotations(c).get("ingressclass.kubernetes.io/is-default-class") == "true"
        ]
        if not defaults:
            return None
        return any(kube.spec(c).get("controller") == ALB_CONTROLLER for c in defaults)
    for cls in ingress_classes:
        if kube.name(cls) == name:
            return bool(kube.spec(cls).get("controller") == ALB_CONTROLLER)
    return name == "alb"


def ingress_backends(ingress: KubeObject) -> set[str]:
    """Names of the Services an Ingress routes to (v1 and the old v1beta1 shapes)."""
    spec = kube.spec(ingress)
    names: set[str] = set()

    def add(backend: object) -> None:
        if not isinstance(backend, dict):
            return
        service = backend.get("service")
        if isinstance(service, dict) and service.get("name"):
            names.add(str(service["name"]))
        elif backend.get("serviceName"):
            names.add(str(backend["serviceName"]))

    add(spec.get("defaultBackend"))
    add(spec.get("backend"))
    for rule in spec.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        for path in (rule.get("http") or {}).get("paths") or []:
            if isinstance(path, dict):
                add(path.get("backend"))
    return names


def routes_to(ingress: KubeObject, service: KubeObject) -> bool:
    return kube.namespace(ingress) == kube.namespace(service) and kube.name(
        service
    ) in ingress_backends(ingress)


def alb_ingresses_of(snapshot: Snapshot, service: KubeObject) -> list[KubeObject]:
    return [
        ing
        for ing in snapshot.ingresses
        if routes_to(ing, service) and is_alb_ingress(ing, snapshot.ingress_classes) is not False
    ]


def group_name(ingress: KubeObject) -> str:
    """The explicit IngressGroup, or an implicit one named after the Ingress itself."""
    explicit = kube.annotations(ingress).get(GROUP_KEY, "").strip()
    return explicit or f"{kube.namespace(ingress)}/{kube.name(ingress)}"


def controller_version(snapshot: Snapshot) -> Version | None:
    """The AWS Load Balancer Controller release found among the snapshot's workloads and
    pods (image tag, then the chart's version label), or None."""
    for obj in [*snapshot.workloads, *snapshot.pods]:
        template = kube.pod_template(obj) if obj.get("kind") != "Pod" else obj
        for container in kube.containers(template):
            image = str(container.get("image", ""))
            match = _LBC_IMAGE.search(image)
            if match:
                return parse_version(match.group(1))
            match = _LBC_V1_IMAGE.search(image)
            if match:
                return parse_version(match.group(1))
        if "aws-load-balancer-controller" in kube.name(obj):
            version = parse_version(kube.labels(obj).get("app.kubernetes.io/version"))
            if version is not None:
                return version
    return None
