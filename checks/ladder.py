"""The timeout ladder: every timeout and keep-alive on the request path, side by side.

The path runs client -> load balancer -> ingress-nginx (when it is in the path) -> the app
servers in the pods, and under them the pods' TCP stack. Each layer's value comes with
where it was read, or the documented default that applies when nothing sets it. Two kinds
of pair are judged, and an inverted one is named in the rung's ``note``:

* keep-alive: a layer that reuses idle connections (an ALB, a Classic LB's HTTP/HTTPS
  listeners, ingress-nginx's upstream pool) must stop reusing them before the server
  behind it closes them; equal values still race;
* request timeouts: an inner timeout shorter than the outer one is the right order (the
  inner layer answers, the outer one passes the answer on); an inner one at or above the
  outer one leaves the load balancer to cut slow requests first.

The ladder is evidence shown with the report; findings come from the checks, which share
the ingress-nginx settings and defaults defined here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from checks import kube, numbers
from checks.models import Rung
from checks.rules.app_keepalive import (
    AWS_DEFAULT_IDLE_TIMEOUT_S,
    INGRESS_NGINX_UPSTREAM_KEEPALIVE_S,
    owner_of,
    pools_connections,
    serving_containers,
)
from checks.rules.tcp_keepalive import KEEPALIVE_TIME, NLB_DEFAULT_IDLE_TIMEOUT_S, pod_sysctls
from checks.rules.tcp_keepalive import read as read_tcp_keepalive
from checks.servers import ServerKeepAlive, detect
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)

NGINX_ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
_NGINX_IMAGE = "ingress-nginx/controller"
_LB_KIND = {"classic": "Classic LB", "application": "ALB", "network": "NLB"}


@dataclass(frozen=True)
class NginxSetting:
    """One ingress-nginx timeout: its ConfigMap key, the Ingress annotation that overrides it
    for one Ingress (none for controller-wide settings), and ingress-nginx's default."""

    key: str
    default_s: int
    per_ingress: bool

    @property
    def annotation(self) -> str:
        return f"{NGINX_ANNOTATION_PREFIX}{self.key}" if self.per_ingress else ""


# ingress-nginx's documented defaults; the order is the order of the ladder.
CLIENT_KEEPALIVE = NginxSetting("keep-alive", 75, per_ingress=False)
PROXY_CONNECT_TIMEOUT = NginxSetting("proxy-connect-timeout", 5, per_ingress=True)
PROXY_SEND_TIMEOUT = NginxSetting("proxy-send-timeout", 60, per_ingress=True)
PROXY_READ_TIMEOUT = NginxSetting("proxy-read-timeout", 60, per_ingress=True)
UPSTREAM_KEEPALIVE_TIMEOUT = NginxSetting(
    "upstream-keepalive-timeout", INGRESS_NGINX_UPSTREAM_KEEPALIVE_S, per_ingress=False
)
NGINX_SETTINGS = (
    CLIENT_KEEPALIVE,
    PROXY_CONNECT_TIMEOUT,
    PROXY_SEND_TIMEOUT,
    PROXY_READ_TIMEOUT,
    UPSTREAM_KEEPALIVE_TIMEOUT,
)
_WHAT = {
    CLIENT_KEEPALIVE.key: "keep-alive (client side)",
    PROXY_CONNECT_TIMEOUT.key: "proxy-connect-timeout",
    PROXY_SEND_TIMEOUT.key: "proxy-send-timeout",
    PROXY_READ_TIMEOUT.key: "proxy-read-timeout",
    UPSTREAM_KEEPALIVE_TIMEOUT.key: "upstream-keepalive-timeout",
}


# ---- the load balancer ------------------------------------------------------------------


def lb_label(lb: LoadBalancer) -> str:
    return f"{_LB_KIND[lb.type]} {lb.name}"


