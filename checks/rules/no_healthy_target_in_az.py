"""NO_HEALTHY_TARGET_IN_AZ: a zone the load balancer serves has no healthy target, with
cross-zone load balancing off.

With cross-zone off, the load balancer's node in each zone only sends to targets in its own
zone. DNS hands clients the node of every enabled zone, so the share of requests that lands
on a node with no healthy target fails (503/504 on a Classic LB, reset or timeout on an NLB)
while the rest succeed. An NLB drops such a zone's address from DNS once its health checks
see it, but clients that cached the address keep failing. An ALB always balances across
zones, so it is never affected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from checks import kube, topology
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import LoadBalancer, Snapshot, TargetGroup
from checks.topology import LbTarget, LbZones

logger = logging.getLogger(__name__)

CODE = "NO_HEALTHY_TARGET_IN_AZ"
SEVERITY = Severity.HIGH

CROSS_ZONE_KEY = "load_balancing.cross_zone.enabled"
CLASSIC_CROSS_ZONE_ANNOTATION = (
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"
)
LB_ATTRIBUTES_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-attributes"
TG_ATTRIBUTES_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
# Tag prefixes the AWS Load Balancer Controller puts on what it manages.
LBC_TAG_PREFIXES = ("elbv2.k8s.aws/", "service.k8s.aws/", "ingress.k8s.aws/")


@dataclass(frozen=True)
class _Group:
    """Targets that one listener sends to, and whether their group overrides cross-zone."""

    name: str
    targets: tuple[LbTarget, ...]
    cross_zone: bool
    tg_override: bool


def _groups(lb: LoadBalancer) -> list[_Group]:
    if lb.type == "classic":
        return [_Group(lb.name, tuple(topology.lb_targets(lb)), lb.cross_zone, False)]
    targets = topology.lb_targets(lb)
    groups: list[_Group] = []
    for tg in lb.target_groups:
        own = _tg_cross_zone(tg)
        groups.append(
            _Group(
                tg.name,
                tuple(t for t in targets if t.group == tg.name),
                lb.cross_zone if own is None else own,
                own is not None,
            )
        )
    return groups


def _tg_cross_zone(tg: TargetGroup) -> bool | None:
    """A target group's own cross-zone setting; ``None`` means it follows the load balancer."""
    raw = tg.attributes.get(CROSS_ZONE_KEY, "").lower()
    return {"true": True, "false": False}.get(raw)


def _merged(existing: str, key: str, value: str) -> str:
    pairs = [p.strip() for p in existing.split(",") if p.strip() and "=" in p]
    kept = [p for p in pairs if p.split("=", 1)[0].strip() != key]
    return ",".join([*kept, f"{key}={value}"])


def _fixes(snapshot: Snapshot, lb: LoadBalancer, tg_override: bool) -> tuple[Fix, ...]:
    obj = topology.configuring_object(lb, snapshot)
    if obj is None:
        return ()
    # kube.annotations is shadowed by the __future__ import under mypy: read metadata here.
    raw = kube.meta(obj).get("annotations") or {}
    notes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    by_lbc = any(k.startswith(LBC_TAG_PREFIXES) for k in lb.tags)
    if lb.type == "classic" or not by_lbc:
        key, value = CLASSIC_CROSS_ZONE_ANNOTATION, "true"
    else:
        key = TG_ATTRIBUTES_ANNOTATION if tg_override else LB_ATTRIBUTES_ANNOTATION
        value = _merged(notes.get(key, ""), CROSS_ZONE_KEY, "true")
    return (
        fix(
            f"Turn on cross-zone load balancing for {lb.name}",
            "shell",
            "zones_cross_zone.sh.j2",
            kind=str(obj.get("kind", "")).lower(),
            namespace=kube.namespace(obj),
            name=kube.name(obj),
            key=key,
            value=value,
        ),
    )


