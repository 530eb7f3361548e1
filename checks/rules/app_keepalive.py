"""An HTTP server behind a load balancer that reuses idle connections must keep them longer.

An ALB, and a Classic LB on its HTTP/HTTPS listeners, keep connections to targets open
between requests and reuse them for up to the load balancer's idle timeout. When the server
closes an idle connection first, or at the same moment, a request the load balancer sends
on it meets a closed socket: the ALB answers 502, the Classic LB 504 with
BackendConnectionErrors. An NLB and Classic TCP/SSL listeners pass client connections
through one for one and pool nothing, so they are not judged here.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from checks import kube, numbers
from checks.fixes import fix
from checks.models import Finding, Fix, KubePatch, Severity, Status
from checks.registry import Check
from checks.servers import ServerKeepAlive, detect
from checks.servers import gunicorn as gunicorn_server
from checks.servers import puma as puma_server
from checks.servers import uvicorn as uvicorn_server
from checks.servers.base import seconds_text
from checks.snapshot import Gap, InClusterProxy, KubeObject, LoadBalancer, Snapshot
from checks.topology import find_gap

logger = logging.getLogger(__name__)

CODE = "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"
# AWS's idle timeout when the attribute was never changed.
AWS_DEFAULT_IDLE_TIMEOUT_S = {"classic": 60, "application": 60}
# How far the server's keep-alive should outlast the load balancer's idle timeout.
MARGIN_S = 5
# Lowering the load balancer's idle timeout below this also cuts slow requests short.
MIN_SUGGESTED_LB_IDLE_S = 10
# ingress-nginx's documented default for its ConfigMap key upstream-keepalive-timeout.
INGRESS_NGINX_UPSTREAM_KEEPALIVE_S = 60
# ...and for keep-alive, how long it keeps an idle client connection (a load balancer's).
INGRESS_NGINX_CLIENT_KEEPALIVE_S = 75
INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
CLASSIC_IDLE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"
ALB_ATTRIBUTES_ANNOTATION = "alb.ingress.kubernetes.io/load-balancer-attributes"
ALB_IDLE_KEY = "idle_timeout.timeout_seconds"
_HTTP = ("HTTP", "HTTPS")
_LB_KIND = {"classic": "Classic LB", "application": "ALB", "network": "NLB"}
_TEMPLATE_KINDS = ("deployment", "statefulset", "daemonset", "replicaset")

# What each server's setting looks like in its own configuration file.
_FILE_SETTING = {
    "gunicorn": "keepalive = {n}",
    "nginx": "keepalive_timeout {n}s;",
    "apache": "KeepAliveTimeout {n}",
    "tomcat": 'keepAliveTimeout="{ms}" (on the HTTP <Connector>)',
    "puma": "persistent_timeout {n}",
    "envoy": "common_http_protocol_options: {{idle_timeout: {n}s}} (HTTP connection manager)",
}
_ENV_SETTING = {
    "gunicorn": gunicorn_server.ENV,
    "uvicorn": uvicorn_server.ENV,
    "puma": puma_server.ENV,
}


def pools_connections(lb: LoadBalancer) -> bool:
    """Whether ``lb`` keeps idle connections to its targets and reuses them."""
    if lb.type == "application":
        return True
    if lb.type == "classic":
        return any((lst.instance_protocol or lst.protocol).upper() in _HTTP for lst in lb.listeners)
    return False


def lb_idle_timeout(lb: LoadBalancer) -> tuple[int, str]:
    if lb.idle_timeout_s is not None:
        return lb.idle_timeout_s, ""
    default = AWS_DEFAULT_IDLE_TIMEOUT_S[lb.type]
    return default, " (AWS default; the attribute was not read)"


def lb_label(lb: LoadBalancer) -> str:
    return f"{_LB_KIND[lb.type]} {lb.name}"


@dataclass(frozen=True)
class Pooler:
    """A layer in front of the pods that keeps idle connections to them and reuses them."""

    label: str  # "the ALB k8s-shop-web-1a2b", "ingress-nginx (Ingress science/portal)"
    idle_s: int
    idle_note: str  # where the idle time comes from, when it is not read from the layer
    consequence: str  # what a request on a connection the server just closed gets
    lb: LoadBalancer | None = None


def lb_pooler(lb: LoadBalancer) -> Pooler:
    idle, note = lb_idle_timeout(lb)
    consequence = (
        "fails with 502"
        if lb.type == "application"
        else "fails with 504 and counts in BackendConnectionErrors"
    )
    return Pooler(f"the {lb_label(lb)}", idle, note, consequence, lb)


_NGINX_CONSEQUENCE = "gets 502 from ingress-nginx (upstream prematurely closed connection)"


def _proxy_pooler(proxy: InClusterProxy) -> Pooler | None:
    """ingress-nginx keeps upstream connections for its ConfigMap's
    ``upstream-keepalive-timeout``; ``upstream-keepalive-connections: 0`` turns pooling off."""
    data = (proxy.configmap or {}).get("data") or {}
    names = ", ".join(f"{kube.namespace(i)}/{kube.name(i)}" for i in proxy.ingresses)
    label = f"ingress-nginx (Ingress {names})"
    if str(data.get("upstream-keepalive-connections", "")).strip() == "0":
        return None
    raw = str(data.get("upstream-keepalive-timeout", "")).strip().removesuffix("s")
    seconds = numbers.whole(raw)
    if seconds is not None:
        cm = f"{kube.namespace(proxy.configmap or {})}/{kube.name(proxy.configmap or {})}"
        return Pooler(
            label, seconds, f" (upstream-keepalive-timeout in ConfigMap {cm})", _NGINX_CONSEQUENCE
        )
    where = (
        f"ConfigMap {kube.namespace(proxy.configmap)}/{kube.name(proxy.configmap)} does not set it"
        if proxy.configmap is not None
        else "the controller's ConfigMap was not found"
    )
    return Pooler(
        label,
        INGRESS_NGINX_UPSTREAM_KEEPALIVE_S,
        f" (ingress-nginx's default upstream-keepalive-timeout; {where})",
        _NGINX_CONSEQUENCE,
    )


def ingress_nginx_poolers(snapshot: Snapshot) -> list[Pooler]:
    """ingress-nginx in front of the Service: from the controller found in the cluster, or,
    where none was (manifests alone), from the Ingress class with the documented default."""
    if snapshot.proxies:
        found = [_proxy_pooler(p) for p in snapshot.proxies if p.kind == "ingress-nginx"]
        return [p for p in found if p is not None]
    controllers = {
        kube.name(c): str(kube.spec(c).get("controller", "")) for c in snapshot.ingress_classes
    }
    poolers = []
    for ingress in snapshot.ingresses:
        class_name = str(
            kube.spec(ingress).get("ingressClassName")
            or kube.annotations(ingress).get("kubernetes.io/ingress.class", "")
        )
        controller = controllers.get(class_name)
        if controller != INGRESS_NGINX_CONTROLLER and not (
            controller is None and class_name == "nginx"
        ):
            continue
        poolers.append(
            Pooler(
                f"ingress-nginx (Ingress {kube.namespace(ingress)}/{kube.name(ingress)})",
                INGRESS_NGINX_UPSTREAM_KEEPALIVE_S,
                " (ingress-nginx's default upstream-keepalive-timeout; the controller's "
                "ConfigMap, which may change it, was not read)",
                _NGINX_CONSEQUENCE,
            )
        )
    return poolers


@dataclass(frozen=True)
class Owner:
    kind: str  # lower case: "deployment", "statefulset", ..., or "pod" for a bare pod
    name: str
    namespace: str
    template: KubeObject | None = None  # the workload's pod template, when known

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def patchable(self) -> bool:
        return self.kind in _TEMPLATE_KINDS


def owner_of(snapshot: Snapshot, pod: KubeObject) -> Owner:
    """The workload to change: one in ``snapshot.workloads`` selecting the pod, else the pod's
    owner reference (a ReplicaSet stands for its Deployment), else the pod itself."""
    namespace, labels = kube.namespace(pod), kube.labels(pod)
    for workload in snapshot.workloads:
        selector = (kube.spec(workload).get("selector") or {}).get("matchLabels") or {}
        if kube.namespace(workload) == namespace and kube.selector_matches(selector, labels):
            kind = str(workload.get("kind", "Deployment")).lower()
            return Owner(kind, kube.name(workload), namespace, kube.pod_template(workload))
    for reference in kube.meta(pod).get("ownerReferences") or []:
        kind, name = str(reference.get("kind", "")), str(reference.get("name", ""))
        template_hash = labels.get("pod-template-hash", "")
        if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            return Owner("deployment", name.removesuffix(f"-{template_hash}"), namespace)
        return Owner(kind.lower(), name, namespace)
    return Owner("pod", kube.name(pod), namespace)


def serving_containers(pod: KubeObject, service: KubeObject | None) -> list[dict[str, Any]]:
    """The containers the Service's target ports point at; all of them when none match."""
    containers = kube.containers(pod)
    targets = {
        str(port.get("targetPort", port.get("port", "")))
        for port in (kube.spec(service).get("ports") or [] if service else [])
    }
    matched = [
        c
        for c in containers
        if any(
            str(p.get("containerPort")) in targets or str(p.get("name", "")) in targets
            for p in c.get("ports") or []
        )
    ]
    return matched or containers


