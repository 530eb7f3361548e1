"""SG_BLOCKS_TRAFFIC: a security group drops the load balancer's traffic or its health checks.

A load balancer's packets to a node or pod need two yeses: the load balancer's group must let
them out and the target's groups must let them in, from the load balancer's group or from
every address of its subnets (or from the clients, where an NLB keeps the client's address).
A missing yes silently drops the SYN: connections and health checks time out, targets turn
unhealthy and clients see 504s. Groups are stateful, so replies need no rule.

A pod selected by a SecurityGroupPolicy is judged by the policy's groups. Behind a NodePort
of a Service with ``externalTrafficPolicy: Cluster``, the node that receives a connection
hands it to a pod that may run on another node: the node's groups must let it out and the
pod's groups (usually the nodes' own, through a rule naming the group itself) let it in, or
the share of connections sent across nodes times out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from checks import netpath
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.netpath import (
    CLIENT_HOP,
    FORWARD_HOP,
    PROXY_HOP,
    ClientFlow,
    Flow,
    ProxyFlow,
    SgCoverage,
)
from checks.registry import Check
from checks.snapshot import SecurityGroup, Snapshot

logger = logging.getLogger(__name__)

CODE = "SG_BLOCKS_TRAFFIC"
SEVERITY = Severity.CRITICAL
# Collector areas whose loss hides the groups on the path: the VPC read as a whole and its
# subnets (the load balancer's sources), the groups themselves, the instances that carry the
# targets' groups, and what says which pods carry groups of their own. Network ACLs and
# route tables play no part.
_NEEDED_AREAS = (
    "network",
    "subnets",
    "security-groups",
    "instances",
    "kubernetes:securitygrouppolicies",
    "kubernetes:serviceaccounts",
)


@dataclass(frozen=True)
class _Block:
    """A group that must gain one rule; ``peer_group`` or ``cidr`` is what it must admit."""

    group: SecurityGroup
    egress: bool
    protocol: str
    port: int
    peer_group: str
    cidr: str
    line: str
    lb_name: str
    zone: str = ""  # the zone of the load balancer's (or node's) side of the blocked hop
    # Prefix lists a rule on the port already admits through: adding ``cidr_for_lists`` to
    # one of them is the other way to let the traffic in.
    prefix_lists: tuple[str, ...] = ()
    cidr_for_lists: str = ""


@dataclass
class _Result:
    blocks: list[_Block]
    missing: list[str]
    evaluated: list[str]


def _groups(
    snapshot: Snapshot, ids: Sequence[str], owner: str, result: _Result
) -> list[SecurityGroup] | None:
    absent = [i for i in ids if i not in snapshot.security_groups]
    if absent:
        result.missing.append(
            f"security group(s) {', '.join(absent)} of {owner} were not found: AWS did not "
            "describe them"
        )
        return None
    return [snapshot.security_groups[i] for i in ids]


def _ids(groups: Sequence[SecurityGroup]) -> str:
    return ", ".join(g.id for g in groups)


def _unevaluated(snapshot: Snapshot, coverage: SgCoverage, what: str, result: _Result) -> bool:
    """A prefix list might admit what nothing else does: its entries are not known."""
    if coverage.prefix_lists:
        why = [
            f"{g.reason}{f' (needs {g.needs})' if g.needs else ''}"
            for g in snapshot.gaps
            if g.area == "prefix-lists" and g.resource in coverage.prefix_lists
        ]
        result.missing.append(
            f"{what} is admitted by no rule, unless prefix list(s) "
            f"{', '.join(coverage.prefix_lists)} hold it; their entries could not be read"
            + (f": {'; '.join(dict.fromkeys(why))}" if why else "")
        )
        return True
    return False


def _listed(snapshot: Snapshot, coverage: SgCoverage) -> str:
    """What the prefix lists that were read hold, for the evidence of a block."""
    held = [
        f"prefix list {pl} holds {', '.join(snapshot.prefix_lists.get(pl, ())) or 'nothing'}"
        for pl in coverage.consulted
    ]
    return f" ({'; '.join(held)})" if held else ""


def _judge_flow(snapshot: Snapshot, flow: Flow, result: _Result) -> None:
    lb, target, source = flow.lb, flow.target, flow.source
    proto = netpath.protocol_name(flow.protocol)
    purposes = " and ".join(flow.purposes)
    where = f"{FORWARD_HOP}, zone {flow.lb_subnet.az}"
    target_groups = _groups(snapshot, target.group_ids, target.label, result)
    lb_groups = _groups(snapshot, lb.security_group_ids, f"load balancer {lb.name}", result)
    if target_groups is None or lb_groups is None:
        return
    if not target_groups:
        result.missing.append(f"no security group is known for {target.label}")
        return

    if lb_groups:
        peer = target.address or (target.subnet.cidr if target.subnet else "")
        out = netpath.sg_coverage(
            lb_groups,
            "egress",
            proto,
            peer or None,
            target.group_ids,
            flow.port,
            snapshot.prefix_lists,
        )
        what = f"{purposes} from {lb.name} to {target.label} on {proto} {flow.port}"
        if not out.full and not _unevaluated(snapshot, out, what, result):
            line = (
                f"{where}: no egress rule of {_ids(lb_groups)} (load balancer {lb.name}) admits "
                f"{purposes} to {target.label} on {proto} {flow.port}{_listed(snapshot, out)}"
            )
            result.blocks.append(
                _Block(
                    lb_groups[0], True, proto, flow.port, target.group_ids[0], "", line,
                    lb.name, flow.lb_subnet.az,
                )
            )  # fmt: skip

    peers = netpath.population(source.cidr) if source.clients else source.cidr
    into = netpath.sg_coverage(
        target_groups, "ingress", proto, peers, source.group_ids, flow.port, snapshot.prefix_lists
    )
    # Some clients kept out is a policy; no client let in is the fault.
    admitted = into.some if source.clients else into.full
    sender = " or ".join(
        [source.description, *(f"group {g}" for g in source.group_ids)]
    )  # fmt: skip
    what = f"{purposes} to {target.label} on {proto} {flow.port} from {sender}"
    if not admitted and not _unevaluated(snapshot, into, what, result):
        partly = f" (only part of it: {'; '.join(into.via)})" if into.via else ""
        line = (
            f"{where}: no ingress rule of {_ids(target_groups)} on {target.label} admits "
            f"{purposes} on {proto} {flow.port} from {sender}{partly}{_listed(snapshot, into)}"
        )
        peer_group = lb.security_group_ids[0] if lb.security_group_ids else ""
        listed = into.consulted if not source.clients else ()
        result.blocks.append(
            _Block(
                target_groups[0], False, proto, flow.port, peer_group,
                "" if peer_group else source.cidr, line, lb.name,
                flow.lb_subnet.az, listed, source.cidr,
            )
        )  # fmt: skip
    result.evaluated.append(
        f"{FORWARD_HOP}: {lb.name} [{_ids(lb_groups) or 'no group'}] -> {target.label} "
        f"[{_ids(target_groups)}] {proto} {flow.port} ({purposes}) from {sender}"
    )


def _judge_client_flow(snapshot: Snapshot, flow: ClientFlow, result: _Result) -> None:
    lb = flow.lb
    if not lb.security_group_ids:
        result.evaluated.append(f"{CLIENT_HOP}: {lb.name} has no security group: open")
        return
    groups = _groups(snapshot, lb.security_group_ids, f"load balancer {lb.name}", result)
    if groups is None:
        return
    proto = netpath.protocol_name(flow.protocol)
    clients = netpath.population(flow.client_cidr)
    into = netpath.sg_coverage(
        groups, "ingress", proto, clients, (), flow.port, snapshot.prefix_lists
    )
    # Inside the VPC, clients may be admitted by their own groups, which we cannot see.
    by_group = lb.scheme != "internet-facing" and any(
        rule.group_ids and netpath.sg_rule_matches(rule, proto, flow.port)
        for group in groups
        for rule in group.ingress
    )
    what = f"clients {flow.client_cidr} to listener {flow.port} of {lb.name}"
    if not (into.some or by_group) and not _unevaluated(snapshot, into, what, result):
        line = (
            f"{CLIENT_HOP}, zone {flow.lb_subnet.az}: no ingress rule of {_ids(groups)} admits "
            f"clients {flow.client_cidr} on {proto} {flow.port}{_listed(snapshot, into)}"
        )
        result.blocks.append(
            _Block(
                groups[0],
                False,
                proto,
                flow.port,
                "",
                flow.client_cidr,
                line,
                lb.name,
                flow.lb_subnet.az,
            )
        )
        return
    note = "" if into.full else f" (admits part of it: {'; '.join(into.via) or 'by group'})"
    result.evaluated.append(
        f"{CLIENT_HOP}: clients {flow.client_cidr} admitted on {proto} {flow.port} by "
        f"{_ids(groups)}{note}"
    )


def _judge_proxy_flow(snapshot: Snapshot, flow: ProxyFlow, result: _Result) -> None:
    node, pod, lb = flow.node, flow.pod, flow.lb
    proto = netpath.protocol_name(flow.protocol)
    purposes = " and ".join(flow.purposes)
    where = f"{PROXY_HOP}, zone {node.zone} -> {pod.zone}"
    carried = f"{purposes} of {lb.name} that {node.label} received on NodePort {flow.node_port}"
    node_groups = _groups(snapshot, node.group_ids, node.label, result)
    pod_groups = _groups(snapshot, pod.group_ids, pod.label, result)
    if node_groups is None or pod_groups is None:
        return
    if not pod_groups or not node_groups:
        result.missing.append(f"no security group is known for {pod.label} or {node.label}")
        return

    out = netpath.sg_coverage(
        node_groups, "egress", proto, pod.address, pod.group_ids, flow.port, snapshot.prefix_lists
    )
    what = f"{carried}, forwarded to {pod.label} on {proto} {flow.port}"
    if not out.full and not _unevaluated(snapshot, out, what, result):
        line = (
            f"{where}: no egress rule of {_ids(node_groups)} on {node.label} lets out {carried}, "
            f"forwarded to {pod.label} on {proto} {flow.port}{_listed(snapshot, out)}"
        )
        result.blocks.append(
            _Block(
                node_groups[0],
                True,
                proto,
                flow.port,
                pod.group_ids[0],
                "",
                line,
                lb.name,
                node.zone,
            )
        )

    # The node sends from its own address; nodes come and go within their subnet.
    peer = node.subnet.cidr if node.subnet else node.address
    into = netpath.sg_coverage(
        pod_groups, "ingress", proto, peer, node.group_ids, flow.port, snapshot.prefix_lists
    )
    sender = f"{node.label} [{_ids(node_groups)}] in {peer}"
    what = f"{carried}, forwarded to {pod.label} on {proto} {flow.port} from {sender}"
    if not into.full and not _unevaluated(snapshot, into, what, result):
        partly = f" (only part of it: {'; '.join(into.via)})" if into.via else ""
        line = (
            f"{where}: no ingress rule of {_ids(pod_groups)} on {pod.label} admits {carried}, "
            f"forwarded on {proto} {flow.port} from {sender}{partly}{_listed(snapshot, into)}"
        )
        result.blocks.append(
            _Block(
                pod_groups[0],
                False,
                proto,
                flow.port,
                node.group_ids[0],
                "",
                line,
                lb.name,
                node.zone,
            )
        )
    result.evaluated.append(
        f"{PROXY_HOP}: {node.label} [{_ids(node_groups)}] -> {pod.label} [{_ids(pod_groups)}] "
        f"{proto} {flow.port} ({purposes} of {lb.name} on NodePort {flow.node_port})"
    )


def _fixes(snapshot: Snapshot, blocks: Sequence[_Block]) -> tuple[Fix, ...]:
    group, egress = blocks[0].group, blocks[0].egress
    rules: list[dict[str, object]] = []
    wanted = dict.fromkeys((b.protocol, b.port, b.peer_group) for b in blocks if b.peer_group)
    by_cidr: dict[tuple[str, int], list[str]] = {}
    for b in blocks:
        if not b.peer_group:
            by_cidr.setdefault((b.protocol, b.port), [])
            if b.cidr not in by_cidr[(b.protocol, b.port)]:
                by_cidr[(b.protocol, b.port)].append(b.cidr)
    slug = re.sub(r"[^a-z0-9]+", "_", group.id.lower()).strip("_")
    description = "eks504: load balancer path"
    for protocol, port, peer_group in wanted:
        permission = {
            "IpProtocol": protocol,
            "FromPort": port,
            "ToPort": port,
            "UserIdGroupPairs": [{"GroupId": peer_group, "Description": description}],
        }
        rules.append(_rule(group.id, egress, protocol, port, slug, permission, peer_group, []))
    for (protocol, port), cidrs in by_cidr.items():
        permission = {
            "IpProtocol": protocol,
            "FromPort": port,
            "ToPort": port,
            "IpRanges": [{"CidrIp": c, "Description": description} for c in cidrs],
        }
        rules.append(_rule(group.id, egress, protocol, port, slug, permission, "", cidrs))
    way = "egress" if egress else "ingress"
    return (
        fix(f"Add the missing {way} rule to {group.id} (AWS CLI)", "shell", "sg_authorize.sh.j2",
            rules=rules, region=snapshot.region),
        fix(f"Add the missing {way} rule to {group.id} (Terraform)", "hcl", "sg_rule.tf.j2",
            rules=rules),
        *_prefix_list_fixes(snapshot, blocks),
    )  # fmt: skip


def _prefix_list_fixes(snapshot: Snapshot, blocks: Sequence[_Block]) -> tuple[Fix, ...]:
    """Where a rule already admits the load balancer through a prefix list that lacks some of
    its subnets: the entries to add, which also fixes every other group using the list."""
    additions: dict[str, list[str]] = {}
    for block in blocks:
        for prefix_list in block.prefix_lists[:1]:
            cidrs = additions.setdefault(prefix_list, [])
            if block.cidr_for_lists and block.cidr_for_lists not in cidrs:
                cidrs.append(block.cidr_for_lists)
    return tuple(
        fix(
            f"Or add {', '.join(cidrs)} to prefix list {prefix_list} (every rule that uses the "
            "list gains it)",
            "shell",
            "prefix_list_add.sh.j2",
            prefix_list=prefix_list,
            cidrs=cidrs,
            region=snapshot.region,
            description="eks504: load balancer subnet",
        )
        for prefix_list, cidrs in additions.items()
        if cidrs
    )


def _rule(
    group_id: str,
    egress: bool,
    protocol: str,
    port: int,
    slug: str,
    permission: dict[str, object],
    peer_group: str,
    cidrs: list[str],
) -> dict[str, object]:
    peer = re.sub(r"[^a-z0-9]+", "_", (peer_group or "cidr").lower()).strip("_")
    return {
        "group_id": group_id,
        "egress": egress,
        "protocol": protocol,
        "from_port": port,
        "to_port": port,
        "peer_group": peer_group,
        "cidrs": cidrs,
        "permissions": json.dumps([permission], separators=(",", ":")),
        "description": "eks504: load balancer path",
        "tf_name": f"{slug}_{'egress' if egress else 'ingress'}_{protocol}_{port}_{peer}",
    }


def _summary(blocks: Sequence[_Block], zones_on_path: Sequence[str]) -> str:
    group, egress = blocks[0].group, blocks[0].egress
    lbs = ", ".join(dict.fromkeys(b.lb_name for b in blocks))
    ports = ", ".join(dict.fromkeys(f"{b.protocol} {b.port}" for b in blocks))
    way = "let out" if egress else "let in"
    zones = sorted({b.zone for b in blocks if b.zone})
    # Name the zones only where others pass: then the block is a part, not the whole path.
    label = "zone" if len(zones) == 1 else "zones"
    partial = zones and set(zones_on_path) - set(zones)
    where = f" from {label} {', '.join(zones)}" if partial else ""
    return (
        f"Security group {group.id} ({group.name}) does not {way} traffic of {lbs} on "
        f"{ports}{where}."
    )


def judge(snapshot: Snapshot) -> list[Finding]:
    lbs = ", ".join(lb.name for lb in snapshot.load_balancers)
    gaps = [g for g in snapshot.gaps if g.area in _NEEDED_AREAS]
    if gaps:
        evidence = [f"{g.area}: {g.reason}" for g in gaps]
        evidence.extend(f"needs {g.needs}" for g in gaps if g.needs)
        return [
            Finding(CODE, Status.UNKNOWN, SEVERITY, "Could not read the security groups.",
                    ", ".join(g.resource for g in gaps), tuple(dict.fromkeys(evidence)))
        ]  # fmt: skip
    plan = netpath.plan(snapshot)
    result = _Result([], list(plan.missing), list(plan.notes))
    for client_flow in plan.client_flows:
        _judge_client_flow(snapshot, client_flow, result)
    for flow in plan.flows:
        _judge_flow(snapshot, flow, result)
    for proxy_flow in plan.proxy_flows:
        _judge_proxy_flow(snapshot, proxy_flow, result)
    logger.debug("security groups: %d blocks, %d gaps", len(result.blocks), len(result.missing))

    zones_on_path = sorted({f.lb_subnet.az for f in plan.flows if f.lb_subnet.az})
    grouped: dict[tuple[str, bool], list[_Block]] = {}
    for block in result.blocks:
        grouped.setdefault((block.group.id, block.egress), []).append(block)
    findings = [
        Finding(
            CODE,
            Status.FAIL,
            SEVERITY,
            _summary(blocks, zones_on_path),
            blocks[0].group.id,
            netpath.shorten(b.line for b in blocks),
            _fixes(snapshot, blocks),
        )
        for blocks in grouped.values()
    ]
    if result.missing:
        findings.append(
            Finding(
                CODE,
                Status.UNKNOWN,
                SEVERITY,
                "Could not evaluate every security group on the path.",
                lbs,
                tuple(dict.fromkeys(result.missing)),
            )
        )
    elif not findings:
        findings.append(
            Finding(
                CODE,
                Status.PASS,
                SEVERITY,
                "The security groups on the path admit the traffic and the health checks.",
                lbs,
                netpath.shorten(result.evaluated),
            )
        )
    return findings


CHECK = Check(
    name="security_groups",
    codes=(CODE,),
    severity=SEVERITY,
    title="Security groups on the load balancer's path",
    explains=(
        "A security group that does not admit the load balancer drops its connections and "
        "health checks: they time out, targets turn unhealthy and clients get 504s."
    ),
    judge=judge,
    templates=("sg_authorize.sh.j2", "sg_rule.tf.j2", "prefix_list_add.sh.j2"),
    step="network",
)
