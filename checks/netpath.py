"""The network path a load balancer's traffic takes, and the rules that decide it.

Two parts, both pure:

* **Evaluators** for network ACLs and security groups, built from small predicates.
  A network ACL is read in rule-number order; the first rule that matches a packet decides
  and an implicit final rule (shown as ``*`` in the AWS console) denies the rest. A security
  group admits what any of its rules admits, and groups on one interface add up the same way.
* **The plan**: which flows cross which subnets and groups, per zone, for each load balancer
  of a :class:`~checks.snapshot.Snapshot` (client to listener, load balancer to target on
  the traffic and health-check ports, and for NodePort targets of a Service with
  ``externalTrafficPolicy: Cluster`` the node to the pod on another node that kube-proxy
  forwards to). A pod selected by a SecurityGroupPolicy carries the policy's groups, not
  its node's; a rule naming a managed prefix list admits the CIDRs the list holds.

Sources are ranges, not addresses: the load balancer's nodes may hold any address of their
subnets, and clients any address of the client range. Two readings of "is this range let
through" are needed:

* ``all``: every address of the range passes. Used for the load balancer's own subnets, where
  a node may take any address, so one denied address is a real, intermittent block.
* ``any``: at least one address passes. Used for the client population: an ACL or group that
  denies some clients is a policy, not a fault on the path. The clients of an internet-facing
  load balancer are the public addresses (:func:`population`), so a rule that admits only
  private ranges admits none of them.

A range is split by the rules it meets (:func:`acl_partition`), so both readings are exact,
first match per address, rather than "a rule must cover the whole range".
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from checks import kube, numbers
from checks.snapshot import (
    AclEntry,
    Instance,
    KubeObject,
    LoadBalancer,
    NetworkAcl,
    SecurityGroup,
    SgRule,
    Snapshot,
    Subnet,
    TargetGroup,
)

logger = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Direction = Literal["ingress", "egress"]
# An address, a CIDR, or several CIDRs standing for one population of addresses.
Peer = str | Sequence[str]

EPHEMERAL_LO = 1024
EPHEMERAL_HI = 65535
# The highest rule number AWS accepts for an ACL entry.
MAX_RULE_NUMBER = 32766

CLIENT_HOP = "client -> load balancer"
FORWARD_HOP = "load balancer -> target"
PROXY_HOP = "node -> pod (kube-proxy)"

_PROTOCOL_NUMBERS = {"all": "-1", "-1": "-1", "tcp": "6", "udp": "17", "icmp": "1"}
_PROTOCOL_LABELS = {"-1": "All", "6": "TCP (6)", "17": "UDP (17)", "1": "ICMP (1)"}
_TYPE_LABELS = {"-1": "All traffic", "6": "Custom TCP", "17": "Custom UDP", "1": "All ICMP"}


def protocol_number(protocol: str) -> str:
    """``tcp``/``6`` -> ``6``: security groups and ACLs spell protocols differently."""
    return _PROTOCOL_NUMBERS.get(protocol.lower(), protocol)


def protocol_name(number: str) -> str:
    """``6`` -> ``tcp``, the spelling the AWS CLI and Terraform take."""
    names = {v: k for k, v in _PROTOCOL_NUMBERS.items() if k != "-1"}
    return names.get(number, number)


def network(cidr_or_address: str) -> IpNetwork:
    return ipaddress.ip_network(cidr_or_address, strict=False)


def _split(piece: IpNetwork, cover: IpNetwork) -> tuple[list[IpNetwork], list[IpNetwork]]:
    """``piece`` cut by ``cover``: (inside, outside). CIDRs nest or are disjoint."""
    if piece.version != cover.version:
        return [], [piece]
    if piece.subnet_of(cover):  # type: ignore[arg-type]
        return [piece], []
    if cover.subnet_of(piece):  # type: ignore[arg-type]
        return [cover], list(piece.address_exclude(cover))  # type: ignore[arg-type]
    return [], [piece]


def networks(peer: Peer) -> list[IpNetwork]:
    return [network(peer)] if isinstance(peer, str) else [network(p) for p in peer]


def _subtract(pieces: Iterable[IpNetwork], cover: IpNetwork) -> list[IpNetwork]:
    left: list[IpNetwork] = []
    for piece in pieces:
        left.extend(_split(piece, cover)[1])
    return left


# ---------------------------------------------------------------- network ACLs


@dataclass(frozen=True)
class Decision:
    """What an ACL does to a packet, or to every address of a range.

    ``entry`` is the rule that decides: for a denial, the first rule in number order that
    denies some address of the range (``None`` = the implicit final deny); for an allow, the
    rule that admitted the last part of the range. With no ACL at all, ``allowed`` is true and
    ``entry`` is ``None``.
    """

    allowed: bool
    entry: AclEntry | None = None

    @property
    def rule_number(self) -> int | None:
        return self.entry.rule_number if self.entry else None


def entry_matches_traffic(entry: AclEntry, egress: bool, protocol: str, port: int) -> bool:
    """Direction, protocol and port only: the address is matched by range splitting."""
    if entry.egress != egress:
        return False
    if entry.protocol not in ("-1", protocol):
        return False
    if entry.protocol == "-1" or entry.port_from is None or entry.port_to is None:
        return True
    return entry.port_from <= port <= entry.port_to


def ordered_entries(acl: NetworkAcl, egress: bool) -> list[AclEntry]:
    """The rules users can change, in order.

    AWS lists the final deny-all as rules 32767 (IPv4) and 32768 (IPv6); the evaluator
    applies that rule itself, so it is reported as ``*`` the way the console shows it.
    """
    return sorted(
        (e for e in acl.entries if e.egress == egress and e.rule_number <= MAX_RULE_NUMBER),
        key=lambda e: e.rule_number,
    )


def acl_partition(
    acl: NetworkAcl, egress: bool, protocol: str, peer: Peer, port: int
) -> list[tuple[IpNetwork, Decision]]:
    """Split ``peer`` (an address, a CIDR or several) into parts that one rule each decides.

    ``peer`` is the packet's source for inbound rules and its destination for outbound
    rules, as the ACL matches them.
    """
    protocol = protocol_number(protocol)
    remaining = networks(peer)
    parts: list[tuple[IpNetwork, Decision]] = []
    for entry in ordered_entries(acl, egress):
        if not remaining:
            break
        if not entry_matches_traffic(entry, egress, protocol, port):
            continue
        cover = network(entry.cidr)
        left: list[IpNetwork] = []
        for piece in remaining:
            inside, outside = _split(piece, cover)
            parts.extend((p, Decision(entry.action == "allow", entry)) for p in inside)
            left.extend(outside)
        remaining = left
    parts.extend((p, Decision(False, None)) for p in remaining)
    return parts


def _first_deny(parts: Sequence[tuple[IpNetwork, Decision]]) -> Decision:
    denials = [d for _, d in parts if not d.allowed]
    explicit = [d for d in denials if d.entry is not None]
    if explicit:
        return min(explicit, key=lambda d: d.rule_number or 0)
    return denials[0]


def acl_decision(
    acl: NetworkAcl | None,
    egress: bool,
    protocol: str,
    peer: Peer,
    port: int,
    reading: Literal["all", "any"] = "all",
) -> Decision:
    """Whether ``acl`` lets ``port`` through for the addresses of ``peer``.

    ``reading="all"`` (the default, conservative) allows only if every address passes;
    ``"any"`` allows if one does. A missing ACL lets everything through.
    """
    if acl is None:
        return Decision(True, None)
    parts = acl_partition(acl, egress, protocol, peer, port)
    allowed = [d for _, d in parts if d.allowed]
    if reading == "any":
        return allowed[-1] if allowed else _first_deny(parts)
    if len(allowed) == len(parts):
        return max(allowed, key=lambda d: d.rule_number or 0)
    return _first_deny(parts)


@dataclass(frozen=True)
class DeniedRange:
    """Ports ``lo``-``hi`` denied; ``entry`` decides (``None`` = the implicit deny)."""

    lo: int
    hi: int
    entry: AclEntry | None

    @property
    def rule_number(self) -> int | None:
        return self.entry.rule_number if self.entry else None

    @property
    def ports(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


def acl_port_range_gaps(
    acl: NetworkAcl | None,
    egress: bool,
    protocol: str,
    peer: Peer,
    lo: int,
    hi: int,
    reading: Literal["all", "any"] = "all",
) -> list[DeniedRange]:
    """The sub-ranges of ports ``lo``-``hi`` that ``acl`` denies, each with its deciding rule.

    Rules change their verdict only at their own port bounds, so the range is cut at those
    bounds and one port of each piece stands for the piece.
    """
    if acl is None:
        return []
    protocol = protocol_number(protocol)
    cuts = {lo, hi + 1}
    for entry in ordered_entries(acl, egress):
        if entry.port_from is not None and entry.port_to is not None:
            cuts.update(b for b in (entry.port_from, entry.port_to + 1) if lo < b <= hi)
    bounds = sorted(cuts)
    gaps: list[DeniedRange] = []
    for start, stop in itertools.pairwise(bounds):
        decision = acl_decision(acl, egress, protocol, peer, start, reading)
        if decision.allowed:
            continue
        last = gaps[-1] if gaps else None
        if last is not None and last.hi == start - 1 and last.entry == decision.entry:
            gaps[-1] = DeniedRange(last.lo, stop - 1, last.entry)
        else:
            gaps.append(DeniedRange(start, stop - 1, decision.entry))
    return gaps


def console_acl_rule(entry: AclEntry | None) -> str:
    """One ACL rule as the AWS console's table shows it (``None`` = the ``*`` rule)."""
    if entry is None or entry.rule_number > MAX_RULE_NUMBER:
        return "Rule * | All traffic | All | All | 0.0.0.0/0 | Deny"
    kind = _TYPE_LABELS.get(entry.protocol, f"Custom protocol ({entry.protocol})")
    proto = _PROTOCOL_LABELS.get(entry.protocol, entry.protocol)
    if entry.protocol == "-1" or entry.port_from is None or entry.port_to is None:
        ports = "All"
    elif entry.port_from == entry.port_to:
        ports = str(entry.port_from)
    else:
        ports = f"{entry.port_from} - {entry.port_to}"
    action = entry.action.capitalize()
    return f"Rule {entry.rule_number} | {kind} | {proto} | {ports} | {entry.cidr} | {action}"