@dataclass
class _Group:
    keepalive: ServerKeepAlive
    owner: Owner
    container_index: int
    pods: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        pods = ", ".join(self.pods)
        return f"{self.keepalive.server} in {pods} (container {self.keepalive.container})"


def _groups(snapshot: Snapshot) -> list[_Group]:
    groups: dict[tuple[object, ...], _Group] = {}
    for pod in snapshot.pods:
        owner = owner_of(snapshot, pod)
        for container in serving_containers(pod, snapshot.service):
            found = detect(container, pod, snapshot.configmaps)
            template = owner.template or pod
            names = [str(c.get("name")) for c in kube.containers(template)]
            index = names.index(found.container) if found.container in names else -1
            # Bare pods have no shared owner; identical ones still make one finding.
            key = (found, owner.ref if owner.kind != "pod" else "pod", index)
            group = groups.setdefault(key, _Group(found, owner, index))
            group.pods.append(f"{kube.namespace(pod)}/{kube.name(pod)}")
    return list(groups.values())


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    poolers = []
    for lb in snapshot.load_balancers:
        proxy = snapshot.proxy_behind(lb)
        if not pools_connections(lb):
            logger.debug("%s does not pool connections to targets: not judged", lb.name)
        elif proxy is not None:
            # Its connections end at the proxy, whose own keep-alive is what must outlast it.
            findings.append(_judge_proxy_front(lb, proxy))
        else:
            poolers.append(lb_pooler(lb))
    poolers.extend(ingress_nginx_poolers(snapshot))
    if not poolers and not findings and snapshot.load_balancers:
        return [_nothing_pools(snapshot.load_balancers)]
    groups = _groups(snapshot) if poolers else []
    pods_gap = find_gap(snapshot, "kubernetes:pods")
    if poolers and not groups and pods_gap is not None:
        return [*findings, *(_no_pods(snapshot, pooler, pods_gap) for pooler in poolers)]
    for pooler in poolers:
        unknown: list[_Group] = []
        for group in groups:
            keepalive = group.keepalive
            if keepalive.reuses_connections and keepalive.idle_timeout_s is None:
                unknown.append(group)
            else:
                findings.append(_judge_group(snapshot, pooler, group))
        if unknown:
            findings.append(_unknown(pooler, unknown))
    return findings


