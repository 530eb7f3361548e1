"""NACL_BLOCKS_TRAFFIC and NACL_BLOCKS_EPHEMERAL: a network ACL drops the load balancer's traffic.

Network ACLs are stateless: the request and its reply are judged separately. A subnet that
lets the load balancer reach a target port but lets no reply out to the load balancer's
ephemeral ports (1024-65535) makes every connection hang until it times out, health checks
included, so the load balancer answers 504 (or marks every target unhealthy).

Evaluated for each load balancer, per zone: clients to the listener and the replies back,
then the load balancer's subnets to each target's subnet on the traffic and health-check
ports and the replies back. Behind a NodePort of a Service with ``externalTrafficPolicy:
Cluster``, kube-proxy sends part of the connections on from the receiving node's subnet to a
pod in another subnet, on the pod's port: that leg and its replies are judged too. Traffic
inside one subnet crosses no ACL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from checks import netpath
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.netpath import (
    CLIENT_HOP,
    EPHEMERAL_HI,
    EPHEMERAL_LO,
    FORWARD_HOP,
    PROXY_HOP,
    ClientFlow,
    DeniedRange,
    Flow,
    ProxyFlow,
)
from checks.registry import Check
from checks.snapshot import NetworkAcl, Snapshot, Subnet

logger = logging.getLogger(__name__)

TRAFFIC = "NACL_BLOCKS_TRAFFIC"
EPHEMERAL = "NACL_BLOCKS_EPHEMERAL"
SEVERITY = Severity.CRITICAL


@dataclass(frozen=True)
class _Block:
    """One ACL direction denying part of one flow; ``allow_*`` is the smallest fix."""

    code: str
    acl: NetworkAcl
    egress: bool
    line: str
    denied: tuple[DeniedRange, ...]
    protocol: str
    allow_cidr: str
    allow_lo: int
    allow_hi: int
    lb_name: str


@dataclass
class _Result:
    blocks: list[_Block]
    missing: list[str]
    evaluated: list[str]


def _port_text(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _rule_text(gap: DeniedRange) -> str:
    text = netpath.console_acl_rule(gap.entry)
    return text + " (no rule allows it; implicit deny)" if gap.entry is None else text


def _check(
    result: _Result,
    code: str,
    hop: str,
    acl: NetworkAcl | None,
    subnet: Subnet,
    egress: bool,
    peer: netpath.Peer,
    protocol: str,
    ports: tuple[int, int],
    what: str,
    allow_cidr: str,
    lb_name: str,
    reading: Literal["all", "any"] = "all",
) -> None:
    if acl is None:
        return
    lo, hi = ports
    gaps = netpath.acl_port_range_gaps(acl, egress, protocol, peer, lo, hi, reading)
    if not gaps:
        return
    way = "outbound to" if egress else "inbound from"
    # A population of clients is shown as the range it was derived from.
    shown = peer if isinstance(peer, str) else allow_cidr
    proto = netpath.protocol_name(protocol)
    for gap in gaps:
        line = (
            f"{hop}, zone {subnet.az}: {acl.id} on {netpath.subnet_label(subnet)} "
            f"{way} {shown} {proto} {gap.ports} ({what}) is denied by {_rule_text(gap)}"
        )
        result.blocks.append(
            _Block(code, acl, egress, line, (gap,), protocol, allow_cidr, lo, hi, lb_name)
        )


def _acl(snapshot: Snapshot, subnet: Subnet, result: _Result) -> tuple[bool, NetworkAcl | None]:
    acl, why = netpath.effective_acl(snapshot, subnet)
    if why:
        result.missing.append(why)
        return False, None
    return True, acl


def _acl_label(acl: NetworkAcl | None) -> str:
    return acl.id if acl else "no ACL"


def _judge_flow(snapshot: Snapshot, flow: Flow, result: _Result) -> None:
    target, lb_subnet = flow.target, flow.lb_subnet
    if target.subnet is None:
        result.missing.append(
            f"the subnet of {target.label} is not among the subnets AWS lists for the VPC"
        )
        return
    where = f"{lb_subnet.id} ({lb_subnet.az}) -> {target.subnet.id} ({target.subnet.az})"
    if flow.same_subnet:
        result.evaluated.append(f"{FORWARD_HOP}: {where}: one subnet, no network ACL crossed")
        return
    ok_lb, lb_acl = _acl(snapshot, lb_subnet, result)
    ok_target, target_acl = _acl(snapshot, target.subnet, result)
    if not (ok_lb and ok_target):
        return
    # ACLs act on subnets and pods move within theirs: judge the target's whole subnet.
    targets = target.subnet.cidr
    what = f"{' and '.join(flow.purposes)} to targets in {target.subnet.id}"
    reading: Literal["all", "any"] = "any" if flow.source.clients else "all"
    port = (flow.port, flow.port)
    ephemeral = (EPHEMERAL_LO, EPHEMERAL_HI)
    source = flow.source.cidr
    peers = netpath.population(source) if flow.source.clients else source
    name = flow.lb.name

    _check(result, TRAFFIC, FORWARD_HOP, lb_acl, lb_subnet, True, targets, flow.protocol,
           port, what, targets, name)  # fmt: skip
    _check(result, TRAFFIC, FORWARD_HOP, target_acl, target.subnet, False, peers,
           flow.protocol, port, what, source, name, reading)  # fmt: skip
    replies = f"replies from port {flow.port} to {flow.source.description}"
    _check(result, EPHEMERAL, FORWARD_HOP, target_acl, target.subnet, True, peers,
           flow.protocol, ephemeral, replies, source, name, reading)  # fmt: skip
    replies = f"replies from {target.subnet.id} port {flow.port}"
    _check(result, EPHEMERAL, FORWARD_HOP, lb_acl, lb_subnet, False, targets, flow.protocol,
           ephemeral, replies, targets, name)  # fmt: skip
    result.evaluated.append(
        f"{FORWARD_HOP}: {where} [{_acl_label(lb_acl)} -> {_acl_label(target_acl)}] "
        f"{netpath.protocol_name(flow.protocol)} {flow.port} from {source}, "
        f"replies {EPHEMERAL_LO}-{EPHEMERAL_HI}"
    )


def _judge_client_flow(snapshot: Snapshot, flow: ClientFlow, result: _Result) -> None:
    ok, acl = _acl(snapshot, flow.lb_subnet, result)
    if not ok:
        return
    clients, name = flow.client_cidr, flow.lb.name
    peers = netpath.population(clients)
    what = f"listener {flow.port} of {name}"
    # Denying some clients is a policy; only a listener no client can reach is a fault.
    _check(result, TRAFFIC, CLIENT_HOP, acl, flow.lb_subnet, False, peers, flow.protocol,
           (flow.port, flow.port), what, clients, name, "any")  # fmt: skip
    _check(result, EPHEMERAL, CLIENT_HOP, acl, flow.lb_subnet, True, peers, flow.protocol,
           (EPHEMERAL_LO, EPHEMERAL_HI), f"replies of {name} to clients", clients, name,
           "any")  # fmt: skip
    result.evaluated.append(
        f"{CLIENT_HOP}: {clients} -> {flow.lb_subnet.id} ({flow.lb_subnet.az}) "
        f"[{_acl_label(acl)}] "
        f"{netpath.protocol_name(flow.protocol)} {flow.port}, replies {EPHEMERAL_LO}-{EPHEMERAL_HI}"
    )


def _judge_proxy_flow(snapshot: Snapshot, flow: ProxyFlow, result: _Result) -> None:
    node_subnet, pod_subnet = flow.node.subnet, flow.pod.subnet
    if node_subnet is None or pod_subnet is None:
        missing = flow.node if node_subnet is None else flow.pod
        result.missing.append(
            f"the subnet of {missing.label} is not among the subnets AWS lists for the VPC"
        )
        return
    where = f"{node_subnet.id} ({node_subnet.az}) -> {pod_subnet.id} ({pod_subnet.az})"
    if node_subnet.id == pod_subnet.id:
        result.evaluated.append(f"{PROXY_HOP}: {where}: one subnet, no network ACL crossed")
        return
    ok_node, node_acl = _acl(snapshot, node_subnet, result)
    ok_pod, pod_acl = _acl(snapshot, pod_subnet, result)
    if not (ok_node and ok_pod):
        return
    # Nodes and pods take any address of their subnets: judge the whole subnets.
    nodes, pods = node_subnet.cidr, pod_subnet.cidr
    port = (flow.port, flow.port)
    ephemeral = (EPHEMERAL_LO, EPHEMERAL_HI)
    name = flow.lb.name
    what = (
        f"{' and '.join(flow.purposes)} of {name} from NodePort {flow.node_port}, forwarded "
        f"to pods in {pod_subnet.id}"
    )

    _check(result, TRAFFIC, PROXY_HOP, node_acl, node_subnet, True, pods, flow.protocol,
           port, what, pods, name)  # fmt: skip
    _check(result, TRAFFIC, PROXY_HOP, pod_acl, pod_subnet, False, nodes, flow.protocol,
           port, what, nodes, name)  # fmt: skip
    replies = f"replies from pod port {flow.port} to nodes in {node_subnet.id}"
    _check(result, EPHEMERAL, PROXY_HOP, pod_acl, pod_subnet, True, nodes, flow.protocol,
           ephemeral, replies, nodes, name)  # fmt: skip
    replies = f"replies from pods in {pod_subnet.id} port {flow.port}"
    _check(result, EPHEMERAL, PROXY_HOP, node_acl, node_subnet, False, pods, flow.protocol,
           ephemeral, replies, pods, name)  # fmt: skip
    result.evaluated.append(
        f"{PROXY_HOP}: {where} [{_acl_label(node_acl)} -> {_acl_label(pod_acl)}] "
        f"{netpath.protocol_name(flow.protocol)} {flow.port} from {nodes}, "
        f"replies {EPHEMERAL_LO}-{EPHEMERAL_HI}"
    )


def _tf_name(acl_id: str, egress: bool, rule_number: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", acl_id.lower()).strip("_")
    return f"{slug}_{'egress' if egress else 'ingress'}_{rule_number}"


def _fixes(snapshot: Snapshot, blocks: Sequence[_Block]) -> tuple[Fix, ...]:
    """Allow entries placed just before the first deny that decides, one per CIDR and ports."""
    acl, egress = blocks[0].acl, blocks[0].egress
    explicit = [g.rule_number for b in blocks for g in b.denied if g.rule_number is not None]
    before = min(explicit) if explicit else None
    used = {e.rule_number for e in netpath.ordered_entries(acl, egress)}
    wanted = dict.fromkeys((b.protocol, b.allow_cidr, b.allow_lo, b.allow_hi) for b in blocks)
    entries: list[dict[str, object]] = []
    for protocol, cidr, lo, hi in wanted:
        number = netpath.free_rule_number(used, before)
        if number is None:
            logger.debug("no free rule number in %s before %s", acl.id, before)
            continue
        used.add(number)
        entries.append(
            {
                "acl_id": acl.id,
                "rule_number": number,
                "egress": egress,
                "protocol": netpath.protocol_name(protocol),
                "port_range": f"From={lo},To={hi}",
                "from_port": lo,
                "to_port": hi,
                "cidr": cidr,
                "tf_name": _tf_name(acl.id, egress, number),
            }
        )
    if not entries:
        return ()
    way = "outbound" if egress else "inbound"
    return (
        fix(f"Allow it {way} in {acl.id} (AWS CLI)", "shell", "nacl_entry.sh.j2",
            entries=entries, region=snapshot.region),
        fix(f"Allow it {way} in {acl.id} (Terraform)", "hcl", "nacl_rule.tf.j2",
            entries=entries),
    )  # fmt: skip


def _summary(code: str, blocks: Sequence[_Block]) -> str:
    acl, egress = blocks[0].acl, blocks[0].egress
    name = f" ({acl.name})" if acl.name else ""
    lbs = ", ".join(dict.fromkeys(b.lb_name for b in blocks))
    ports = ", ".join(dict.fromkeys(g.ports for b in blocks for g in b.denied))
    way = "outbound" if egress else "inbound"
    if code == EPHEMERAL:
        return (
            f"Network ACL {acl.id}{name} drops {way} return traffic of {lbs} on ephemeral "
            f"ports {ports}: connections hang until they time out."
        )
    return f"Network ACL {acl.id}{name} drops {way} traffic of {lbs} on port(s) {ports}."


def _findings(snapshot: Snapshot, result: _Result, code: str) -> list[Finding]:
    groups: dict[tuple[str, bool], list[_Block]] = {}
    for block in result.blocks:
        if block.code == code:
            groups.setdefault((block.acl.id, block.egress), []).append(block)
    findings = [
        Finding(
            code,
            Status.FAIL,
            SEVERITY,
            _summary(code, blocks),
            blocks[0].acl.id,
            netpath.shorten(b.line for b in blocks),
            _fixes(snapshot, blocks),
        )
        for blocks in groups.values()
    ]
    lbs = ", ".join(lb.name for lb in snapshot.load_balancers)
    if result.missing:
        findings.append(
            Finding(
                code,
                Status.UNKNOWN,
                SEVERITY,
                "Could not evaluate every network ACL on the path.",
                lbs,
                tuple(dict.fromkeys(result.missing)),
            )
        )
    elif not findings:
        what = "return traffic on ports 1024-65535" if code == EPHEMERAL else "traffic"
        findings.append(
            Finding(
                code,
                Status.PASS,
                SEVERITY,
                f"The network ACLs on the path let the {what} through.",
                lbs,
                netpath.shorten(result.evaluated),
            )
        )
    return findings


def judge(snapshot: Snapshot) -> list[Finding]:
    gap = snapshot.gap("network", "subnets", "network-acls")
    if gap is not None:
        evidence = (gap.reason, f"needs {gap.needs}") if gap.needs else (gap.reason,)
        return [
            Finding(code, Status.UNKNOWN, SEVERITY, "Could not read the network ACLs.",
                    gap.resource, evidence)
            for code in (TRAFFIC, EPHEMERAL)
        ]  # fmt: skip
    plan = netpath.plan(snapshot)
    result = _Result([], list(plan.missing), list(plan.notes))
    for client_flow in plan.client_flows:
        _judge_client_flow(snapshot, client_flow, result)
    for flow in plan.flows:
        _judge_flow(snapshot, flow, result)
    for proxy_flow in plan.proxy_flows:
        _judge_proxy_flow(snapshot, proxy_flow, result)
    logger.debug("network ACLs: %d blocks, %d gaps", len(result.blocks), len(result.missing))
    return [*_findings(snapshot, result, TRAFFIC), *_findings(snapshot, result, EPHEMERAL)]


CHECK = Check(
    name="network_acls",
    codes=(TRAFFIC, EPHEMERAL),
    severity=SEVERITY,
    title="Network ACLs on the load balancer's path",
    explains=(
        "Network ACLs are stateless: a denied request or a denied reply on the ephemeral ports "
        "leaves the connection hanging until the load balancer gives up with a 504 and marks "
        "the target unhealthy."
    ),
    judge=judge,
    templates=("nacl_entry.sh.j2", "nacl_rule.tf.j2"),
    step="network",
)
