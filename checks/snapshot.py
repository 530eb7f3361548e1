"""Plain, typed facts fetched from Kubernetes and AWS: what every check judges.

Collectors (``checks.collect``) fill a :class:`Snapshot`; checks are pure functions of it.
Kubernetes objects stay as the API's JSON (``KubeObject``), the shape ``kubectl get -o
json`` shows and the shape manifests have, so the same checks can judge a live cluster and
files offline. AWS facts are small dataclasses with the fields the checks need.

What could not be fetched is recorded in ``Snapshot.gaps`` with the reason, so a check
can report ``unknown`` instead of passing silently.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from checks import numbers

KubeObject = dict[str, Any]
LbType = Literal["classic", "application", "network"]


@dataclass(frozen=True)
class Gap:
    """Something a collector could not read: ``area`` names what (e.g. ``metrics``).

    The VPC is read call by call, each refusal its own area: ``vpc``, ``subnets``,
    ``route-tables``, ``network-acls``, ``instances``, ``security-groups``, ``prefix-lists``;
    ``network`` is the whole VPC read failing or running out of time. A check names the
    areas it needs, so one refused call leaves the others' checks judging.
    """

    area: str
    resource: str
    reason: str
    needs: str = ""


@dataclass(frozen=True)
class AclEntry:
    rule_number: int
    egress: bool
    protocol: str  # "-1" (all), "6" (tcp), "17" (udp), ...
    cidr: str
    action: Literal["allow", "deny"]
    port_from: int | None = None
    port_to: int | None = None

    def matches(self, protocol: str, address: str, port: int) -> bool:
        if self.protocol not in ("-1", protocol):
            return False
        ranged = self.protocol != "-1" and self.port_from is not None and self.port_to is not None
        if ranged and not (self.port_from or 0) <= port <= (self.port_to or 0):
            return False
        return ipaddress.ip_address(address) in ipaddress.ip_network(self.cidr, strict=False)


@dataclass(frozen=True)
class NetworkAcl:
    id: str
    is_default: bool
    entries: tuple[AclEntry, ...]
    name: str = ""


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str
    az: str
    vpc_id: str
    public: bool
    network_acl_id: str | None
    name: str = ""


@dataclass(frozen=True)
class SgRule:
    protocol: str  # "-1", "tcp", "udp", "icmp"
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    prefix_list_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    vpc_id: str
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...]


@dataclass(frozen=True)
class Instance:
    id: str
    subnet_id: str
    private_ip: str
    az: str
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class TargetHealth:
    """One target of a target group, or one instance of a Classic LB."""

    id: str
    port: int | None
    state: str  # healthy | unhealthy | initial | draining | unused | InService | OutOfService
    reason: str = ""
    description: str = ""
    az: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in ("healthy", "InService")


@dataclass(frozen=True)
class HealthCheck:
    protocol: str
    port: str  # "traffic-port" or a number
    path: str = ""
    matcher: str = ""
    interval_s: int | None = None
    timeout_s: int | None = None


@dataclass(frozen=True)
class TargetGroup:
    name: str
    arn: str
    target_type: str  # ip | instance
    protocol: str
    port: int
    health_check: HealthCheck
    attributes: dict[str, str]
    targets: tuple[TargetHealth, ...]


@dataclass(frozen=True)
class Listener:
    port: int
    protocol: str
    instance_port: int | None = None  # Classic LB
    instance_protocol: str | None = None  # Classic LB
    target_group_arns: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    arn: str = ""


@dataclass(frozen=True)
class MetricSeries:
    """One CloudWatch metric: one point a minute, oldest first; ``None`` = no datapoint."""

    name: str
    stat: str
    values: tuple[float | None, ...]
    dimensions: dict[str, str] = field(default_factory=dict)
    timestamps: tuple[float, ...] = ()

    @property
    def total(self) -> float:
        return sum(v for v in self.values if v is not None)

    @property
    def peak(self) -> float | None:
        present = [v for v in self.values if v is not None]
        return max(present) if present else None


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    type: LbType
    dns_name: str
    scheme: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    attributes: dict[str, str]
    listeners: tuple[Listener, ...]
    target_groups: tuple[TargetGroup, ...] = ()
    instances: tuple[TargetHealth, ...] = ()  # Classic LB instance health
    arn: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    serves: str = ""  # "service/NS/NAME" or "ingress/NS/NAME"

    @property
    def idle_timeout_s(self) -> int | None:
        """The connection idle timeout in effect (NLB: the first TCP listener's)."""
        if self.type == "classic":
            raw = self.attributes.get("idle_timeout")
        elif self.type == "application":
            raw = self.attributes.get("idle_timeout.timeout_seconds")
        else:
            raw = next(
                (
                    lst.attributes["tcp.idle_timeout.seconds"]
                    for lst in self.listeners
                    if "tcp.idle_timeout.seconds" in lst.attributes
                ),
                None,
            )
        # A value AWS would never hold (a hand-written scenario, say) reads as unknown.
        return numbers.whole(str(raw).strip()) if raw is not None else None

    @property
    def managed_by_lb_controller(self) -> bool:
        """Made by the AWS Load Balancer Controller (it tags what it makes), not by the
        in-tree controller or by hand."""
        return any(
            k.startswith(("elbv2.k8s.aws/", "service.k8s.aws/", "ingress.k8s.aws/"))
            for k in self.tags
        )

    @property
    def cross_zone(self) -> bool:
        if self.type == "application":
            return True
        key = "cross_zone" if self.type == "classic" else "load_balancing.cross_zone.enabled"
        return str(self.attributes.get(key, "false")).lower() == "true"


@dataclass(frozen=True)
class Sysctls:
    """TCP keepalive settings read in one network namespace (a pod's or a node's)."""

    subject: str  # "NAMESPACE/POD" or "node/NAME"
    values: dict[str, int]
    error: str = ""  # why they could not be read, when values is empty


@dataclass
class InClusterProxy:
    """An in-cluster proxy between the load balancer and the asked Service, such as
    ingress-nginx: load balancer -> proxy Service -> proxy pods -> asked Service."""

    kind: str  # "ingress-nginx"
    service: KubeObject  # the proxy's own Service, which the load balancer serves
    ingresses: list[KubeObject]  # the asked Service's Ingresses it routes
    configmap: KubeObject | None = None
    pods: list[KubeObject] = field(default_factory=list)
    workload: KubeObject | None = None


@dataclass
class Snapshot:
    """Everything the checks judge about one asked Service."""

    namespace: str
    service_name: str
    cluster: str = "default"
    window_s: int = 3600
    # Kubernetes, as JSON objects
    service: KubeObject | None = None
    ingresses: list[KubeObject] = field(default_factory=list)  # those that route to the service
    pods: list[KubeObject] = field(default_factory=list)  # pods selected by the service
    nodes: list[KubeObject] = field(default_factory=list)
    configmaps: dict[str, KubeObject] = field(default_factory=dict)  # by name, service's ns
    workloads: list[KubeObject] = field(default_factory=list)  # Deployments etc. owning pods
    endpoint_slices: list[KubeObject] = field(default_factory=list)
    ingress_classes: list[KubeObject] = field(default_factory=list)
    events: list[KubeObject] = field(default_factory=list)
    proxies: list[InClusterProxy] = field(default_factory=list)
    ingress_class_params: list[KubeObject] = field(default_factory=list)
    target_group_bindings: list[KubeObject] = field(default_factory=list)  # for the service
    # SecurityGroupPolicies of the service's namespace, and its ServiceAccounts when a policy
    # selects by them: together they say which pods carry their own security groups.
    security_group_policies: list[KubeObject] = field(default_factory=list)
    service_accounts: list[KubeObject] = field(default_factory=list)
    # AWS
    region: str = ""
    vpc_cidr: str = ""
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    network_acls: dict[str, NetworkAcl] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    prefix_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> CIDRs
    metrics: dict[str, dict[str, MetricSeries]] = field(default_factory=dict)  # lb name -> name
    # Inside pods and nodes
    sysctls: dict[str, Sysctls] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)

    def gap(self, *areas: str) -> Gap | None:
        """The first gap of any of ``areas``."""
        return next((g for g in self.gaps if g.area in areas), None)

    def proxy_behind(self, lb: LoadBalancer) -> InClusterProxy | None:
        """The in-cluster proxy ``lb`` sends its traffic to, when it fronts one rather than
        the asked Service's pods."""
        refs = {r.strip() for r in lb.serves.split(",") if r.strip()}
        for proxy in self.proxies:
            meta = proxy.service.get("metadata") or {}
            if f"service/{meta.get('namespace', '')}/{meta.get('name', '')}" in refs:
                return proxy
        return None

    def acl_for_subnet(self, subnet_id: str) -> NetworkAcl | None:
        subnet = self.subnets.get(subnet_id)
        if subnet is None or subnet.network_acl_id is None:
            return None
        return self.network_acls.get(subnet.network_acl_id)