def _nothing_pools(lbs: list[LoadBalancer]) -> Finding:
    labels = ", ".join(lb_label(lb) for lb in lbs)
    return Finding(
        CODE,
        Status.PASS,
        Severity.HIGH,
        f"The {labels} does not reuse idle connections to its targets: no keep-alive of the "
        "servers behind it can race it.",
        ", ".join(lb.name for lb in lbs),
        tuple(
            f"{lb_label(lb)}: listeners {', '.join(sorted({x.protocol for x in lb.listeners}))}"
            for lb in lbs
            if lb.listeners
        ),
    )


def _no_pods(snapshot: Snapshot, pooler: Pooler, gap: Gap) -> Finding:
    """Pods that could not be read hide the servers: unknown, never a silent pass."""
    evidence = [f"pods not read: {gap.reason}"] + ([f"needs {gap.needs}"] if gap.needs else [])
    return Finding(
        CODE,
        Status.UNKNOWN,
        Severity.HIGH,
        f"Could not read the servers behind {pooler.label}, so their keep-alive is unknown.",
        f"service/{snapshot.namespace}/{snapshot.service_name}",
        tuple(evidence),
    )


def _judge_proxy_front(lb: LoadBalancer, proxy: InClusterProxy) -> Finding:
    """ingress-nginx's client-side ``keep-alive`` against the load balancer in front of it."""
    idle, idle_note = lb_idle_timeout(lb)
    data = (proxy.configmap or {}).get("data") or {}
    raw = str(data.get("keep-alive", "")).strip().removesuffix("s")
    cm_ns = kube.namespace(proxy.configmap or proxy.service)
    cm_name = kube.name(proxy.configmap) if proxy.configmap else "ingress-nginx-controller"
    configured = numbers.whole(raw)
    if configured is not None:
        value, source = configured, f"keep-alive in ConfigMap {cm_ns}/{cm_name}"
    else:
        value, source = INGRESS_NGINX_CLIENT_KEEPALIVE_S, "ingress-nginx's default keep-alive"
    resource = f"ConfigMap {cm_ns}/{cm_name}"
    evidence = (
        f"ingress-nginx closes idle client connections after {value} s ({source}); the "
        f"{lb_label(lb)} reuses them for up to {idle} s{idle_note}",
    )
    if value > idle:
        return Finding(
            CODE,
            Status.PASS,
            Severity.HIGH,
            f"ingress-nginx keeps idle connections longer than the {lb_label(lb)}.",
            resource,
            evidence,
        )
    wanted = idle + MARGIN_S
    return Finding(
        CODE,
        Status.FAIL if value < idle else Status.WARN,
        Severity.HIGH if value < idle else Severity.MEDIUM,
        f"ingress-nginx closes idle connections after {value} s, "
        + ("before" if value < idle else "at the same time as")
        + f" the {lb_label(lb)} stops reusing them at {idle} s.",
        resource,
        evidence,
        (
            fix(
                f"Keep idle client connections open for {wanted} s in ingress-nginx",
                "shell",
                "keepalive_nginx_configmap.sh.j2",
                namespace=cm_ns,
                name=cm_name,
                key="keep-alive",
                value=str(wanted),
                apply=KubePatch(
                    "ConfigMap", cm_ns, cm_name, "merge", {"data": {"keep-alive": str(wanted)}}
                ),
            ),
        ),
    )


