"""Where things sit: the zones a load balancer serves and the zone and subnet of each target.

Pure readers of a :class:`~checks.snapshot.Snapshot`, shared by the zone checks. A place
that cannot be told carries an empty ``zone`` and the reason in ``why``, so a check can
say "could not place" instead of guessing.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from checks import kube
from checks.snapshot import Gap, KubeObject, LoadBalancer, Snapshot, Subnet, TargetHealth

logger = logging.getLogger(__name__)

# TargetHealth.az for an ip target outside the VPC: the load balancer reaches it from any zone.
ALL_ZONES = "all"

SERVICE_SUBNETS_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-subnets"
INGRESS_SUBNETS_ANNOTATION = "alb.ingress.kubernetes.io/subnets"


@dataclass(frozen=True)
class Place:
    """One target or node: ``label`` names it; ``zone`` is empty when ``why`` says why."""

    label: str
    zone: str
    subnet_id: str = ""
    why: str = ""


@dataclass(frozen=True)
class LbZones:
    """The zones a load balancer has a subnet in; ``missing`` are subnets not described."""

    subnets_by_zone: dict[str, tuple[Subnet, ...]]
    missing: tuple[str, ...]

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted(self.subnets_by_zone))


@dataclass(frozen=True)
class LbTarget:
    """A registered target with the group it belongs to (the LB's own name for Classic)."""

    group: str
    target_type: str  # ip | instance
    port: int | None
    health: TargetHealth


def find_gap(snapshot: Snapshot, area: str, resource: str = "") -> Gap | None:
    """The gap of ``area``, for ``resource`` when one is given."""
    return next(
        (g for g in snapshot.gaps if g.area == area and (not resource or g.resource == resource)),
        None,
    )


def lb_zones(snapshot: Snapshot, lb: LoadBalancer) -> LbZones:
    by_zone: dict[str, list[Subnet]] = {}
    missing: list[str] = []
    for subnet_id in lb.subnet_ids:
        subnet = snapshot.subnets.get(subnet_id)
        if subnet is None or not subnet.az:
            missing.append(subnet_id)
            continue
        by_zone.setdefault(subnet.az, []).append(subnet)
    return LbZones({z: tuple(s) for z, s in by_zone.items()}, tuple(missing))


def missing_subnets(snapshot: Snapshot, lb: LoadBalancer, missing: tuple[str, ...]) -> str:
    """Why subnets of ``lb`` are not known: ``subnet(s) A, B could not be read: REASON``."""
    named = f"subnet(s) {', '.join(missing)}"
    gap = snapshot.gap("subnets", "network")
    if gap is not None:
        return f"{named} could not be read: {gap.reason}"
    return f"{named} are not among the subnets AWS lists for {lb.vpc_id or 'its VPC'}"


def subnet_label(subnet: Subnet) -> str:
    return f"{subnet.id} ({subnet.name})" if subnet.name else subnet.id


def subnet_of_ip(snapshot: Snapshot, address: str) -> Subnet | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for subnet in snapshot.subnets.values():
        try:
            if ip in ipaddress.ip_network(subnet.cidr, strict=False):
                return subnet
        except ValueError:
            continue
    return None


def nodes_by_name(snapshot: Snapshot) -> dict[str, KubeObject]:
    return {kube.name(n): n for n in snapshot.nodes}


def instance_place(snapshot: Snapshot, instance_id: str, az_hint: str = "") -> Place:
    instance = snapshot.instances.get(instance_id)
    if instance is not None and instance.az:
        return Place(instance_id, instance.az, instance.subnet_id)
    if az_hint and az_hint != ALL_ZONES:
        return Place(instance_id, az_hint)
    unread = snapshot.gap("instances", "network")
    if unread is not None:
        return Place(
            instance_id, "", why=f"instance {instance_id} could not be read: {unread.reason}"
        )
    return Place(
        instance_id, "", why=f"instance {instance_id} was not found: AWS did not describe it"
    )


def node_place(snapshot: Snapshot, node_name: str) -> Place:
    """A node's zone: its zone label, then its providerID, then its EC2 instance."""
    label = f"node {node_name}"
    node = nodes_by_name(snapshot).get(node_name)
    if node is None:
        unread = snapshot.gap("kubernetes:nodes")
        why = (
            f"Node {node_name} could not be read: {unread.reason}"
            if unread is not None
            else f"Node {node_name} was not found in the cluster (it may have been removed)"
        )
        return Place(label, "", why=why)
    instance_id = kube.node_instance_id(node)
    instance = snapshot.instances.get(instance_id) if instance_id else None
    subnet_id = instance.subnet_id if instance is not None else ""
    if instance_id:
        label = f"node {node_name} ({instance_id})"
    zone = kube.node_zone(node) or (instance.az if instance is not None else "")
    if not zone:
        return Place(label, "", subnet_id, f"Node {node_name} has no zone label or providerID")
    return Place(label, zone, subnet_id)


def pod_label(pod: KubeObject) -> str:
    return f"pod {kube.namespace(pod)}/{kube.name(pod)}"


def pod_ip(pod: KubeObject) -> str:
    return str(kube.status(pod).get("podIP") or "")


def pod_node_name(pod: KubeObject) -> str:
    return str(kube.spec(pod).get("nodeName") or "")


def pod_node_place(snapshot: Snapshot, pod: KubeObject) -> Place:
    node_name = pod_node_name(pod)
    if not node_name:
        return Place(pod_label(pod), "", why=f"{pod_label(pod)} is not scheduled on a node")
    place = node_place(snapshot, node_name)
    return Place(f"{pod_label(pod)} on {place.label}", place.zone, place.subnet_id, place.why)


def ip_place(snapshot: Snapshot, address: str, label: str = "", az_hint: str = "") -> Place:
    """An ip target's zone: the subnet whose range holds it, else what AWS reported."""
    label = label or address
    subnet = subnet_of_ip(snapshot, address)
    if subnet is not None and subnet.az:
        return Place(label, subnet.az, subnet.id)
    if az_hint == ALL_ZONES:
        return Place(label, ALL_ZONES)
    if az_hint:
        return Place(label, az_hint)
    return Place(label, "", why=f"no subnet of the VPC holds {address}")


def pod_ip_place(snapshot: Snapshot, pod: KubeObject) -> Place:
    address = pod_ip(pod)
    if not address:
        return Place(pod_label(pod), "", why=f"{pod_label(pod)} has no IP address")
    if not kube.is_ip_address(address):
        why = f"{pod_label(pod)} has podIP {address!r}, which is not an IP address"
        return Place(pod_label(pod), "", why=why)
    return ip_place(snapshot, address, f"{pod_label(pod)} ({address})")


def lb_targets(lb: LoadBalancer) -> list[LbTarget]:
    if lb.type == "classic":
        return [LbTarget(lb.name, "instance", None, t) for t in lb.instances]
    return [
        LbTarget(tg.name, tg.target_type, t.port or tg.port, t)
        for tg in lb.target_groups
        for t in tg.targets
    ]


def target_place(snapshot: Snapshot, target: LbTarget) -> Place:
    label = f"{target.health.id}:{target.port}" if target.port else target.health.id
    if target.target_type == "ip":
        return ip_place(snapshot, target.health.id, label, target.health.az)
    place = instance_place(snapshot, target.health.id, target.health.az)
    return Place(label, place.zone, place.subnet_id, place.why)


def uses_ip_targets(lb: LoadBalancer) -> bool:
    return any(tg.target_type == "ip" for tg in lb.target_groups)


def served_refs(lb: LoadBalancer) -> list[str]:
    """``kind/ns/name`` of the objects the load balancer serves."""
    return [r.strip() for r in lb.serves.split(",") if r.strip()]


def serves_service(lb: LoadBalancer, snapshot: Snapshot) -> bool:
    return f"service/{snapshot.namespace}/{snapshot.service_name}" in served_refs(lb)


def subnets_annotation(ref: str) -> str:
    """The annotation that sets a load balancer's subnets on the object ``ref`` names."""
    return INGRESS_SUBNETS_ANNOTATION if ref.startswith("ingress/") else SERVICE_SUBNETS_ANNOTATION


def configuring_object(lb: LoadBalancer, snapshot: Snapshot) -> KubeObject | None:
    """The Service or Ingress whose annotations configure ``lb`` (the first one it serves)."""
    candidates = ([snapshot.service] if snapshot.service else []) + snapshot.ingresses
    by_ref = {kube.ref(o): o for o in candidates}
    return next((by_ref[r] for r in served_refs(lb) if r in by_ref), None)


def candidate_subnets(snapshot: Snapshot, lb: LoadBalancer, zone: str) -> list[Subnet]:
    """Subnets of the load balancer's VPC in ``zone`` that fit its scheme, best first.

    An internet-facing load balancer needs a public subnet; an internal one can use any, and
    private ones are preferred so public addresses stay for what faces the internet.
    """
    same_vpc = [
        s
        for s in snapshot.subnets.values()
        if s.az == zone and (not lb.vpc_id or not s.vpc_id or s.vpc_id == lb.vpc_id)
    ]
    if lb.scheme == "internet-facing":
        same_vpc = [s for s in same_vpc if s.public]
    return sorted(same_vpc, key=lambda s: (s.public, s.id))