def free_rule_number(used: Iterable[int], before: int | None) -> int | None:
    """A rule number for a new allow entry that takes effect.

    Just below ``before`` (the deny rule that decides) when one is given, else after the last
    rule at the next multiple of 10. ``None`` when no number is free.
    """
    taken: set[int] = set(used)
    candidates: Iterable[int]
    if before is not None:
        candidates = range(before - 1, 0, -1)
    else:
        start = (max(taken, default=90) // 10 + 1) * 10
        candidates = itertools.chain(
            range(start, MAX_RULE_NUMBER + 1, 10), range(MAX_RULE_NUMBER, 0, -1)
        )
    return next((n for n in candidates if n not in taken), None)


# ------------------------------------------------------------ security groups


@dataclass(frozen=True)
class SgCoverage:
    """How much of a peer a set of security groups admits on one port.

    ``full``: every address of the peer's range (or the peer's group) is admitted.
    ``some``: at least one is. ``via`` names the admitting rules; ``prefix_lists`` the
    prefix lists that match the port but whose contents are not known, ``consulted`` those
    that match it and were read as the CIDRs they hold.
    """

    full: bool
    some: bool
    via: tuple[str, ...] = ()
    prefix_lists: tuple[str, ...] = ()
    consulted: tuple[str, ...] = ()


def sg_rule_matches(rule: SgRule, protocol: str, port: int) -> bool:
    rule_protocol = protocol_number(rule.protocol)
    if rule_protocol == "-1":
        return True
    if rule_protocol != protocol_number(protocol):
        return False
    if rule.from_port is None or rule.to_port is None or rule.from_port == -1:
        return True
    return rule.from_port <= port <= rule.to_port


def describe_sg_rule(group: SecurityGroup, direction: Direction, rule: SgRule) -> str:
    proto = "all traffic" if protocol_number(rule.protocol) == "-1" else rule.protocol
    if protocol_number(rule.protocol) == "-1" or rule.from_port is None:
        ports = ""
    elif rule.from_port == rule.to_port:
        ports = f" {rule.from_port}"
    else:
        ports = f" {rule.from_port}-{rule.to_port}"
    peers = [*rule.cidrs, *(("self" if g == group.id else g) for g in rule.group_ids)]
    peers.extend(rule.prefix_list_ids)
    word = "from" if direction == "ingress" else "to"
    return f"{group.id} ({group.name}) {direction} {proto}{ports} {word} {', '.join(peers)}"


def sg_coverage(
    groups: Sequence[SecurityGroup],
    direction: Direction,
    protocol: str,
    peer_cidr: Peer | None,
    peer_group_ids: Sequence[str],
    port: int,
    prefix_lists: Mapping[str, Sequence[str]] | None = None,
) -> SgCoverage:
    """What ``groups`` (all on one interface) admit from or to a peer on ``port``.

    A peer is an address range and/or the groups its interfaces carry: a rule naming one of
    those groups, the group itself ("self") included, admits the whole peer. A rule naming a
    managed prefix list admits the CIDRs ``prefix_lists`` holds for it (id -> CIDRs).
    """
    known = prefix_lists or {}
    whole = networks(peer_cidr) if peer_cidr else []
    remaining = list(whole)
    via: list[str] = []
    unknown: list[str] = []
    consulted: list[str] = []
    by_group = False
    some = False
    for group in groups:
        rules = group.ingress if direction == "ingress" else group.egress
        for rule in rules:
            if not sg_rule_matches(rule, protocol, port):
                continue
            admitted = False
            if set(rule.group_ids) & set(peer_group_ids):
                by_group = admitted = True
            cidrs = list(rule.cidrs)
            for listed in rule.prefix_list_ids:
                if listed in known:
                    consulted.append(listed)
                    cidrs.extend(known[listed])
                else:
                    unknown.append(listed)
            for cidr in cidrs:
                cover = network(cidr)
                if any(_split(piece, cover)[0] for piece in whole):
                    admitted = True
                remaining = _subtract(remaining, cover)
            if admitted:
                some = True
                via.append(describe_sg_rule(group, direction, rule))
    full = by_group or (bool(whole) and not remaining)
    return SgCoverage(
        full,
        some or full,
        tuple(via),
        tuple(dict.fromkeys(unknown)),
        tuple(dict.fromkeys(consulted)),
    )


def sg_allows(
    groups: Sequence[SecurityGroup],
    direction: Direction,
    protocol: str,
    peer_cidr: Peer | None,
    peer_group_ids: Sequence[str],
    port: int,
    prefix_lists: Mapping[str, Sequence[str]] | None = None,
) -> bool:
    """True when ``groups`` admit every address of the peer on ``port``."""
    coverage = sg_coverage(
        groups, direction, protocol, peer_cidr, peer_group_ids, port, prefix_lists
    )
    return coverage.full


# ------------------------------------------------------- security groups for pods


def label_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (``matchLabels`` and ``matchExpressions``, ANDed).

    An empty selector matches every object; one that cannot be read matches none.
    """
    if not isinstance(selector, dict):
        return False
    wanted = selector.get("matchLabels") or {}
    if not isinstance(wanted, dict):
        return False
    if any(labels.get(str(k)) != str(v) for k, v in wanted.items()):
        return False
    for term in selector.get("matchExpressions") or []:
        if not isinstance(term, dict):
            return False
        key = str(term.get("key", ""))
        operator = term.get("operator")
        values = {str(v) for v in term.get("values") or []}
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


@dataclass(frozen=True)
class PodGroups:
    """The groups SecurityGroupPolicies give a pod's own interface (none: the node's).

    ``unknown`` says why whether a policy applies could not be told.
    """

    group_ids: tuple[str, ...]
    policies: tuple[str, ...]
    unknown: str = ""


def pod_policy_groups(snapshot: Snapshot, pod: KubeObject) -> PodGroups:
    """The security groups a pod carries under security groups for pods.

    A policy of the pod's namespace applies when each selector it has matches:
    ``podSelector`` the pod's labels, ``serviceAccountSelector`` the labels of the pod's
    ServiceAccount. The groups of every policy that applies add up, and replace the node's
    groups on the pod's own (branch) interface. A policy with no selector or no group is
    ignored, as the VPC resource controller ignores it; pods in the host network keep the
    node's interface.
    """
    # Limitation: a pod started before its policy existed keeps the node's groups until it
    # is recreated; the policy is judged as if it applied.
    namespace = kube.namespace(pod)
    spec = kube.spec(pod)
    if spec.get("hostNetwork"):
        return PodGroups((), ())
    account_name = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    groups: list[str] = []
    names: list[str] = []
    for policy in snapshot.security_group_policies:
        if kube.namespace(policy) != namespace:
            continue
        policy_spec = kube.spec(policy)
        ids = [str(g) for g in (policy_spec.get("securityGroups") or {}).get("groupIds") or []]
        pod_selector = policy_spec.get("podSelector")
        account_selector = policy_spec.get("serviceAccountSelector")
        if not ids or (pod_selector is None and account_selector is None):
            continue
        if pod_selector is not None and not label_selector_matches(pod_selector, kube.labels(pod)):
            continue
        if account_selector is not None:
            account = next(
                (
                    a
                    for a in snapshot.service_accounts
                    if kube.namespace(a) == namespace and kube.name(a) == account_name
                ),
                None,
            )
            if account is None:
                unread = snapshot.gap("kubernetes:serviceaccounts")
                why = f"could not be read ({unread.reason})" if unread else "was not found"
                return PodGroups(
                    (),
                    (),
                    f"ServiceAccount {namespace}/{account_name} of pod {kube.name(pod)} {why}, "
                    f"so whether SecurityGroupPolicy {kube.name(policy)} gives the pod its own "
                    "security groups is unknown",
                )
            if not label_selector_matches(account_selector, kube.labels(account)):
                continue
        groups.extend(ids)
        names.append(kube.name(policy))
    logger.debug("pod %s: policy groups %s from %s", kube.name(pod), groups, names)
    return PodGroups(tuple(dict.fromkeys(groups)), tuple(names))


# ------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Target:
    """One target as the network sees it: its address, subnet and interface groups.

    ``kind`` is ``instance`` when the load balancer sends to the node itself (a NodePort),
    ``ip`` for a pod's address; ``instance_id`` is the instance that carries it.
    """

    label: str
    address: str
    subnet: Subnet | None
    group_ids: tuple[str, ...]
    zone: str
    kind: Literal["instance", "ip"] = "ip"
    instance_id: str = ""


@dataclass(frozen=True)
class Source:
    """Where packets arriving at a target come from, as the target's subnet sees them.

    ``clients`` marks the client population (client IP preserved), read with ``any``.
    """

    cidr: str
    group_ids: tuple[str, ...]
    clients: bool
    description: str


@dataclass(frozen=True)
class Flow:
    """Load balancer nodes in one subnet to one target, on one port."""

    lb: LoadBalancer
    lb_subnet: Subnet
    target: Target
    protocol: str  # ACL protocol number
    port: int
    purposes: tuple[str, ...]  # "traffic", "health check"
    source: Source

    @property
    def same_subnet(self) -> bool:
        return self.target.subnet is not None and self.target.subnet.id == self.lb_subnet.id


@dataclass(frozen=True)
class ClientFlow:
    """Clients to the load balancer's nodes in one subnet, on one listener port."""

    lb: LoadBalancer
    lb_subnet: Subnet
    protocol: str
    port: int
    client_cidr: str