def _judge_group(snapshot: Snapshot, pooler: Pooler, group: _Group) -> Finding:
    keepalive = group.keepalive
    idle, idle_note, label = pooler.idle_s, pooler.idle_note, pooler.label
    resource = group.owner.ref if group.owner.kind != "pod" else f"pod/{group.pods[0]}"
    reuse = f"{label} reuses them for up to {idle} s{idle_note}"
    if not keepalive.reuses_connections:
        return Finding(
            code=CODE,
            status=Status.PASS,
            severity=Severity.INFO,
            summary=f"{keepalive.server} does not keep connections open, so {label} never "
            "reuses one the server has closed",
            resource=resource,
            evidence=(
                f"{group.where} closes each connection after its response ({keepalive.source}"
                f"{'; ' + keepalive.note if keepalive.note else ''}); {reuse}.",
            ),
        )
    server_idle = keepalive.idle_timeout_s
    assert server_idle is not None
    shown = seconds_text(server_idle)
    detail = keepalive.source + (f"; {keepalive.note}" if keepalive.note else "")
    if server_idle > idle:
        return Finding(
            code=CODE,
            status=Status.PASS,
            severity=Severity.INFO,
            summary=f"{keepalive.server} keeps idle connections {shown}, longer than {label} "
            f"reuses them ({idle} s)",
            resource=resource,
            evidence=(
                f"{group.where} keeps idle connections open for {shown} ({detail}); {reuse}.",
            ),
        )
    status = Status.FAIL if server_idle < idle else Status.WARN
    if status is Status.FAIL:
        summary = (
            f"{keepalive.server} closes idle connections after {shown}, before {label} "
            f"stops reusing them at {idle} s"
        )
    else:
        summary = (
            f"{keepalive.server} closes idle connections after {shown}, exactly when "
            f"{label} stops reusing them: the race remains"
        )
    consequence = f"a request sent on a connection the server has just closed {pooler.consequence}"
    return Finding(
        code=CODE,
        status=status,
        severity=Severity.HIGH if status is Status.FAIL else Severity.MEDIUM,
        summary=summary,
        resource=resource,
        evidence=(
            f"{group.where} closes idle connections after {shown} ({detail}); {reuse}.",
            f"The server must keep idle connections longer than {label}: otherwise {consequence}.",
        ),
        fixes=tuple(_fixes(snapshot, pooler, group)),
    )


