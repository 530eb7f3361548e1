"""Reads the Kubernetes side of a Service: the objects the checks judge.

Uses the official client; responses are kept as JSON, the same shape as manifests.
``ApiException`` is translated here into the project's errors or recorded as a gap.
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from checks import kube
from checks.collect.proxies import ALB_CONTROLLER, controller_of, find_nginx
from checks.collect.settings import Connection
from checks.errors import AccessError, BackendError, NotFoundError
from checks.snapshot import Gap, InClusterProxy, KubeObject

logger = logging.getLogger(__name__)

ELBV2_GROUP = "elbv2.k8s.aws"
VPC_RESOURCES_GROUP = "vpcresources.k8s.aws"


def api_client(connection: Connection) -> k8s.ApiClient:
    """A client for the kubeconfig context the connection names (or the current one)."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(
            config_file=connection.kubeconfig,
            context=connection.context,
            client_configuration=configuration,
        )
    except (yaml.YAMLError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        where = connection.kubeconfig or "the kubeconfig (KUBECONFIG or ~/.kube/config)"
        raise BackendError(
            f"Cannot read {where}: it is not a valid kubeconfig ({type(exc).__name__}).",
            "Regenerate it, e.g. `aws eks update-kubeconfig --name CLUSTER`.",
        ) from exc
    except (k8s_config.ConfigException, OSError) as exc:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            raise BackendError(
                f"No usable Kubernetes configuration: {str(exc).rstrip('.')}.",
                "Point KUBECONFIG at a kubeconfig (e.g. `aws eks update-kubeconfig --name "
                "CLUSTER`), or use --scenario to try the sandbox.",
            ) from exc
    configuration.retries = 1
    return k8s.ApiClient(configuration)


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(exc.reason)


def translate(exc: ApiException, verb: str, resource: str, namespace: str) -> Exception:
    where = f" in namespace {namespace}" if namespace else ""
    if exc.status in (401, 403):
        return AccessError(
            f"Kubernetes refused to {verb} {resource}{where}: {_status_message(exc)}.",
            needs=f"RBAC verb `{verb}` on `{resource}`{where}",
        )
    return BackendError(
        f"The Kubernetes API failed to {verb} {resource}{where} "
        f"(HTTP {exc.status}: {_status_message(exc)}).",
        "Check that the cluster is reachable and try again.",
    )


@dataclass
class KubeFacts:
    service: KubeObject
    ingresses: list[KubeObject] = field(default_factory=list)
    pods: list[KubeObject] = field(default_factory=list)
    nodes: list[KubeObject] = field(default_factory=list)
    configmaps: dict[str, KubeObject] = field(default_factory=dict)
    workloads: list[KubeObject] = field(default_factory=list)
    endpoint_slices: list[KubeObject] = field(default_factory=list)
    ingress_classes: list[KubeObject] = field(default_factory=list)
    events: list[KubeObject] = field(default_factory=list)
    proxies: list[InClusterProxy] = field(default_factory=list)
    ingress_class_params: list[KubeObject] = field(default_factory=list)
    target_group_bindings: list[KubeObject] = field(default_factory=list)
    security_group_policies: list[KubeObject] = field(default_factory=list)
    service_accounts: list[KubeObject] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def _ingress_backends(ingress: KubeObject) -> set[str]:
    """Names of the Services an Ingress routes to (v1 and the old v1beta1 shape)."""
    spec = kube.spec(ingress)
    backends: list[dict[str, Any]] = []
    for key in ("defaultBackend", "backend"):
        if isinstance(spec.get(key), dict):
            backends.append(spec[key])
    for rule in spec.get("rules") or []:
        for path in ((rule or {}).get("http") or {}).get("paths") or []:
            if isinstance((path or {}).get("backend"), dict):
                backends.append(path["backend"])
    names = set()
    for backend in backends:
        service = backend.get("service")
        if isinstance(service, dict) and service.get("name"):
            names.add(str(service["name"]))
        elif backend.get("serviceName"):
            names.add(str(backend["serviceName"]))
    return names


class KubeCollector:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.networking = k8s.NetworkingV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.discovery = k8s.DiscoveryV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    def _call(
        self,
        verb: str,
        resource: str,
        namespace: str,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        started = time.monotonic()
        try:
            response = fn(*args, _preload_content=False, **kwargs)
            data = json.loads(response.data)
        except ApiException as exc:
            logger.info(
                "kubernetes %s %s ns=%s -> HTTP %s in %.3f s",
                verb,
                resource,
                namespace or "-",
                exc.status,
                time.monotonic() - started,
            )
            raise
        except (HTTPError, OSError) as exc:
            raise BackendError(
                f"Cannot reach the Kubernetes API to {verb} {resource}: {exc}.",
                "Check the kube context and network access to the cluster.",
            ) from exc
        logger.info(
            "kubernetes %s %s ns=%s -> ok in %.3f s",
            verb,
            resource,
            namespace or "-",
            time.monotonic() - started,
        )
        return data

    def _items(self, data: Any, kind: str, api_version: str) -> list[KubeObject]:
        items = list((data or {}).get("items") or [])
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        return items

    def _optional_list(
        self,
        facts: KubeFacts,
        resource: str,
        namespace: str,
        kind: str,
        api_version: str,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> list[KubeObject]:
        """A list the report can do without: a refusal becomes a gap, not an error."""
        try:
            data = self._call("list", resource, namespace, fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                # The resource type is not served here (e.g. a CRD that is not installed).
                return []
            err = translate(exc, "list", resource, namespace)
            facts.gaps.append(
                Gap(
                    area=f"kubernetes:{resource}",
                    resource=f"{resource}{' in ' + namespace if namespace else ''}",
                    reason=str(err),
                    needs=getattr(err, "needs", ""),
                )
            )
            return []
        return self._items(data, kind, api_version)

    def _suggest_service(self, namespace: str, name: str) -> str:
        try:
            data = self._call(
                "list", "services", namespace, self.core.list_namespaced_service, namespace
            )
        except (ApiException, BackendError):
            return ""
        names = [kube.name(s) for s in data.get("items") or []]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            return "Did you mean " + " or ".join(f"`{namespace}/{c}`" for c in close) + "?"
        if names:
            return f"Services in {namespace}: " + ", ".join(sorted(names)[:10]) + "."
        return f"Namespace {namespace} has no Services."

    def _suggest_namespace(self, namespace: str) -> str:
        try:
            data = self._call("list", "namespaces", "", self.core.list_namespace)
        except (ApiException, BackendError):
            return "Check the namespace name with `kubectl get namespaces`."
        names = [kube.name(n) for n in data.get("items") or []]
        close = difflib.get_close_matches(namespace, names, n=3, cutoff=0.5)
        if close:
            return "Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
        return "Check the namespace name with `kubectl get namespaces`."

    def read_service(self, namespace: str, name: str) -> KubeObject:
        try:
            self._call("get", "namespaces", "", self.core.read_namespace, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"Namespace `{namespace}` does not exist in this cluster.",
                    self._suggest_namespace(namespace),
                ) from exc
            if exc.status not in (401, 403):
                raise translate(exc, "get", "namespaces", "") from exc
            # Without cluster-wide namespace access the Service read below still tells.
        try:
            service: KubeObject = self._call(
                "get", "services", namespace, self.core.read_namespaced_service, name, namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"Service `{namespace}/{name}` does not exist.",
                    self._suggest_service(namespace, name),
                ) from exc
            raise translate(exc, "get", "services", namespace) from exc
        service.setdefault("kind", "Service")
        service.setdefault("apiVersion", "v1")
        return service

    def fetch(self, namespace: str, name: str) -> KubeFacts:
        facts = KubeFacts(service=self.read_service(namespace, name))
        selector: dict[str, str] = dict(kube.spec(facts.service).get("selector") or {})

        if selector:
            label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            facts.pods = self._optional_list(
                facts,
                "pods",
                namespace,
                "Pod",
                "v1",
                self.core.list_namespaced_pod,
                namespace,
                label_selector=label_selector,
            )
        ingresses = self._optional_list(
            facts,
            "ingresses",
            "",
            "Ingress",
            "networking.k8s.io/v1",
            self.networking.list_ingress_for_all_namespaces,
        )
        facts.ingresses = [
            i for i in ingresses if kube.namespace(i) == namespace and name in _ingress_backends(i)
        ]
        facts.ingresses += _group_members(facts.ingresses, ingresses)
        facts.configmaps = {
            kube.name(c): c
            for c in self._optional_list(
                facts,
                "configmaps",
                namespace,
                "ConfigMap",
                "v1",
                self.core.list_namespaced_config_map,
                namespace,
            )
        }
        node_names = {str(kube.spec(p).get("nodeName")) for p in facts.pods}
        if node_names:
            nodes = self._optional_list(facts, "nodes", "", "Node", "v1", self.core.list_node)
            facts.nodes = [n for n in nodes if kube.name(n) in node_names]
        if facts.pods:
            deployments = self._optional_list(
                facts,
                "deployments",
                namespace,
                "Deployment",
                "apps/v1",
                self.apps.list_namespaced_deployment,
                namespace,
            )
            statefulsets = self._optional_list(
                facts,
                "statefulsets",
                namespace,
                "StatefulSet",
                "apps/v1",
                self.apps.list_namespaced_stateful_set,
                namespace,
            )
            facts.workloads = [w for w in deployments + statefulsets if _owns_any(w, facts.pods)]
        # The AWS Load Balancer Controller's version decides which annotations it reads.
        system = self._optional_list(
            facts,
            "deployments",
            "kube-system",
            "Deployment",
            "apps/v1",
            self.apps.list_namespaced_deployment,
            "kube-system",
        )
        facts.workloads += [d for d in system if _is_lb_controller(d)]
        facts.endpoint_slices = self._optional_list(
            facts,
            "endpointslices",
            namespace,
            "EndpointSlice",
            "discovery.k8s.io/v1",
            self.discovery.list_namespaced_endpoint_slice,
            namespace,
            label_selector=f"kubernetes.io/service-name={name}",
        )
        if facts.ingresses:
            facts.ingress_classes = self._optional_list(
                facts,
                "ingressclasses",
                "",
                "IngressClass",
                "networking.k8s.io/v1",
                self.networking.list_ingress_class,
            )
        if any(
            (kube.spec(c).get("parameters") or {}).get("kind") == "IngressClassParams"
            for c in facts.ingress_classes
        ):
            facts.ingress_class_params = self._optional_list(
                facts,
                "ingressclassparams",
                "",
                "IngressClassParams",
                f"{ELBV2_GROUP}/v1beta1",
                self.custom.list_cluster_custom_object,
                ELBV2_GROUP,
                "v1beta1",
                "ingressclassparams",
            )
        if any(controller_of(i, facts.ingress_classes) != ALB_CONTROLLER for i in facts.ingresses):
            facts.proxies = self._find_proxies(facts)
        bindings = self._optional_list(
            facts,
            "targetgroupbindings",
            namespace,
            "TargetGroupBinding",
            f"{ELBV2_GROUP}/v1beta1",
            self.custom.list_namespaced_custom_object,
            ELBV2_GROUP,
            "v1beta1",
            namespace,
            "targetgroupbindings",
        )
        facts.target_group_bindings = [
            b for b in bindings if (kube.spec(b).get("serviceRef") or {}).get("name") == name
        ]
        if facts.pods:
            self._fetch_pod_groups(facts, namespace)
        facts.events = self._optional_list(
            facts,
            "events",
            namespace,
            "Event",
            "v1",
            self.core.list_namespaced_event,
            namespace,
        )
        return facts

    def _fetch_pod_groups(self, facts: KubeFacts, namespace: str) -> None:
        """SecurityGroupPolicies (404: the CRD is not installed, so none), and the
        ServiceAccounts when a policy selects pods by theirs."""
        facts.security_group_policies = self._optional_list(
            facts,
            "securitygrouppolicies",
            namespace,
            "SecurityGroupPolicy",
            f"{VPC_RESOURCES_GROUP}/v1beta1",
            self.custom.list_namespaced_custom_object,
            VPC_RESOURCES_GROUP,
            "v1beta1",
            namespace,
            "securitygrouppolicies",
        )
        if any(
            kube.spec(p).get("serviceAccountSelector") is not None
            for p in facts.security_group_policies
        ):
            facts.service_accounts = self._optional_list(
                facts,
                "serviceaccounts",
                namespace,
                "ServiceAccount",
                "v1",
                self.core.list_namespaced_service_account,
                namespace,
            )

    def _find_proxies(self, facts: KubeFacts) -> list[InClusterProxy]:
        """ingress-nginx controllers in front of the asked Service's Ingresses."""
        services = self._optional_list(
            facts, "services", "", "Service", "v1", self.core.list_service_for_all_namespaces
        )
        workloads = self._optional_list(
            facts,
            "deployments",
            "",
            "Deployment",
            "apps/v1",
            self.apps.list_deployment_for_all_namespaces,
        ) + self._optional_list(
            facts,
            "daemonsets",
            "",
            "DaemonSet",
            "apps/v1",
            self.apps.list_daemon_set_for_all_namespaces,
        )
        args = (facts.ingresses, facts.ingress_classes, workloads, services)
        found = find_nginx(*args, [], [])
        namespaces = sorted({kube.namespace(p.service) for p in found})
        configmaps: list[KubeObject] = []
        pods: list[KubeObject] = []
        for ns in namespaces:
            configmaps += self._optional_list(
                facts,
                "configmaps",
                ns,
                "ConfigMap",
                "v1",
                self.core.list_namespaced_config_map,
                ns,
            )
            pods += self._optional_list(
                facts, "pods", ns, "Pod", "v1", self.core.list_namespaced_pod, ns
            )
        return find_nginx(*args, configmaps, pods)


def _group_members(asked: list[KubeObject], every: list[KubeObject]) -> list[KubeObject]:
    """Other Ingresses of the IngressGroups the asked Ingresses belong to."""
    key = "alb.ingress.kubernetes.io/group.name"
    groups = {kube.annotations(i).get(key) for i in asked} - {None}
    seen = {kube.ref(i) for i in asked}
    return [i for i in every if kube.annotations(i).get(key) in groups and kube.ref(i) not in seen]


def _is_lb_controller(workload: KubeObject) -> bool:
    images = [str(c.get("image", "")) for c in kube.containers(kube.pod_template(workload))]
    return any("aws-load-balancer-controller" in image for image in images)


def _owns_any(workload: KubeObject, pods: list[KubeObject]) -> bool:
    selector = (kube.spec(workload).get("selector") or {}).get("matchLabels") or {}
    return any(kube.selector_matches(selector, kube.labels(p)) for p in pods)
