"""LB_AZ_GAP: targets sit in zones where the load balancer has no subnet.

A load balancer only has nodes in the zones of its subnets, and only sends to targets in
those zones: an ip target elsewhere is never used (``Target.NotInUse``), and a node elsewhere
shows OutOfService or unused. Pods there get no traffic from the load balancer; if every
target sits outside its zones, nothing does, and clients see 503/504.
"""

from __future__ import annotations

import logging

from checks import kube, topology
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, LoadBalancer, Snapshot
from checks.topology import ALL_ZONES, Place

logger = logging.getLogger(__name__)

CODE = "LB_AZ_GAP"
SEVERITY = Severity.HIGH


def _places(snapshot: Snapshot, lb: LoadBalancer) -> tuple[str, list[Place]]:
    """What the load balancer sends to, and where each sits: pod IPs in ip mode, else the
    nodes hosting the pods."""
    if topology.uses_ip_targets(lb):
        return "ip", [topology.pod_ip_place(snapshot, p) for p in snapshot.pods]
    seen: dict[str, Place] = {}
    for pod in snapshot.pods:
        node = topology.pod_node_name(pod)
        if node and node not in seen:
            place = topology.node_place(snapshot, node)
            pods = [kube.name(p) for p in snapshot.pods if topology.pod_node_name(p) == node]
            seen[node] = Place(
                f"{place.label}, hosting {', '.join(pods)}", place.zone, place.subnet_id, place.why
            )
        elif not node:
            seen[f"pod:{kube.name(pod)}"] = topology.pod_node_place(snapshot, pod)
    return "instance", list(seen.values())


def _healthy_entry_in_zones(snapshot: Snapshot, lb: LoadBalancer, zones: set[str]) -> bool:
    """A registered instance in one of ``zones`` that is healthy: with externalTrafficPolicy
    Cluster any such node forwards to pods in every zone."""
    for target in topology.lb_targets(lb):
        if target.target_type != "instance" or not target.health.healthy:
            continue
        if topology.target_place(snapshot, target).zone in zones:
            return True
    return False


def _fixes(
    snapshot: Snapshot, lb: LoadBalancer, gap_zones: list[str], lb_subnets: list[str]
) -> tuple[Fix, ...]:
    obj: KubeObject | None = topology.configuring_object(lb, snapshot)
    additions = {
        z: c[0].id for z in gap_zones if (c := topology.candidate_subnets(snapshot, lb, z))
    }
    fixes: list[Fix] = []
    if additions and obj is not None:
        ref = kube.ref(obj)
        fixes.append(
            fix(
                f"Add a subnet in {', '.join(sorted(additions))} to {lb.name}",
                "shell",
                "zones_subnets.sh.j2",
                kind=str(obj.get("kind", "")).lower(),
                namespace=kube.namespace(obj),
                name=kube.name(obj),
                key=topology.subnets_annotation(ref),
                subnets=",".join([*lb_subnets, *additions.values()]),
            )
        )
    lacking = [z for z in gap_zones if z not in additions]
    if lacking:
        fixes.append(
            fix(
                f"List the subnets of {', '.join(lacking)} to pick or create one",
                "shell",
                "zones_find_subnets.sh.j2",
                region=snapshot.region,
                vpc_id=lb.vpc_id,
                zones=lacking,
            )
        )
    return tuple(fixes)


def _judge_lb(snapshot: Snapshot, lb: LoadBalancer) -> Finding:
    resource = f"{lb.type} load balancer {lb.name}"
    zones = topology.lb_zones(snapshot, lb)
    if zones.missing:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not tell the zones of {lb.name}.",
            resource,
            (topology.missing_subnets(snapshot, lb, zones.missing),),
        )
    mode, places = _places(snapshot, lb)
    placed = [p for p in places if p.zone]
    unplaced = [p for p in places if not p.zone]
    if not places:
        gap = topology.find_gap(snapshot, "kubernetes:pods")
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"No pod of the Service to place against the zones of {lb.name}.",
            resource,
            (gap.reason if gap else "the Service's selector matches no pod",),
        )
    if not placed:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not tell the zone of any target of {lb.name}.",
            resource,
            tuple(p.why for p in unplaced),
        )
    lb_zone_set = set(zones.zones)
    outside = [p for p in placed if p.zone != ALL_ZONES and p.zone not in lb_zone_set]
    served = f"{lb.name} has subnets in {', '.join(zones.zones) or 'no zone'}"
    not_placed = tuple(f"could not place {p.label}: {p.why}" for p in unplaced)
    if not outside:
        logger.debug("%s: every placed target sits in %s", lb.name, sorted(lb_zone_set))
        return Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"Every target of {lb.name} sits in a zone it has a subnet in.",
            resource,
            (f"{served}; targets in {', '.join(sorted({p.zone for p in placed}))}", *not_placed),
        )

    gap_zones = sorted({p.zone for p in outside})
    local = kube.spec(snapshot.service or {}).get("externalTrafficPolicy") == "Local"
    # With externalTrafficPolicy Cluster a node in a served zone forwards to pods anywhere.
    bridged = (
        mode == "instance" and not local and _healthy_entry_in_zones(snapshot, lb, lb_zone_set)
    )
    inside = len(placed) - len(outside)
    evidence = [
        served,
        *(f"{p.label} sits in {p.zone}: no subnet of {lb.name} there" for p in outside),
    ]
    if bridged:
        evidence.append(
            "externalTrafficPolicy is Cluster and a healthy node in a served zone forwards to "
            "the pods in the other zones, so they still get traffic, through one more hop"
        )
    elif inside == 0:
        evidence.append(f"no target of {lb.name} sits in a zone it serves: nothing gets traffic")
    routes_gap = snapshot.gap("route-tables") if lb.scheme == "internet-facing" else None
    for zone in gap_zones:
        if routes_gap is not None:
            # Unread routes make every subnet look private: say so, not that none is public.
            evidence.append(
                f"which subnets in {zone} are public could not be read: {routes_gap.reason}"
            )
        elif not topology.candidate_subnets(snapshot, lb, zone):
            kind = "public " if lb.scheme == "internet-facing" else ""
            evidence.append(
                f"the VPC has no {kind}subnet in {zone} to add: create one"
                + (" with a route to an internet gateway" if kind else "")
                + ", or keep the pods out of that zone"
            )
    evidence.extend(not_placed)
    what = "nodes" if mode == "instance" else "pod IPs"
    return Finding(
        CODE,
        Status.WARN if bridged else Status.FAIL,
        Severity.MEDIUM if bridged else SEVERITY,
        f"{len(outside)} of {len(placed)} target {what} of {lb.name} sit in "
        f"{', '.join(gap_zones)}, where it has no subnet.",
        resource,
        tuple(evidence),
        _fixes(snapshot, lb, gap_zones, list(lb.subnet_ids)),
    )


def judge(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for lb in snapshot.load_balancers:
        findings.append(_judge_lb(snapshot, lb))
    return findings


CHECK = Check(
    name="lb_az_gap",
    codes=(CODE,),
    severity=SEVERITY,
    title="Targets in zones the load balancer does not serve",
    explains=(
        "A load balancer only sends to targets in the zones of its subnets: targets elsewhere "
        "get no traffic, and with none left in its zones requests fail."
    ),
    judge=judge,
    templates=("zones_subnets.sh.j2", "zones_find_subnets.sh.j2"),
    step="network",
)