def _unknown(pooler: Pooler, groups: list[_Group]) -> Finding:
    idle, idle_note = pooler.idle_s, pooler.idle_note
    evidence = [
        f"{group.where}: {group.keepalive.source}"
        + (f"; {group.keepalive.note}" if group.keepalive.note else "")
        for group in groups
    ]
    evidence.append(
        f"{pooler.label[0].upper()}{pooler.label[1:]} reuses idle connections for up to "
        f"{idle} s{idle_note}; each server "
        f"must keep them open longer (at least {idle + MARGIN_S} s)."
    )
    servers = sorted({g.keepalive.server for g in groups})
    return Finding(
        code=CODE,
        status=Status.UNKNOWN,
        severity=Severity.INFO,
        summary=(
            f"Could not tell how long {', '.join(servers)} keeps idle connections behind "
            f"{pooler.label}"
            if "unknown" not in servers
            else f"Could not tell which HTTP server the pods run behind {pooler.label}, or "
            "how long it keeps idle connections"
        ),
        resource=f"pod/{groups[0].pods[0]}",
        evidence=tuple(evidence),
    )


# ---- fixes ----------------------------------------------------------------------------


def _fixes(snapshot: Snapshot, pooler: Pooler, group: _Group) -> list[Fix]:
    keepalive = group.keepalive
    target = pooler.idle_s + MARGIN_S
    fixes = [_server_fix(group, target)]
    server_idle = keepalive.idle_timeout_s or 0.0
    lower = math.floor(server_idle) - MARGIN_S
    if pooler.lb is not None and lower >= MIN_SUGGESTED_LB_IDLE_S:
        fixes.extend(_lb_fixes(snapshot, pooler.lb, lower))
    return fixes


def _server_fix(group: _Group, target: int) -> Fix:
    keepalive, owner, origin = group.keepalive, group.owner, group.keepalive.origin
    server = keepalive.server
    title = f"Keep idle connections open for {target} s in {server}"
    common: dict[str, Any] = {
        "namespace": owner.namespace,
        "owner_kind": owner.kind,
        "owner_name": owner.name,
        "patchable": owner.patchable,
        "targets": [f"{owner.kind}/{owner.name}"]
        if owner.kind != "pod"
        else [f"pod/{p.split('/', 1)[-1]}" for p in group.pods],
        "container": keepalive.container,
        "seconds": target,
    }
    if server == "Node.js":
        return fix(title, "javascript", "keepalive_node.j2", **common)
    if origin.kind in ("argv", "shell") and server in ("gunicorn", "uvicorn"):
        flag = gunicorn_server.KEEPALIVE_FLAG if server == "gunicorn" else uvicorn_server.FLAG
        joined = origin.text.startswith(flag + "=")
        path = f"/spec/template/spec/containers/{group.container_index}/{origin.field}/"
        path += str(origin.index)
        value = f"{flag}={target}" if joined else str(target)
        flag_fix = fix(
            title,
            "shell",
            "keepalive_flag.j2",
            **common,
            in_shell=origin.kind == "shell",
            flag=flag,
            path=path,
            field=origin.field,
            index=origin.index,
            value=value,
        )
        if origin.kind == "shell" or not owner.patchable or group.container_index < 0:
            return flag_fix
        operation = {"op": "replace", "path": path, "value": value}
        return replace(flag_fix, apply=_owner_patch(owner, "json", [operation]))
    if server in _ENV_SETTING and origin.kind in ("env", "default"):
        variable, value = _ENV_SETTING[server], _env_value(server, origin.text, target)
        env_fix = fix(
            title,
            "shell",
            "keepalive_env.j2",
            **common,
            variable=variable,
            value=value,
            note="Puma reads this variable from version 7; older versions need "
            f"persistent_timeout {target} in config/puma.rb."
            if server == "puma"
            else "",
        )
        if not owner.patchable or server == "puma":
            return env_fix
        # What `kubectl set env` sends: the variable merged by name into the container.
        container = {"name": keepalive.container, "env": [{"name": variable, "value": value}]}
        body = {"spec": {"template": {"spec": {"containers": [container]}}}}
        return replace(env_fix, apply=_owner_patch(owner, "strategic", body))
    setting = _FILE_SETTING.get(server, "")
    return fix(
        title,
        "shell",
        "keepalive_config.j2",
        **common,
        server=server,
        setting=setting.format(n=target, ms=target * 1000),
        configmap=origin.configmap.split("/", 1)[-1],
        key=origin.key,
        path=origin.path,
        line=origin.line if origin.kind == "file" else 0,
    )