def _zone_lines(
    snapshot: Snapshot, lb: LoadBalancer, zones: LbZones, group: _Group
) -> tuple[list[str], list[str], list[str]]:
    """(zones with no healthy target, evidence lines, zones that could not be judged)."""
    healthy: dict[str, list[str]] = {z: [] for z in zones.zones}
    sick: dict[str, list[str]] = {z: [] for z in zones.zones}
    unplaced: list[str] = []
    for target in group.targets:
        place = topology.target_place(snapshot, target)
        state = target.health.state + (f" ({target.health.reason})" if target.health.reason else "")
        if not place.zone:
            if target.health.healthy:
                unplaced.append(f"{place.label}: {place.why}")
            continue
        for zone in zones.zones if place.zone == topology.ALL_ZONES else [place.zone]:
            if zone not in healthy:
                continue
            if target.health.healthy:
                healthy[zone].append(place.label)
            else:
                sick[zone].append(f"{place.label} {state}")
    empty = [z for z in zones.zones if not healthy[z]]
    lines: list[str] = []
    for zone in zones.zones:
        subnets = ", ".join(topology.subnet_label(s) for s in zones.subnets_by_zone[zone])
        total = len(healthy[zone]) + len(sick[zone])
        line = f"{group.name}, zone {zone} ({subnets}): {len(healthy[zone])} healthy of {total}"
        if sick[zone]:
            line += f"; {', '.join(sick[zone])}"
        lines.append(line)
    unsure = empty if unplaced else []
    lines.extend(f"could not place healthy target {u}" for u in unplaced)
    return [z for z in empty if z not in unsure], lines, unsure


def _judge_lb(snapshot: Snapshot, lb: LoadBalancer) -> Finding:
    resource = f"{lb.type} load balancer {lb.name}"
    if lb.type == "application":
        return Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"{lb.name} is an Application Load Balancer: it always balances across zones.",
            resource,
        )
    attrs_gap = topology.find_gap(snapshot, "lb-attributes", lb.name)
    if attrs_gap is not None:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not read whether {lb.name} balances across zones.",
            resource,
            (attrs_gap.reason,),
        )
    groups = _groups(lb)
    if all(g.cross_zone for g in groups):
        return Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"{lb.name} balances across zones: each zone's node can use every healthy target.",
            resource,
        )
    gaps = [topology.find_gap(snapshot, "target-health", g.name) for g in groups if not g.targets]
    health_gap = next((g for g in gaps if g is not None), None)
    if health_gap is not None:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not read the target health of {lb.name}.",
            resource,
            (health_gap.reason,),
        )
    zones = topology.lb_zones(snapshot, lb)
    if zones.missing or not zones.zones:
        why = (
            topology.missing_subnets(snapshot, lb, zones.missing)
            if zones.missing
            else f"{lb.name} lists no subnets"
        )
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not tell the zones of {lb.name}.",
            resource,
            (why,),
        )

    failing: list[str] = []
    unsure: list[str] = []
    evidence: list[str] = []
    override = False
    for group in groups:
        if group.cross_zone:
            evidence.append(f"{group.name} balances across zones (target group setting)")
            continue
        empty, lines, doubtful = _zone_lines(snapshot, lb, zones, group)
        evidence.extend(lines)
        failing.extend(f"{z} ({group.name})" if lb.type != "classic" else z for z in empty)
        unsure.extend(doubtful)
        override = override or (group.tg_override and bool(empty))
    evidence.insert(0, "cross-zone load balancing is off")
    if failing:
        logger.debug("%s: zones with no healthy target: %s", lb.name, failing)
        return Finding(
            CODE,
            Status.FAIL,
            SEVERITY,
            f"{lb.name} serves {', '.join(failing)} with no healthy target and cross-zone "
            "load balancing off: requests its node there receives fail.",
            resource,
            (
                *evidence,
                "either turn on cross-zone load balancing, or run healthy pods in every zone "
                "the load balancer serves (topologySpreadConstraints on the zone label)",
            ),
            _fixes(snapshot, lb, override),
        )
    if unsure:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not tell whether {', '.join(sorted(set(unsure)))} of {lb.name} has a "
            "healthy target.",
            resource,
            tuple(evidence),
        )
    return Finding(
        CODE,
        Status.PASS,
        SEVERITY,
        f"Every zone {lb.name} serves has a healthy target.",
        resource,
        tuple(evidence),
    )


def judge(snapshot: Snapshot) -> list[Finding]:
    return [_judge_lb(snapshot, lb) for lb in snapshot.load_balancers]


CHECK = Check(
    name="no_healthy_target_in_az",
    codes=(CODE,),
    severity=SEVERITY,
    title="A served zone without a healthy target",
    explains=(
        "With cross-zone load balancing off, a zone's load balancer node only uses targets in "
        "its zone: with none healthy there, the requests DNS sends to it fail."
    ),
    judge=judge,
    templates=("zones_cross_zone.sh.j2",),
    step="load balancer",
)