def lb_idle(lb: LoadBalancer) -> tuple[int, str]:
    """The idle timeout in effect and where it comes from."""
    if lb.idle_timeout_s is not None:
        if lb.type == "classic":
            return lb.idle_timeout_s, "attribute idle_timeout"
        if lb.type == "application":
            return lb.idle_timeout_s, "attribute idle_timeout.timeout_seconds"
        return lb.idle_timeout_s, "listener attribute tcp.idle_timeout.seconds"
    if lb.type == "network":
        return NLB_DEFAULT_IDLE_TIMEOUT_S, "AWS default for TCP listeners (attribute not read)"
    return AWS_DEFAULT_IDLE_TIMEOUT_S[lb.type], "AWS default (attribute not read)"


def _lb_rung(lb: LoadBalancer) -> Rung:
    seconds, source = lb_idle(lb)
    setting = "TCP idle timeout" if lb.type == "network" else "idle timeout"
    note = ""
    if not pools_connections(lb):
        note = (
            "no HTTP pooling: each client connection passes through to one target, so there "
            "is no keep-alive race behind it"
        )
    return Rung(lb_label(lb), setting, float(seconds), source, note)


# ---- ingress-nginx ----------------------------------------------------------------------


@dataclass
class NginxLayer:
    """ingress-nginx on the path: its ConfigMap and the Ingresses of the asked Service."""

    label: str
    service_ref: str  # "service/NS/NAME" of the controller's own Service, "" when unknown
    configmap: KubeObject | None
    configmap_ref: str  # "NS/NAME" of the ConfigMap looked for, "" when not known
    ingresses: list[KubeObject] = field(default_factory=list)
    note: str = ""
    # The asked Service is the controller's own: its pods are this layer, not app servers.
    is_asked: bool = False

    def value(self, setting: NginxSetting, ingress: KubeObject | None = None) -> NginxValue:
        """The value in effect: the Ingress annotation, else the ConfigMap key, else the
        default. A value that is not whole seconds is shown, not guessed at."""
        if ingress is not None and setting.per_ingress:
            raw = kube.annotations(ingress).get(setting.annotation)
            if raw is not None:
                where = (
                    f"annotation {setting.annotation} on Ingress "
                    f"{kube.namespace(ingress)}/{kube.name(ingress)}"
                )
                return _parsed(raw, where)
        data = (self.configmap or {}).get("data") or {}
        if setting.key in data:
            return _parsed(str(data[setting.key]), f"ConfigMap {self.configmap_ref}")
        if self.configmap is not None:
            why = f"not set in ConfigMap {self.configmap_ref}"
        elif self.configmap_ref:
            why = f"ConfigMap {self.configmap_ref} not found"
        else:
            why = "the controller's ConfigMap not found"
        return NginxValue(float(setting.default_s), f"ingress-nginx default ({why})")

    def per_ingress(self, setting: NginxSetting) -> list[tuple[list[KubeObject], NginxValue]]:
        """The Ingresses grouped by the value they get; one group with no Ingress when none
        is known or the setting is controller-wide."""
        if not setting.per_ingress or not self.ingresses:
            return [([], self.value(setting))]
        groups: dict[NginxValue, list[KubeObject]] = {}
        for ingress in self.ingresses:
            groups.setdefault(self.value(setting, ingress), []).append(ingress)
        return [(ingresses, value) for value, ingresses in groups.items()]

    @property
    def upstream_pooling(self) -> bool:
        data = (self.configmap or {}).get("data") or {}
        return str(data.get("upstream-keepalive-connections", "")).strip() != "0"


@dataclass(frozen=True)
class NginxValue:
    """A setting's value in effect (None where it cannot be read) and where it comes from."""

    seconds: float | None
    source: str


def _parsed(raw: str, where: str) -> NginxValue:
    text = raw.strip()
    seconds = numbers.whole(text)
    if seconds is not None:
        return NginxValue(float(seconds), where)
    # Limitation: ingress-nginx takes these as whole seconds; other forms are not resolved.
    return NginxValue(None, f"{where}: {text!r} is not a whole number of seconds")


