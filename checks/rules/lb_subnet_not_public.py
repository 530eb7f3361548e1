"""LB_SUBNET_NOT_PUBLIC: an internet-facing load balancer sits in a subnet with no internet
route.

Its node in that subnet gets a public address in DNS, but replies have no way back to the
internet: every client that resolves to that node times out, so a share of requests fail
while the rest succeed.
"""

from __future__ import annotations

import logging

from checks import kube, topology
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import LoadBalancer, Snapshot, Subnet

logger = logging.getLogger(__name__)

CODE = "LB_SUBNET_NOT_PUBLIC"
SEVERITY = Severity.HIGH
# The tag the AWS Load Balancer Controller and the in-tree controller read to pick public
# subnets for internet-facing load balancers.
PUBLIC_ROLE_TAG = "kubernetes.io/role/elb"


def _fixes(snapshot: Snapshot, lb: LoadBalancer, private: list[Subnet]) -> tuple[Fix, ...]:
    replacement: dict[str, str] = {}
    for subnet in private:
        choices = [
            s for s in topology.candidate_subnets(snapshot, lb, subnet.az)
            if s.id not in lb.subnet_ids
        ]  # fmt: skip
        if choices:
            replacement[subnet.id] = choices[0].id
    fixes: list[Fix] = []
    obj = topology.configuring_object(lb, snapshot)
    if replacement and obj is not None:
        kept = [s for s in lb.subnet_ids if s not in {p.id for p in private}]
        subnets = [*kept, *replacement.values()]
        fixes.append(
            fix(
                f"Move {lb.name} to public subnets",
                "shell",
                "subnet_public.sh.j2",
                kind=str(obj.get("kind", "")).lower(),
                namespace=kube.namespace(obj),
                name=kube.name(obj),
                key=topology.subnets_annotation(kube.ref(obj)),
                subnets=",".join(subnets),
                tag_subnets=sorted(replacement.values()),
                tag=PUBLIC_ROLE_TAG,
                region=snapshot.region,
            )
        )
    return tuple(fixes)


def _judge_lb(snapshot: Snapshot, lb: LoadBalancer) -> Finding:
    resource = f"{lb.type} load balancer {lb.name}"
    if lb.scheme != "internet-facing":
        return Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"{lb.name} is {lb.scheme or 'not internet-facing'}: its subnets need no internet "
            "route.",
            resource,
        )
    routes_gap = snapshot.gap("route-tables")
    if routes_gap is not None:
        # Without the route tables every subnet would look private.
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not read whether the subnets of {lb.name} route to an internet gateway.",
            resource,
            (routes_gap.reason,),
        )
    zones = topology.lb_zones(snapshot, lb)
    subnets = [s for group in zones.subnets_by_zone.values() for s in group]
    private = sorted((s for s in subnets if not s.public), key=lambda s: s.id)
    if zones.missing and not private:
        return Finding(
            CODE,
            Status.UNKNOWN,
            SEVERITY,
            f"Could not read the route of subnet(s) {', '.join(zones.missing)} of {lb.name}.",
            resource,
            (topology.missing_subnets(snapshot, lb, zones.missing),),
        )
    if not private:
        return Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"Every subnet of {lb.name} routes to an internet gateway.",
            resource,
            (", ".join(f"{topology.subnet_label(s)} in {s.az}" for s in subnets),),
        )
    evidence = [
        f"{topology.subnet_label(s)} ({s.cidr}) in {s.az} has no route to an internet gateway"
        for s in private
    ]
    public = [s for s in subnets if s.public]
    if public:
        evidence.append(
            f"public: {', '.join(f'{topology.subnet_label(s)} in {s.az}' for s in public)}; "
            f"clients that resolve {lb.name} to a node in a private subnet time out"
        )
    else:
        evidence.append(f"no subnet of {lb.name} is public: no client can reach it")
    for subnet in private:
        if not [
            s for s in topology.candidate_subnets(snapshot, lb, subnet.az)
            if s.id not in lb.subnet_ids
        ]:  # fmt: skip
            evidence.append(
                f"the VPC has no public subnet in {subnet.az} to move to: add a route to an "
                f"internet gateway in the route table of {subnet.id}, or create a public subnet"
            )
    if zones.missing:
        evidence.append(f"subnet(s) {', '.join(zones.missing)} could not be read")
    return Finding(
        CODE,
        Status.FAIL,
        SEVERITY if public else Severity.CRITICAL,
        f"Internet-facing {lb.name} sits in {len(private)} subnet(s) with no internet route: "
        f"{', '.join(s.id for s in private)}.",
        resource,
        tuple(evidence),
        _fixes(snapshot, lb, private),
    )


def judge(snapshot: Snapshot) -> list[Finding]:
    return [_judge_lb(snapshot, lb) for lb in snapshot.load_balancers]


CHECK = Check(
    name="lb_subnet_not_public",
    codes=(CODE,),
    severity=SEVERITY,
    title="Internet-facing load balancer in a private subnet",
    explains=(
        "A load balancer node in a subnet with no internet route cannot answer clients: "
        "requests that DNS sends to it time out."
    ),
    judge=judge,
    templates=("subnet_public.sh.j2",),
    step="network",
)
