"""BACKEND_PORT_MISMATCH: a port reference along Ingress -> Service -> Pod does not resolve.

Each hop names the next one's port: an Ingress backend names a Service port (by number or
name), a Service's targetPort names a container port (by number or name), a Classic LB's
listener forwards to a nodePort, and an ip target group sends to the pod's port. A reference
that resolves to nothing leaves the load balancer no backend (503), or sends its connections
to a port where nothing listens (502/504, unhealthy targets).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from checks import kube, numbers, topology
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)

CODE = "BACKEND_PORT_MISMATCH"
SEVERITY = Severity.HIGH
# Listener protocols whose listener can be recreated without a certificate or a policy.
_PLAIN_LISTENER_PROTOCOLS = ("HTTP", "TCP")

ServicePort = dict[str, Any]


@dataclass
class _Result:
    fails: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)


def _protocol(port: dict[str, Any]) -> str:
    return str(port.get("protocol") or "TCP").upper()


def port_text(port: ServicePort) -> str:
    name = port.get("name")
    return f"{port.get('port')} ({name})" if name else str(port.get("port"))


def _as_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return numbers.whole(value)
    return None


def target_port(port: ServicePort) -> int | str:
    """The targetPort as written: a number, or a container port's name."""
    raw = port.get("targetPort", port.get("port"))
    number = _as_number(raw)
    return number if number is not None else str(raw)


def declared_ports(pod: KubeObject) -> list[dict[str, Any]]:
    return [p for c in kube.containers(pod) for p in c.get("ports") or [] if isinstance(p, dict)]


def resolve(port: ServicePort, pod: KubeObject) -> int | None:
    """The pod port a Service port sends to; ``None`` when a named targetPort is missing.

    A name is looked up by name and protocol, as Kubernetes builds the endpoints.
    """
    wanted = target_port(port)
    if isinstance(wanted, int):
        return wanted
    for declared in declared_ports(pod):
        if declared.get("name") == wanted and _protocol(declared) == _protocol(port):
            return _as_number(declared.get("containerPort"))
    return None