def _ref(obj: KubeObject) -> str:
    return f"{kube.namespace(obj)}/{kube.name(obj)}"


def _args(containers: list[dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for container in containers:
        words = list(container.get("args") or []) + list(container.get("command") or [])
        for word in words:
            key, sep, value = str(word).partition("=")
            if sep and key.startswith("--"):
                found[key] = value
    return found


def _controller_pods(snapshot: Snapshot) -> list[KubeObject]:
    return [
        p
        for p in snapshot.pods
        if any(_NGINX_IMAGE in str(c.get("image", "")) for c in kube.containers(p))
    ]


def nginx_layers(snapshot: Snapshot) -> list[NginxLayer]:
    """ingress-nginx in the path: the proxies found in front of the asked Service, or the
    asked Service itself when its pods are the ingress-nginx controller."""
    layers: list[NginxLayer] = []
    for proxy in snapshot.proxies:
        if proxy.kind != "ingress-nginx":
            continue
        configmap_ref = _ref(proxy.configmap) if proxy.configmap is not None else ""
        if not configmap_ref and proxy.workload is not None:
            ns = kube.namespace(proxy.workload)
            wanted = _args(kube.containers(kube.pod_template(proxy.workload))).get(
                "--configmap", f"{ns}/{kube.name(proxy.workload)}"
            )
            configmap_ref = _configmap_ref(wanted, ns)
        service_ref = kube.ref(proxy.service) if proxy.service.get("kind") else ""
        if not service_ref:
            service_ref = f"service/{_ref(proxy.service)}"
        layers.append(
            NginxLayer(
                label=f"ingress-nginx {_ref(proxy.service)}",
                service_ref=service_ref,
                configmap=proxy.configmap,
                configmap_ref=configmap_ref,
                ingresses=list(proxy.ingresses),
            )
        )
    if layers:
        return layers
    controllers = _controller_pods(snapshot)
    if not controllers:
        return []
    namespace = kube.namespace(controllers[0])
    wanted = _args(kube.containers(controllers[0])).get("--configmap", "")
    configmap_ref = _configmap_ref(wanted, namespace) if wanted else ""
    name = configmap_ref.rpartition("/")[2]
    configmap = snapshot.configmaps.get(name) if name else None
    return [
        NginxLayer(
            label=f"ingress-nginx {snapshot.namespace}/{snapshot.service_name}",
            service_ref=f"service/{snapshot.namespace}/{snapshot.service_name}",
            configmap=configmap,
            configmap_ref=configmap_ref,
            note="per-Ingress annotations not read: the asked Service is the controller's own",
            is_asked=True,
        )
    ]


def _configmap_ref(wanted: str, namespace: str) -> str:
    ns, _, name = wanted.rpartition("/")
    # The chart passes $(POD_NAMESPACE), which the kubelet expands to the pod's namespace.
    if not ns or ns.startswith("$("):
        ns = namespace
    return f"{ns}/{name}"


def lbs_in_front(snapshot: Snapshot, layer: NginxLayer) -> list[LoadBalancer]:
    """The load balancers that send traffic to ``layer``'s Service."""
    fronting = [lb for lb in snapshot.load_balancers if layer.service_ref in _served(lb)]
    return fronting or list(snapshot.load_balancers)


def _served(lb: LoadBalancer) -> set[str]:
    return {part.strip() for part in lb.serves.replace(",", " ").split() if part.strip()}


# ---- building the ladder ------------------------------------------------------------------


def _keepalive_inversion(server_s: float, pooler: str, pooler_s: float) -> str:
    if server_s < pooler_s:
        return (
            f"inverted: closes idle connections before {pooler} stops reusing them ({pooler_s:g} s)"
        )
    if server_s == pooler_s:
        return (
            f"inverted: closes idle connections exactly when {pooler} stops reusing them "
            f"({pooler_s:g} s): the race remains"
        )
    return ""


def _nginx_rungs(snapshot: Snapshot, layer: NginxLayer) -> list[Rung]:
    rungs: list[Rung] = []
    fronting = lbs_in_front(snapshot, layer)
    for setting in NGINX_SETTINGS:
        for ingresses, value in layer.per_ingress(setting):
            label = layer.label
            if ingresses and any(setting.annotation in kube.annotations(i) for i in ingresses):
                label += f" (Ingress {', '.join(_ref(i) for i in ingresses)})"
            notes = [layer.note] if layer.note and setting.per_ingress else []
            if value.seconds is not None:
                notes += _nginx_notes(setting, value.seconds, layer, fronting)
            rungs.append(
                Rung(label, _WHAT[setting.key], value.seconds, value.source, "; ".join(notes))
            )
    return rungs


def _nginx_notes(
    setting: NginxSetting, seconds: float, layer: NginxLayer, fronting: list[LoadBalancer]
) -> list[str]:
    notes: list[str] = []
    if setting is CLIENT_KEEPALIVE:
        for lb in fronting:
            if pools_connections(lb):
                idle, _ = lb_idle(lb)
                inverted = _keepalive_inversion(seconds, f"the {lb_label(lb)}", idle)
                if inverted:
                    notes.append(inverted)
    elif setting in (PROXY_READ_TIMEOUT, PROXY_SEND_TIMEOUT):
        for lb in fronting:
            idle, _ = lb_idle(lb)
            if seconds >= idle:
                notes.append(
                    f"inverted: not below the {lb_label(lb)}'s idle timeout ({idle} s), so the "
                    "load balancer cuts slow requests first"
                )
    elif setting is UPSTREAM_KEEPALIVE_TIMEOUT and not layer.upstream_pooling:
        notes.append("upstream keep-alive off (upstream-keepalive-connections is 0)")
    return notes


@dataclass
class _ServerGroup:
    keepalive: ServerKeepAlive
    where: str
    pods: list[str] = field(default_factory=list)


def _server_groups(snapshot: Snapshot, skip: list[KubeObject]) -> list[_ServerGroup]:
    groups: dict[tuple[object, ...], _ServerGroup] = {}
    for pod in snapshot.pods:
        if pod in skip:
            continue
        owner = owner_of(snapshot, pod)
        for container in serving_containers(pod, snapshot.service):
            found = detect(container, pod, snapshot.configmaps)
            # Bare pods have no shared owner; identical ones still make one rung.
            shared = owner.ref if owner.kind != "pod" else "pod"
            key = (found.server, found.container, found.idle_timeout_s, found.source, shared)
            where = owner.ref if owner.kind != "pod" else ""
            group = groups.setdefault(key, _ServerGroup(found, where))
            group.pods.append(_ref(pod))
    return list(groups.values())


def _server_rungs(snapshot: Snapshot, layers: list[NginxLayer]) -> list[Rung]:
    # What sits directly in front of the app servers and pools connections to them.
    poolers: list[tuple[str, float]] = []
    proxies = [layer for layer in layers if not layer.is_asked]
    if proxies:
        for layer in proxies:
            if layer.upstream_pooling:
                value = layer.value(UPSTREAM_KEEPALIVE_TIMEOUT)
                if value.seconds is not None:
                    poolers.append((f"{layer.label}'s upstream pool", value.seconds))
    else:
        for lb in snapshot.load_balancers:
            if pools_connections(lb):
                poolers.append((f"the {lb_label(lb)}", float(lb_idle(lb)[0])))
    rungs: list[Rung] = []
    skip = _controller_pods(snapshot) if len(proxies) < len(layers) else []
    for group in _server_groups(snapshot, skip):
        keepalive = group.keepalive
        count = len(group.pods)
        if count == 1:
            pods = group.pods[0]
        elif group.where:
            pods = f"{count} pods of {group.where}"
        else:
            pods = f"{group.pods[0]} and {count - 1} more"
        label = f"{keepalive.server} ({pods}, container {keepalive.container})"
        notes: list[str] = []
        seconds: float | None = keepalive.idle_timeout_s
        if not keepalive.reuses_connections:
            seconds = 0.0
            notes.append("no keep-alive: nothing to race")
        elif seconds is not None and seconds == float("inf"):
            seconds = None
            notes.append("no idle limit")
        elif seconds is not None:
            for pooler, pooler_s in poolers:
                inverted = _keepalive_inversion(seconds, pooler, pooler_s)
                if inverted:
                    notes.append(inverted)
        if keepalive.note:
            notes.append(keepalive.note)
        rungs.append(
            Rung(label, "keep-alive idle timeout", seconds, keepalive.source, "; ".join(notes))
        )
    return rungs


def _tcp_rungs(snapshot: Snapshot, layers: list[NginxLayer]) -> list[Rung]:
    nlbs = [lb for lb in snapshot.load_balancers if lb.type == "network"]
    proxied = any(not layer.is_asked for layer in layers)
    groups: dict[tuple[object, ...], list[str]] = {}
    sources: dict[tuple[object, ...], str] = {}
    for pod in snapshot.pods:
        reading = read_tcp_keepalive(snapshot, pod)
        if reading.reason:
            own = pod_sysctls(pod)
            shown = ", ".join(f"{s['name']}={s['value']}" for s in own)
            source = reading.reason + (f"; securityContext.sysctls sets {shown}" if own else "")
            key: tuple[object, ...] = (None, source, reading.where)
        else:
            source = f"read in {reading.where} ({reading.shown()})"
            key = (reading.keepalive_time, source, reading.where)
        sources[key] = source
        groups.setdefault(key, []).append(reading.pod_ref)
    rungs: list[Rung] = []
    for key, pods in groups.items():
        value = key[0]
        seconds = float(value) if isinstance(value, int) else None
        label = f"TCP keepalive ({pods[0] if len(pods) == 1 else f'{len(pods)} pods'})"
        notes: list[str] = []
        if seconds is not None:
            if proxied:
                notes.append(
                    "evidence only: the load balancer's connections end at ingress-nginx, not "
                    "at these pods"
                )
            elif nlbs:
                for lb in nlbs:
                    idle, _ = lb_idle(lb)
                    if seconds >= idle:
                        notes.append(
                            f"inverted: not below the {lb_label(lb)}'s idle timeout ({idle} s)"
                        )
            else:
                notes.append(
                    "evidence only: keepalive probes do not keep a Classic LB or ALB "
                    "connection open"
                )
        rungs.append(Rung(label, KEEPALIVE_TIME, seconds, sources[key], "; ".join(notes)))
    return rungs


def _mark_first(rungs: list[Rung]) -> list[Rung]:
    """Name the request timeout that a slow request meets first."""
    request = [
        i
        for i, r in enumerate(rungs)
        if r.seconds is not None
        and r.setting in ("idle timeout", "TCP idle timeout", _WHAT[PROXY_READ_TIMEOUT.key])
    ]
    if not request:
        return rungs
    first = min(request, key=lambda i: rungs[i].seconds or 0.0)
    rung = rungs[first]
    note = "fires first on a slow request" + (f"; {rung.note}" if rung.note else "")
    marked = list(rungs)
    marked[first] = Rung(rung.layer, rung.setting, rung.seconds, rung.source, note)
    return marked


def build_ladder(snapshot: Snapshot) -> list[Rung]:
    """Every timeout layer on the request path, outermost first."""
    layers = nginx_layers(snapshot)
    rungs = [_lb_rung(lb) for lb in snapshot.load_balancers]
    for layer in layers:
        rungs += _nginx_rungs(snapshot, layer)
    rungs += _server_rungs(snapshot, layers)
    rungs += _tcp_rungs(snapshot, layers)
    rungs = _mark_first(rungs)
    logger.debug(
        "ladder for %s/%s: %d rung(s), %d inverted",
        snapshot.namespace,
        snapshot.service_name,
        len(rungs),
        sum(1 for r in rungs if "inverted" in r.note),
    )
    return rungs
