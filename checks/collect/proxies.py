"""Finds an in-cluster proxy (ingress-nginx) between a load balancer and the asked Service.

An Ingress of a class the AWS Load Balancer Controller does not own is served by a
controller running in the cluster; its own Service is what an AWS load balancer fronts.
The controller is found the way it finds its Ingresses: by its ``--controller-class`` and
``--ingress-class`` arguments, and its ``--publish-service`` and ``--configmap``.
"""

from __future__ import annotations

import logging

from checks import kube
from checks.snapshot import InClusterProxy, KubeObject

logger = logging.getLogger(__name__)

ALB_CONTROLLER = "ingress.k8s.aws/alb"
NGINX_CONTROLLER = "k8s.io/ingress-nginx"
NGINX_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_NGINX_NAME_LABELS = ("app.kubernetes.io/name", "app")


def ingress_class_name(ingress: KubeObject) -> str:
    return str(
        kube.spec(ingress).get("ingressClassName")
        or kube.annotations(ingress).get(NGINX_CLASS_ANNOTATION, "")
    )


def controller_of(ingress: KubeObject, classes: list[KubeObject]) -> str:
    """The controller an Ingress belongs to (``spec.controller`` of its IngressClass)."""
    name = ingress_class_name(ingress)
    for cls in classes:
        if kube.name(cls) == name:
            return str(kube.spec(cls).get("controller", ""))
    if not name:
        default = next(
            (
                c
                for c in classes
                if kube.annotations(c).get("ingressclass.kubernetes.io/is-default-class") == "true"
            ),
            None,
        )
        return str(kube.spec(default).get("controller", "")) if default else ""
    # Without IngressClass objects, the names the controllers use by default.
    return {"alb": ALB_CONTROLLER, "nginx": NGINX_CONTROLLER}.get(name, "")


def _args(workload: KubeObject) -> dict[str, str]:
    found: dict[str, str] = {}
    for container in kube.containers(kube.pod_template(workload)):
        for arg in list(container.get("args") or []) + list(container.get("command") or []):
            text = str(arg)
            if text.startswith("--") and "=" in text:
                key, _, value = text.partition("=")
                found[key] = value
    return found


def _is_nginx_controller(workload: KubeObject, controller: str, class_name: str) -> bool:
    args = _args(workload)
    if "--controller-class" in args:
        return args["--controller-class"] == controller
    if "--ingress-class" in args:
        return args["--ingress-class"] == class_name
    images = [str(c.get("image", "")) for c in kube.containers(kube.pod_template(workload))]
    return controller == NGINX_CONTROLLER and any("ingress-nginx/controller" in i for i in images)


def _split_ref(ref: str, default_ns: str) -> tuple[str, str]:
    """``NS/NAME`` of a controller argument; the chart writes the namespace as the
    ``$(POD_NAMESPACE)`` variable, which is the controller's own namespace."""
    ns, _, name = ref.rpartition("/")
    if ns in ("$(POD_NAMESPACE)", "${POD_NAMESPACE}", "$POD_NAMESPACE"):
        ns = default_ns
    return (ns or default_ns), name


def find_nginx(
    ingresses: list[KubeObject],
    classes: list[KubeObject],
    workloads: list[KubeObject],
    services: list[KubeObject],
    configmaps: list[KubeObject],
    pods: list[KubeObject],
) -> list[InClusterProxy]:
    """ingress-nginx controllers serving ``ingresses``; every list is cluster-wide."""
    proxies: list[InClusterProxy] = []
    by_controller: dict[tuple[str, str], list[KubeObject]] = {}
    for ingress in ingresses:
        controller = controller_of(ingress, classes)
        if controller and controller != ALB_CONTROLLER:
            by_controller.setdefault((controller, ingress_class_name(ingress)), []).append(ingress)
    for (controller, class_name), served in by_controller.items():
        workload = next(
            (w for w in workloads if _is_nginx_controller(w, controller, class_name)), None
        )
        service: KubeObject | None = None
        configmap: KubeObject | None = None
        proxy_pods: list[KubeObject] = []
        if workload is not None:
            args = _args(workload)
            ns = kube.namespace(workload)
            if "--publish-service" in args:
                svc_ns, svc_name = _split_ref(args["--publish-service"], ns)
                service = next(
                    (
                        s
                        for s in services
                        if kube.namespace(s) == svc_ns and kube.name(s) == svc_name
                    ),
                    None,
                )
            labels = (kube.spec(workload).get("selector") or {}).get("matchLabels") or {}
            if service is None:
                service = next(
                    (
                        s
                        for s in services
                        if kube.namespace(s) == ns
                        and kube.spec(s).get("type") == "LoadBalancer"
                        and kube.selector_matches(kube.spec(s).get("selector") or {}, labels)
                    ),
                    None,
                )
            cm_ref = args.get("--configmap", f"{ns}/{kube.name(workload)}")
            cm_ns, cm_name = _split_ref(cm_ref, ns)
            configmap = next(
                (c for c in configmaps if kube.namespace(c) == cm_ns and kube.name(c) == cm_name),
                None,
            )
            proxy_pods = [
                p
                for p in pods
                if kube.namespace(p) == ns and kube.selector_matches(labels, kube.labels(p))
            ]
        if service is None and controller == NGINX_CONTROLLER:
            # No controller Deployment visible: its Service by the chart's labels or name.
            service = next(
                (
                    s
                    for s in services
                    if kube.spec(s).get("type") == "LoadBalancer"
                    and (
                        any(kube.labels(s).get(k) == "ingress-nginx" for k in _NGINX_NAME_LABELS)
                        or "ingress-nginx" in kube.name(s)
                    )
                ),
                None,
            )
            if service is not None and configmap is None:
                configmap = next(
                    (
                        c
                        for c in configmaps
                        if kube.namespace(c) == kube.namespace(service)
                        and kube.name(c) in (kube.name(service), "ingress-nginx-controller")
                    ),
                    None,
                )
        if service is None:
            logger.debug("no controller Service found for ingress class %s", class_name)
            continue
        logger.debug("ingress class %s is served by %s", class_name, kube.ref(service))
        proxies.append(
            InClusterProxy(
                kind="ingress-nginx",
                service=service,
                ingresses=served,
                configmap=configmap,
                pods=proxy_pods,
                workload=workload,
            )
        )
    return proxies