def _owner_patch(owner: Owner, patch_type: str, body: Any) -> KubePatch:
    return KubePatch(owner.kind, owner.namespace, owner.name, patch_type, body)


def _annotation_patch(kind: str, namespace: str, name: str, key: str, value: str) -> KubePatch:
    return KubePatch(kind, namespace, name, "merge", {"metadata": {"annotations": {key: value}}})


def _env_value(server: str, current: str, target: int) -> str:
    if server != "gunicorn":
        return str(target)
    flag = gunicorn_server.KEEPALIVE_FLAG
    pattern = re.compile(rf"{re.escape(flag)}(=|\s+)\S+")
    if pattern.search(current):
        return pattern.sub(f"{flag} {target}", current)
    return shlex.join([*shlex.split(current), flag, str(target)])


def _lb_fixes(snapshot: Snapshot, lb: LoadBalancer, seconds: int) -> list[Fix]:
    title = (
        f"Or lower the {lb_label(lb)}'s idle timeout to {seconds} s "
        f"(only if every request finishes well within {seconds} s)"
    )
    if lb.type == "classic":
        service = snapshot.service
        namespace = kube.namespace(service) if service else snapshot.namespace
        name = kube.name(service) if service else snapshot.service_name
        classic = fix(
            title,
            "shell",
            "keepalive_lb_classic.j2",
            namespace=namespace,
            service=name,
            annotation=CLASSIC_IDLE_ANNOTATION,
            seconds=seconds,
        )
        patch = _annotation_patch("Service", namespace, name, CLASSIC_IDLE_ANNOTATION, str(seconds))
        return [replace(classic, apply=patch)]
    served = set(re.split(r"[\s,]+", lb.serves)) if lb.serves else set()
    ingresses = [i for i in snapshot.ingresses if kube.ref(i) in served] or snapshot.ingresses
    if not ingresses:
        return []
    targets = [
        {
            "namespace": kube.namespace(i),
            "name": kube.name(i),
            "value": _alb_attributes(kube.annotations(i), seconds),
        }
        for i in ingresses
    ]
    alb = fix(
        title,
        "shell",
        "keepalive_lb_alb.j2",
        ingresses=targets,
        annotation=ALB_ATTRIBUTES_ANNOTATION,
    )
    if len(targets) != 1:
        return [alb]  # one patch per Ingress: not a one-click change
    only = targets[0]
    patch = _annotation_patch(
        "Ingress", only["namespace"], only["name"], ALB_ATTRIBUTES_ANNOTATION, only["value"]
    )
    return [replace(alb, apply=patch)]


def _alb_attributes(annotations: dict[str, str], seconds: int) -> str:
    """The attributes annotation with the idle timeout replaced and the other keys kept."""
    pairs = [
        p.strip()
        for p in annotations.get(ALB_ATTRIBUTES_ANNOTATION, "").split(",")
        if p.strip() and not p.strip().startswith(f"{ALB_IDLE_KEY}=")
    ]
    return ",".join([*pairs, f"{ALB_IDLE_KEY}={seconds}"])


CHECK = Check(
    name="app_keepalive",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Server keep-alive outlasts the load balancer's idle timeout",
    explains=(
        "An ALB, and a Classic LB on HTTP/HTTPS listeners, reuse idle connections to the "
        "targets for up to the idle timeout. A server that closes an idle connection first, "
        "or at the same moment, makes the next request on it fail: 502 from an ALB, 504 "
        "with BackendConnectionErrors from a Classic LB."
    ),
    judge=judge,
    templates=(
        "keepalive_flag.j2",
        "keepalive_env.j2",
        "keepalive_config.j2",
        "keepalive_node.j2",
        "keepalive_lb_classic.j2",
        "keepalive_lb_alb.j2",
    ),
    step="keep-alive",
)