def _backends(ingress: KubeObject, service: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, port reference) of each backend of ``ingress`` that names ``service``."""
    spec = kube.spec(ingress)
    found: list[tuple[str, dict[str, Any]]] = []

    def add(where: str, backend: dict[str, Any] | None) -> None:
        if not isinstance(backend, dict):
            return
        svc = backend.get("service")
        if isinstance(svc, dict) and svc.get("name") == service:
            found.append((where, dict(svc.get("port") or {})))
        elif backend.get("serviceName") == service:
            raw = backend.get("servicePort")
            number = _as_number(raw)
            found.append((where, {"number": number} if number is not None else {"name": raw}))

    add("default backend", spec.get("defaultBackend") or spec.get("backend"))
    for rule in spec.get("rules") or []:
        host = rule.get("host") or "*"
        for path in (rule.get("http") or {}).get("paths") or []:
            add(f"{host}{path.get('path') or '/'}", path.get("backend"))
    return found


def _suggested_port(ports: list[ServicePort], ref: dict[str, Any]) -> ServicePort | None:
    """The Service port a broken backend most likely meant."""
    if len(ports) == 1:
        return ports[0]
    number, name = ref.get("number"), str(ref.get("name") or "").lower()
    for port in ports:
        if number is not None and target_port(port) == number:
            return port
        if name and str(port.get("name", "")).lower() == name:
            return port
    return None


def _check_ingresses(snapshot: Snapshot, ports: list[ServicePort], result: _Result) -> None:
    numbers = {_as_number(p.get("port")) for p in ports}
    names = {str(p["name"]) for p in ports if p.get("name")}
    offered = ", ".join(port_text(p) for p in ports) or "none"
    for ingress in snapshot.ingresses:
        if kube.namespace(ingress) not in ("", snapshot.namespace):
            continue
        for where, ref in _backends(ingress, snapshot.service_name):
            number, name = _as_number(ref.get("number")), ref.get("name")
            label = f"{kube.ref(ingress)} {where} -> service {snapshot.service_name}"
            if number is not None and number in numbers:
                result.checked.append(f"{label} port {number}: resolves")
                continue
            if number is None and name and str(name) in names:
                result.checked.append(f"{label} port {name}: resolves")
                continue
            asked = f"port {number}" if number is not None else f"port name {name or '(none)'}"
            result.fails.append(f"{label} {asked}: the Service has no such port (ports: {offered})")
            meant = _suggested_port(ports, ref)
            if meant is not None:
                result.fixes.append(
                    fix(
                        f"Point {kube.ref(ingress)} at port {port_text(meant)}",
                        "yaml",
                        "ports_ingress_backend.yaml.j2",
                        service=snapshot.service_name,
                        port_name=meant.get("name") if number is None else None,
                        port_number=_as_number(meant.get("port")),
                    )
                )


def _check_pods(
    snapshot: Snapshot, pods: list[KubeObject], ports: list[ServicePort], result: _Result
) -> None:
    for index, port in enumerate(ports):
        wanted = target_port(port)
        label = f"service port {port_text(port)} -> targetPort {wanted}"
        if isinstance(wanted, str):
            unresolved = [p for p in pods if resolve(port, p) is None]
            if not unresolved:
                result.checked.append(f"{label}: resolves on all {len(pods)} pod(s)")
                continue
            for pod in unresolved:
                declared = ", ".join(
                    f"{d.get('name') or '-'}={d.get('containerPort')}/{_protocol(d)}"
                    for d in declared_ports(pod)
                )
                result.fails.append(
                    f"{label} ({_protocol(port)}): no container port of that name on "
                    f"{topology.pod_label(pod)} (declared: {declared or 'none'}); it gets no "
                    "endpoint for this port"
                )
            numbers = {
                _as_number(d.get("containerPort"))
                for p in unresolved
                for d in declared_ports(p)
                if _protocol(d) == _protocol(port)
            }
            numbers.discard(None)
            if len(numbers) == 1:
                result.fixes.append(
                    fix(
                        f"Set targetPort of {port_text(port)} to the pods' port",
                        "shell",
                        "ports_service_target.sh.j2",
                        namespace=snapshot.namespace,
                        service=snapshot.service_name,
                        patch=json.dumps(
                            [
                                {
                                    "op": "replace",
                                    "path": f"/spec/ports/{index}/targetPort",
                                    "value": numbers.pop(),
                                }
                            ]
                        ),
                    )
                )
            continue
        # A number need not be declared: the app may listen on ports it does not list.
        undeclared = [
            p
            for p in pods
            if declared_ports(p)
            and wanted not in {_as_number(d.get("containerPort")) for d in declared_ports(p)}
        ]
        for pod in undeclared:
            listed = ", ".join(str(d.get("containerPort")) for d in declared_ports(pod))
            result.warns.append(
                f"{label}: {topology.pod_label(pod)} declares {listed}, not {wanted}; the "
                "connection fails unless the app listens there anyway"
            )
        if not undeclared:
            result.checked.append(f"{label}: declared by every pod that declares ports")


def _check_classic(
    snapshot: Snapshot, lb: LoadBalancer, ports: list[ServicePort], result: _Result
) -> None:
    node_ports = {n for p in ports if (n := _as_number(p.get("nodePort"))) is not None}
    offered = ", ".join(str(n) for n in sorted(node_ports)) or "none"
    for listener in lb.listeners:
        if listener.instance_port is None:
            continue
        label = f"{lb.name} listener {listener.protocol}:{listener.port}"
        if listener.instance_port in node_ports:
            result.checked.append(f"{label} -> nodePort {listener.instance_port}: resolves")
            continue
        result.fails.append(
            f"{label} forwards to instance port {listener.instance_port}, which is no nodePort "
            f"of service {snapshot.service_name} (nodePorts: {offered})"
        )
        wanted = next(
            (n for p in ports if (n := _as_number(p.get("nodePort"))) is not None
             and _as_number(p.get("port")) == listener.port),
            None,
        )  # fmt: skip
        if wanted is not None and listener.protocol.upper() in _PLAIN_LISTENER_PROTOCOLS:
            result.fixes.append(
                fix(
                    f"Recreate listener {listener.port} of {lb.name} on nodePort {wanted}",
                    "shell",
                    "ports_clb_listener.sh.j2",
                    region=snapshot.region,
                    lb_name=lb.name,
                    port=listener.port,
                    listener=(
                        f"Protocol={listener.protocol},LoadBalancerPort={listener.port},"
                        f"InstanceProtocol={listener.instance_protocol or listener.protocol},"
                        f"InstancePort={wanted}"
                    ),
                )
            )


def _check_target_groups(
    snapshot: Snapshot,
    lb: LoadBalancer,
    pods: list[KubeObject],
    ports: list[ServicePort],
    result: _Result,
) -> None:
    by_ip = {topology.pod_ip(p): p for p in pods if topology.pod_ip(p)}
    node_ports = {n for p in ports if (n := _as_number(p.get("nodePort"))) is not None}
    direct = topology.serves_service(lb, snapshot)
    for tg in lb.target_groups:
        bad = False
        for target in tg.targets:
            port = target.port or tg.port
            where = f"{tg.name} target {target.id}:{port}"
            if tg.target_type == "ip":
                pod = by_ip.get(target.id)
                if pod is None:
                    continue
                expected = {r for p in ports if (r := resolve(p, pod)) is not None}
                if port in expected:
                    continue
                serves = ", ".join(str(e) for e in sorted(expected)) or "no resolvable port"
                result.fails.append(
                    f"{where}: {topology.pod_label(pod)} serves the Service on {serves}, not {port}"
                )
                bad = True
            elif direct and node_ports and port not in node_ports:
                result.fails.append(
                    f"{where}: {port} is no nodePort of service {snapshot.service_name} "
                    f"(nodePorts: {', '.join(str(n) for n in sorted(node_ports))})"
                )
                bad = True
        if bad:
            result.fixes.append(
                fix(
                    f"See what registers the targets of {tg.name}",
                    "shell",
                    "ports_target_group.sh.j2",
                    namespace=snapshot.namespace,
                    region=snapshot.region,
                    arn=tg.arn,
                )
            )
        elif tg.targets:
            result.checked.append(f"{tg.name} ({tg.target_type}): target ports resolve")


def judge(snapshot: Snapshot) -> list[Finding]:
    ask = f"{snapshot.namespace}/{snapshot.service_name}"
    resource = f"service/{ask}"
    service = snapshot.service
    if service is None:
        return [Finding(CODE, Status.UNKNOWN, SEVERITY, f"Service {ask} was not read.", resource)]
    ports: list[ServicePort] = [
        p for p in kube.spec(service).get("ports") or [] if isinstance(p, dict)
    ]
    selector = {str(k): str(v) for k, v in (kube.spec(service).get("selector") or {}).items()}
    pods = [p for p in snapshot.pods if kube.selector_matches(selector, kube.labels(p))]
    result = _Result()

    _check_ingresses(snapshot, ports, result)
    pod_gap = topology.find_gap(snapshot, "kubernetes:pods")
    if pod_gap is not None:
        result.missing.append(f"pods not read, container ports not checked: {pod_gap.reason}")
    elif pods:
        _check_pods(snapshot, pods, ports, result)
    for lb in snapshot.load_balancers:
        if lb.type == "classic":
            if topology.serves_service(lb, snapshot):
                _check_classic(snapshot, lb, ports, result)
        else:
            _check_target_groups(snapshot, lb, pods, ports, result)

    logger.debug(
        "%s ports: %d fail, %d warn, %d ok", ask, len(result.fails), len(result.warns),
        len(result.checked),
    )  # fmt: skip
    if result.fails or result.warns:
        problems = len(result.fails) + len(result.warns)
        return [
            Finding(
                CODE,
                Status.FAIL if result.fails else Status.WARN,
                SEVERITY if result.fails else Severity.MEDIUM,
                f"{problems} port reference(s) on the way to {ask} do not resolve"
                + ("." if result.fails else " to a declared container port."),
                resource,
                tuple([*result.fails, *result.warns, *result.missing]),
                tuple(result.fixes),
            )
        ]
    if result.missing:
        return [
            Finding(
                CODE,
                Status.UNKNOWN,
                SEVERITY,
                f"Could not follow every port reference to {ask}.",
                resource,
                tuple([*result.missing, *result.checked]),
            )
        ]
    return [
        Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"Every port reference on the way to {ask} resolves.",
            resource,
            tuple(result.checked) or ("no port reference to follow",),
        )
    ]


CHECK = Check(
    name="backend_port_mismatch",
    codes=(CODE,),
    severity=SEVERITY,
    title="Port references that do not resolve",
    explains=(
        "A backend, targetPort, nodePort or target port that points at nothing leaves the load "
        "balancer no backend, or connects it to a port where nothing listens: 502, 503 or 504."
    ),
    judge=judge,
    templates=(
        "ports_ingress_backend.yaml.j2",
        "ports_service_target.sh.j2",
        "ports_clb_listener.sh.j2",
        "ports_target_group.sh.j2",
    ),
    step="load balancer",
)