@dataclass(frozen=True)
class ProxyFlow:
    """kube-proxy on ``node`` forwarding what arrived on ``node_port`` to a pod elsewhere.

    With ``externalTrafficPolicy: Cluster`` a node sends on what reaches its NodePort to any
    ready pod of the Service, from its own address, to the pod's port (``port``): that leg
    crosses the pod's security groups and, between subnets, both subnets' ACLs.
    """

    lb: LoadBalancer
    node: Target
    pod: Target
    protocol: str  # ACL protocol number
    node_port: int
    port: int
    purposes: tuple[str, ...]


@dataclass
class Plan:
    flows: list[Flow] = field(default_factory=list)
    client_flows: list[ClientFlow] = field(default_factory=list)
    proxy_flows: list[ProxyFlow] = field(default_factory=list)
    # Why part of the path could not be built; each makes the checks report unknown.
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def transports(protocol: str) -> tuple[str, ...]:
    """ACL protocol numbers a listener or target-group protocol travels on."""
    upper = protocol.upper()
    if upper == "TCP_UDP":
        return ("6", "17")
    if upper in ("UDP", "QUIC"):
        return ("17",)
    return ("6",)


# Addresses no internet client has: an internet-facing listener that admits only these
# admits no client.
_NOT_PUBLIC = tuple(
    network(c)
    for c in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip


def population(cidr: str) -> list[str]:
    """The addresses a client range stands for: ``0.0.0.0/0`` means the public internet."""
    if cidr != "0.0.0.0/0":
        return [cidr]
    pieces: list[IpNetwork] = [network(cidr)]
    for private in _NOT_PUBLIC:
        pieces = _subtract(pieces, private)
    return [str(p) for p in sorted(pieces, key=lambda n: int(n.network_address))]


def client_cidr(lb: LoadBalancer, snapshot: Snapshot) -> str:
    """The client range: anyone for internet-facing, the VPC for internal ("" if unknown)."""
    return "0.0.0.0/0" if lb.scheme == "internet-facing" else snapshot.vpc_cidr


def client_ip_preserved(lb: LoadBalancer, tg: TargetGroup) -> bool:
    """Whether targets see the client's address (NLB only), with the AWS defaults."""
    if lb.type != "network":
        return False
    raw = tg.attributes.get("preserve_client_ip.enabled")
    if tg.protocol.upper() in ("UDP", "TCP_UDP", "QUIC", "TCP_QUIC"):
        return True
    if raw is not None:
        return raw.strip().lower() == "true"
    return tg.target_type == "instance"


def subnet_containing(snapshot: Snapshot, address: str) -> Subnet | None:
    ip = ipaddress.ip_address(address)
    matches = [s for s in snapshot.subnets.values() if ip in network(s.cidr)]
    # The most specific subnet wins should CIDRs ever overlap across VPCs in one snapshot.
    return max(matches, key=lambda s: network(s.cidr).prefixlen, default=None)


def _pod_at(pods: Iterable[KubeObject], address: str) -> KubeObject | None:
    return next((p for p in pods if kube.status(p).get("podIP") == address), None)


def _instance_of_pod(snapshot: Snapshot, pod: KubeObject, address: str) -> Instance | None:
    node_name = kube.spec(pod).get("nodeName")
    node = next((n for n in snapshot.nodes if kube.name(n) == node_name), None)
    instance_id = kube.node_instance_id(node) if node else ""
    if instance_id in snapshot.instances:
        return snapshot.instances[instance_id]
    return _instance_by_address(snapshot, address)


def _instance_by_address(snapshot: Snapshot, address: str) -> Instance | None:
    ip = ipaddress.ip_address(address)
    exact = [i for i in snapshot.instances.values() if i.private_ip == address]
    if exact:
        return exact[0]
    # With the VPC CNI a pod's address comes from its node's subnet, and its interface
    # carries the node's groups; any instance of that subnet stands for it.
    # Limitation: for an address no known pod holds, nodes of one subnet with different
    # groups are not told apart.
    for instance in sorted(snapshot.instances.values(), key=lambda i: i.id):
        subnet = snapshot.subnets.get(instance.subnet_id)
        if subnet is not None and ip in network(subnet.cidr):
            return instance
    return None


def _instance_target(snapshot: Snapshot, instance_id: str, plan: Plan) -> Target | None:
    instance = snapshot.instances.get(instance_id)
    if instance is None:
        unread = snapshot.gap("instances", "network")
        plan.missing.append(
            f"registered instance {instance_id} could not be read: {unread.reason}"
            if unread is not None
            else f"registered instance {instance_id} was not found: AWS did not describe it"
        )
        return None
    subnet = snapshot.subnets.get(instance.subnet_id)
    zone = subnet.az if subnet else instance.az
    return Target(
        f"instance {instance.id}",
        instance.private_ip,
        subnet,
        instance.security_group_ids,
        zone,
        "instance",
        instance.id,
    )


def _ip_target(
    snapshot: Snapshot, address: str, plan: Plan, pods: Sequence[KubeObject] | None = None
) -> Target | None:
    """A pod's address as a target: its node's groups, or its own under a SecurityGroupPolicy."""
    if not kube.is_ip_address(address):
        plan.notes.append(f"target {address!r} is not an IP address: skipped")
        return None
    pod = _pod_at(snapshot.pods if pods is None else pods, address)
    if pod is None:
        instance, label = _instance_by_address(snapshot, address), f"target {address}"
    else:
        instance = _instance_of_pod(snapshot, pod, address)
        label = f"pod {kube.namespace(pod)}/{kube.name(pod)} ({address})"
    if instance is None:
        unread = snapshot.gap("instances")
        plan.missing.append(
            f"the instance of {label} could not be read: {unread.reason}"
            if unread is not None
            else f"no instance found for {label}: its security groups are unknown"
        )
        return None
    subnet = subnet_containing(snapshot, address)
    zone = subnet.az if subnet else instance.az
    label = f"{label} on {instance.id}"
    group_ids = instance.security_group_ids
    if pod is not None:
        own = pod_policy_groups(snapshot, pod)
        if own.unknown:
            plan.missing.append(own.unknown)
            return None
        if own.group_ids:
            group_ids = own.group_ids
            label = f"{label} (groups of SecurityGroupPolicy {', '.join(own.policies)})"
    return Target(label, address, subnet, group_ids, zone, "ip", instance.id)


def _health_check_node_port(snapshot: Snapshot, lb: LoadBalancer) -> int | None:
    """A Classic LB of a Local-policy Service checks the Service's health-check node port."""
    service = snapshot.service
    if service is None or lb.serves != f"service/{kube.namespace(service)}/{kube.name(service)}":
        return None
    spec = kube.spec(service)
    if spec.get("externalTrafficPolicy") != "Local" or not spec.get("healthCheckNodePort"):
        return None
    return int(spec["healthCheckNodePort"])


def _lb_subnets(snapshot: Snapshot, lb: LoadBalancer, plan: Plan) -> list[Subnet]:
    found: list[Subnet] = []
    for subnet_id in lb.subnet_ids:
        subnet = snapshot.subnets.get(subnet_id)
        if subnet is None:
            unread = snapshot.gap("subnets", "network")
            plan.missing.append(
                f"subnet {subnet_id} of load balancer {lb.name} could not be read: {unread.reason}"
                if unread is not None
                else f"subnet {subnet_id} of load balancer {lb.name} is not among the subnets "
                f"AWS lists for {lb.vpc_id or 'its VPC'}"
            )
        else:
            found.append(subnet)
    if not lb.subnet_ids:
        plan.missing.append(f"load balancer {lb.name} lists no subnets")
    return found


class _FlowSet:
    """Collects flows, merging traffic and health checks that share a port and a source."""

    def __init__(self) -> None:
        self._flows: dict[tuple[object, ...], Flow] = {}

    def add(self, flow: Flow) -> None:
        key = (flow.lb.name, flow.lb_subnet.id, flow.target, flow.protocol, flow.port, flow.source)
        known = self._flows.get(key)
        if known is None:
            self._flows[key] = flow
        elif not set(flow.purposes) <= set(known.purposes):
            purposes = tuple(dict.fromkeys((*known.purposes, *flow.purposes)))
            self._flows[key] = Flow(
                known.lb, known.lb_subnet, known.target, known.protocol, known.port,
                purposes, known.source,
            )  # fmt: skip

    def values(self) -> list[Flow]:
        return list(self._flows.values())


def _add_target_flows(
    flows: _FlowSet,
    lb: LoadBalancer,
    lb_subnets: Sequence[Subnet],
    target: Target,
    protocols: Sequence[str],
    port: int,
    health_port: int | None,
    preserved: str | None,
) -> None:
    """Flows to one target from the zones that reach it.

    Every load balancer node health-checks every target in an enabled zone; traffic crosses
    zones only with cross-zone load balancing on.
    """
    lb_zones = {s.az for s in lb_subnets}
    if target.zone and target.zone not in lb_zones:
        return
    for subnet in lb_subnets:
        own = Source(
            subnet.cidr, lb.security_group_ids, False, f"load balancer subnet {subnet.cidr}"
        )
        traffic_source = (
            Source(
                preserved, lb.security_group_ids, True, f"clients {preserved} (client IP preserved)"
            )
            if preserved
            else own
        )
        for protocol in protocols:
            if lb.cross_zone or not target.zone or subnet.az == target.zone:
                flows.add(Flow(lb, subnet, target, protocol, port, ("traffic",), traffic_source))
            hc_port = port if health_port is None else health_port
            flows.add(Flow(lb, subnet, target, protocol, hc_port, ("health check",), own))


def _plan_load_balancer(snapshot: Snapshot, lb: LoadBalancer, plan: Plan, flows: _FlowSet) -> None:
    subnets = _lb_subnets(snapshot, lb, plan)
    if not subnets:
        return
    clients = client_cidr(lb, snapshot)
    if not clients:
        unread = snapshot.gap("vpc")
        plan.missing.append(
            f"the VPC CIDR is not known, so the clients of internal {lb.name} are not"
            + (f": {unread.reason}" if unread is not None else "")
        )
    for listener in lb.listeners:
        for protocol in transports(listener.protocol):
            for subnet in subnets:
                if clients:
                    plan.client_flows.append(
                        ClientFlow(lb, subnet, protocol, listener.port, clients)
                    )

    if lb.type == "classic":
        if not lb.instances:
            plan.missing.append(f"Classic LB {lb.name} has no registered instances to evaluate")
        health_port = _health_check_node_port(snapshot, lb)
        ports = [(lst.instance_port, lst.instance_protocol or lst.protocol) for lst in lb.listeners]
        for registered in lb.instances:
            target = _instance_target(snapshot, registered.id, plan)
            if target is None:
                continue
            for port, proto in ports:
                if port is not None:
                    _add_target_flows(
                        flows, lb, subnets, target, transports(proto), port, health_port, None
                    )
        return

    for tg in lb.target_groups:
        if tg.target_type not in ("instance", "ip"):
            plan.notes.append(f"target group {tg.name} has {tg.target_type} targets: not evaluated")
            continue
        if not tg.targets:
            unread = snapshot.gap("target-health")
            plan.missing.append(
                f"the targets of {tg.name} could not be read: {unread.reason}"
                if unread is not None
                else f"target group {tg.name} has no registered targets to evaluate"
            )
        preserved = clients if clients and client_ip_preserved(lb, tg) else None
        if client_ip_preserved(lb, tg):
            plan.notes.append(
                f"target group {tg.name} preserves the client IP: its targets see clients "
                f"{clients or 'of the VPC'} as the source of traffic; health checks still come "
                f"from the load balancer's subnets"
            )
        raw_hc = tg.health_check.port
        health_port = numbers.whole(raw_hc)
        for registered in tg.targets:
            if registered.state == "unused":
                continue
            if tg.target_type == "instance":
                target = _instance_target(snapshot, registered.id, plan)
            else:
                target = _ip_target(snapshot, registered.id, plan)
            if target is None:
                continue
            port = registered.port or tg.port
            _add_target_flows(
                flows, lb, subnets, target, transports(tg.protocol), port, health_port, preserved
            )


def _node_port_backends(
    snapshot: Snapshot,
) -> dict[tuple[int, str], tuple[KubeObject, dict[str, Any], list[KubeObject]]]:
    """(NodePort, protocol number) -> the Service, its port and its pods, for Services whose
    NodePort traffic kube-proxy may send to another node (``externalTrafficPolicy: Cluster``).

    NodePorts are unique in a cluster, so the port alone says which Service a target group or
    Classic listener reaches: the asked Service, or an in-cluster proxy's in front of it.
    """
    services = [(snapshot.service, snapshot.pods)] if snapshot.service is not None else []
    services.extend((proxy.service, proxy.pods) for proxy in snapshot.proxies)
    found: dict[tuple[int, str], tuple[KubeObject, dict[str, Any], list[KubeObject]]] = {}
    for service, pods in services:
        spec = kube.spec(service)
        if spec.get("externalTrafficPolicy", "Cluster") != "Cluster":
            continue
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            node_port = numbers.whole(str(port.get("nodePort", "")))
            if node_port is not None:
                protocol = protocol_number(str(port.get("protocol") or "TCP"))
                found[(node_port, protocol)] = (service, port, pods)
    return found


def _target_port(service_port: Mapping[str, Any], pod: KubeObject) -> int | None:
    """The pod's port a Service port forwards to; a named targetPort is looked up in the pod."""
    raw = service_port.get("targetPort", service_port.get("port"))
    number = numbers.whole(str(raw))
    if number is not None:
        return number
    for container in kube.containers(pod):
        for port in container.get("ports") or []:
            number = numbers.whole(str(port.get("containerPort", "")))
            if port.get("name") == raw and number is not None:
                return number
    return None


def _plan_proxy_hops(snapshot: Snapshot, flows: Sequence[Flow], plan: Plan) -> None:
    """The node -> pod legs behind every flow that lands on a node's NodePort."""
    backends = _node_port_backends(snapshot)
    hops: dict[tuple[object, ...], ProxyFlow] = {}
    pod_targets: dict[str, Target | None] = {}
    for flow in flows:
        backend = backends.get((flow.port, flow.protocol))
        if flow.target.kind != "instance" or backend is None:
            continue
        service, service_port, pods = backend
        for pod in pods:
            address = str(kube.status(pod).get("podIP") or "")
            if not address or not kube.pod_ready(pod):
                continue
            if not kube.is_ip_address(address):
                plan.notes.append(
                    f"pod {kube.namespace(pod)}/{kube.name(pod)} has podIP {address!r}, which "
                    "is not an IP address: its node -> pod leg is skipped"
                )
                continue
            if address not in pod_targets:
                pod_targets[address] = _ip_target(snapshot, address, plan, pods)
            pod_target = pod_targets[address]
            # A pod on the receiving node is reached inside the node: no interface crossed.
            if pod_target is None or pod_target.instance_id == flow.target.instance_id:
                continue
            port = _target_port(service_port, pod)
            if port is None:
                plan.missing.append(
                    f"targetPort {service_port.get('targetPort')} of Service "
                    f"{kube.namespace(service)}/{kube.name(service)} is not a port of pod "
                    f"{kube.name(pod)}, so the node -> pod leg cannot be judged"
                )
                continue
            key = (flow.lb.name, flow.target, pod_target, flow.protocol, port)
            known = hops.get(key)
            carried = set(flow.purposes) | set(known.purposes if known else ())
            purposes = tuple(p for p in ("traffic", "health check") if p in carried)
            hops[key] = ProxyFlow(
                flow.lb, flow.target, pod_target, flow.protocol, flow.port, port, purposes
            )
    plan.proxy_flows = list(hops.values())


def plan(snapshot: Snapshot) -> Plan:
    """Every flow the load balancers of ``snapshot`` need, and what stops us knowing more."""
    result = Plan()
    flows = _FlowSet()
    for lb in snapshot.load_balancers:
        _plan_load_balancer(snapshot, lb, result, flows)
    result.flows = flows.values()
    _plan_proxy_hops(snapshot, result.flows, result)
    if not snapshot.load_balancers:
        result.missing.append("no load balancer serving the Service was found")
    logger.debug(
        "network plan: %d flows, %d client flows, %d kube-proxy flows, %d gaps",
        len(result.flows),
        len(result.client_flows),
        len(result.proxy_flows),
        len(result.missing),
    )
    return result


def effective_acl(snapshot: Snapshot, subnet: Subnet) -> tuple[NetworkAcl | None, str]:
    """The ACL a subnet uses, and why it could not be read ("" when it could).

    A subnet with no explicit association uses its VPC's default ACL. With no ACL known at
    all, the subnet is treated as open, as the VPC's untouched default ACL is.
    """
    if subnet.network_acl_id is not None:
        acl = snapshot.acl_for_subnet(subnet.id)
        if acl is None:
            return (
                None,
                f"network ACL {subnet.network_acl_id} of {subnet.id} is not among the network "
                "ACLs AWS lists for the VPC",
            )
        return acl, ""
    default = next((a for a in snapshot.network_acls.values() if a.is_default), None)
    return default, ""


def shorten(lines: Iterable[str], limit: int = 12) -> tuple[str, ...]:
    """Distinct lines, at most ``limit``, with a count of the rest."""
    distinct = list(dict.fromkeys(lines))
    if len(distinct) <= limit:
        return tuple(distinct)
    return (*distinct[: limit - 1], f"... and {len(distinct) - limit + 1} more")


def subnet_label(subnet: Subnet) -> str:
    name = f" ({subnet.name})" if subnet.name else ""
    return f"{subnet.id}{name} {subnet.cidr} in {subnet.az}"
