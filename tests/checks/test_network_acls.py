"""NACL_BLOCKS_TRAFFIC and NACL_BLOCKS_EPHEMERAL on hand-built snapshots, one hop at a time."""

from __future__ import annotations

from dataclasses import replace

from checks.models import Finding, Status
from checks.rules import network_acls
from checks.snapshot import (
    AclEntry,
    Gap,
    Instance,
    Listener,
    LoadBalancer,
    NetworkAcl,
    Snapshot,
    Subnet,
)
from tests.checks.test_netpath import (
    NODES_1A,
    NODES_1B,
    OPEN_NODES,
    PUBLIC_A,
    allow_all_acl,
    group,
    node_port_world,
    sg_all,
    subnet,
    target_group,
    tcp,
    with_star,
)
from tests.checks.test_netpath import (
    snapshot as build,
)

NODES_A = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a", "acl-nodes")
NODE = Instance("i-0node", NODES_A.id, "10.0.11.20", "us-east-1a", ("sg-nodes",))
OPEN_GROUPS = [
    group("sg-alb", (sg_all(("0.0.0.0/0",)),)),
    group("sg-nodes", (sg_all(("0.0.0.0/0",)),)),
]


def acl(acl_id: str, *entries: AclEntry, default: bool = False) -> NetworkAcl:
    return NetworkAcl(acl_id, default, with_star(*entries))


def alb_world(
    lb_acl: NetworkAcl | None = None,
    nodes_acl: NetworkAcl | None = None,
    target_subnet: Subnet = NODES_A,
    health_port: str = "traffic-port",
    target_ip: str = "10.0.11.14",
) -> Snapshot:
    """An internet-facing ALB in one public subnet, one ip target on port 8000."""
    tg = target_group("tg-web", "ip", "HTTP", 8000, [target_ip])
    tg = replace(tg, health_check=replace(tg.health_check, port=health_port))
    lb_subnet = replace(PUBLIC_A, network_acl_id=lb_acl.id if lb_acl else "acl-default")
    lb = LoadBalancer(
        "k8s-web",
        "application",
        "k8s-web.example",
        "internet-facing",
        "vpc-1",
        (lb_subnet.id,),
        ("sg-alb",),
        {},
        (Listener(443, "HTTPS", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
    )
    node = replace(NODE, subnet_id=target_subnet.id)
    acls = [a for a in (lb_acl, nodes_acl) if a is not None]
    subnets = [lb_subnet] if target_subnet.id == lb_subnet.id else [lb_subnet, target_subnet]
    return build(lb, subnets, OPEN_GROUPS, [node], acls)


def nlb_world(nodes_acl: NetworkAcl, preserve: str | None) -> Snapshot:
    """An internet-facing NLB without groups, instance targets on NodePort 31000."""
    attributes = {} if preserve is None else {"preserve_client_ip.enabled": preserve}
    tg = target_group("tg-nlb", "instance", "TCP", 31000, [NODE.id], **attributes)
    lb = LoadBalancer(
        "k8s-nlb",
        "network",
        "k8s-nlb.example",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id,),
        (),
        {},
        (Listener(443, "TCP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
    )
    return build(lb, [PUBLIC_A, NODES_A], OPEN_GROUPS, [NODE], [nodes_acl])


def only(findings: list[Finding], code: str) -> Finding:
    [finding] = [f for f in findings if f.code == code]
    return finding


def statuses(findings: list[Finding]) -> list[tuple[str, Status]]:
    return [(f.code, f.status) for f in findings]


ALL_PASS = [("NACL_BLOCKS_TRAFFIC", Status.PASS), ("NACL_BLOCKS_EPHEMERAL", Status.PASS)]


def test_open_path_passes_with_evidence_of_what_was_evaluated() -> None:
    findings = network_acls.judge(alb_world(nodes_acl=allow_all_acl("acl-nodes")))

    assert statuses(findings) == ALL_PASS
    assert only(findings, "NACL_BLOCKS_EPHEMERAL").evidence == (
        "client -> load balancer: 0.0.0.0/0 -> subnet-pub-a (us-east-1a) [acl-default] tcp 443, "
        "replies 1024-65535",
        "load balancer -> target: subnet-pub-a (us-east-1a) -> subnet-nodes-a (us-east-1a) "
        "[acl-default -> acl-nodes] tcp 8000 from 10.0.1.0/24, replies 1024-65535",
    )


def test_deny_in_lb_subnet_outbound_is_named_and_the_fix_goes_just_before_it() -> None:
    lb_acl = acl(
        "acl-lb",
        tcp(50, True, "8000", "10.0.0.0/16", "deny"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
        AclEntry(100, False, "-1", "0.0.0.0/0", "allow"),
    )

    findings = network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes")))

    fail = only(findings, "NACL_BLOCKS_TRAFFIC")
    assert fail.status is Status.FAIL
    assert fail.resource == "acl-lb"
    assert fail.summary == "Network ACL acl-lb drops outbound traffic of k8s-web on port(s) 8000."
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: acl-lb on subnet-pub-a 10.0.1.0/24 in "
        "us-east-1a outbound to 10.0.11.0/24 tcp 8000 (traffic and health check to targets in "
        "subnet-nodes-a) is denied by Rule 50 | Custom TCP | TCP (6) | 8000 | 10.0.0.0/16 | Deny",
    )
    cli = fail.fixes[0].text
    assert "--rule-number 49 \\\n  --egress \\\n" in cli
    assert "--port-range From=8000,To=8000 \\\n  --cidr-block 10.0.11.0/24 \\\n" in cli
    assert only(findings, "NACL_BLOCKS_EPHEMERAL").status is Status.PASS


def test_health_check_port_denied_at_the_target_subnet() -> None:
    nodes_acl = acl(
        "acl-nodes",
        tcp(100, False, "8000", "10.0.0.0/16"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
    )

    findings = network_acls.judge(alb_world(nodes_acl=nodes_acl, health_port="9000"))

    fail = only(findings, "NACL_BLOCKS_TRAFFIC")
    assert fail.status is Status.FAIL
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: acl-nodes on subnet-nodes-a 10.0.11.0/24 in "
        "us-east-1a inbound from 10.0.1.0/24 tcp 9000 (health check to targets in "
        "subnet-nodes-a) is denied by Rule * | All traffic | All | All | 0.0.0.0/0 | Deny "
        "(no rule allows it; implicit deny)",
    )
    assert "--rule-number 110 \\\n  --ingress \\\n" in fail.fixes[0].text
    assert "--cidr-block 10.0.1.0/24" in fail.fixes[0].text


def test_first_match_deny_of_part_of_the_ephemeral_range_in_the_lb_subnet() -> None:
    lb_acl = acl(
        "acl-lb",
        tcp(100, False, "443", "0.0.0.0/0"),
        tcp(110, False, "1024-4999", "10.0.11.0/24", "deny"),
        tcp(120, False, "1024-65535", "0.0.0.0/0"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
    )

    findings = network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes")))

    fail = only(findings, "NACL_BLOCKS_EPHEMERAL")
    assert fail.status is Status.FAIL
    assert "on ephemeral ports 1024-4999:" in fail.summary
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: acl-lb on subnet-pub-a 10.0.1.0/24 in "
        "us-east-1a inbound from 10.0.11.0/24 tcp 1024-4999 (replies from subnet-nodes-a port "
        "8000) is denied by Rule 110 | Custom TCP | TCP (6) | 1024 - 4999 | 10.0.11.0/24 | Deny",
    )
    cli = fail.fixes[0].text
    assert "--rule-number 109 \\\n  --ingress \\\n" in cli
    assert "--port-range From=1024,To=65535 \\\n  --cidr-block 10.0.11.0/24 \\\n" in cli


def test_traffic_inside_one_subnet_crosses_no_acl() -> None:
    # Listener and replies to clients are open; the target port 8000 is not.
    shared = acl(
        "acl-shared",
        tcp(100, False, "443", "0.0.0.0/0"),
        tcp(100, True, "1024-65535", "0.0.0.0/0"),
    )
    same = replace(PUBLIC_A, network_acl_id="acl-shared")
    other = subnet("subnet-pub-c", "10.0.3.0/24", "us-east-1a", "acl-shared")

    inside = network_acls.judge(alb_world(shared, None, same, target_ip="10.0.1.50"))
    across = network_acls.judge(alb_world(shared, None, other, target_ip="10.0.3.50"))

    assert statuses(inside) == ALL_PASS
    assert "one subnet, no network ACL crossed" in only(inside, "NACL_BLOCKS_TRAFFIC").evidence[1]
    assert only(across, "NACL_BLOCKS_TRAFFIC").status is Status.FAIL


def test_subnet_without_association_uses_the_vpc_default_acl() -> None:
    world = alb_world(
        allow_all_acl("acl-lb"), None, target_subnet=replace(NODES_A, network_acl_id=None)
    )
    world.network_acls["acl-default"] = acl(
        "acl-default",
        AclEntry(100, False, "-1", "0.0.0.0/0", "allow"),
        tcp(100, True, "443", "0.0.0.0/0"),
        default=True,
    )

    findings = network_acls.judge(world)

    fail = only(findings, "NACL_BLOCKS_EPHEMERAL")
    assert fail.status is Status.FAIL
    assert fail.resource == "acl-default"
    assert len(fail.evidence) == 1
    assert fail.evidence[0].startswith(
        "load balancer -> target, zone us-east-1a: acl-default on subnet-nodes-a 10.0.11.0/24"
    )


def test_acl_named_by_a_subnet_but_missing_is_unknown() -> None:
    findings = network_acls.judge(alb_world(nodes_acl=None))

    assert statuses(findings) == [
        ("NACL_BLOCKS_TRAFFIC", Status.UNKNOWN),
        ("NACL_BLOCKS_EPHEMERAL", Status.UNKNOWN),
    ]
    assert only(findings, "NACL_BLOCKS_TRAFFIC").evidence == (
        "network ACL acl-nodes of subnet-nodes-a is not among the network ACLs AWS lists for the "
        "VPC",
    )


def test_unread_network_acls_make_both_codes_unknown_though_subnets_were_read() -> None:
    # The collector leaves subnets without an ACL when only DescribeNetworkAcls is refused.
    world = alb_world(nodes_acl=allow_all_acl("acl-nodes"))
    world.subnets = {k: replace(v, network_acl_id=None) for k, v in world.subnets.items()}
    world.network_acls = {}
    world.gaps.append(
        Gap(
            "network-acls",
            "vpc-1",
            "AWS refused ec2:DescribeNetworkAcls.",
            "ec2:DescribeNetworkAcls",
        )
    )

    findings = network_acls.judge(world)

    assert statuses(findings) == [
        ("NACL_BLOCKS_TRAFFIC", Status.UNKNOWN),
        ("NACL_BLOCKS_EPHEMERAL", Status.UNKNOWN),
    ]
    assert findings[0].evidence == (
        "AWS refused ec2:DescribeNetworkAcls.",
        "needs ec2:DescribeNetworkAcls",
    )


def test_network_gap_makes_both_codes_unknown() -> None:
    world = alb_world(nodes_acl=allow_all_acl("acl-nodes"))
    world.gaps.append(
        Gap("network", "vpc-1", "DescribeNetworkAcls was denied", "ec2:DescribeNetworkAcls")
    )

    findings = network_acls.judge(world)

    assert statuses(findings) == [
        ("NACL_BLOCKS_TRAFFIC", Status.UNKNOWN),
        ("NACL_BLOCKS_EPHEMERAL", Status.UNKNOWN),
    ]
    assert findings[0].evidence == (
        "DescribeNetworkAcls was denied",
        "needs ec2:DescribeNetworkAcls",
    )


def test_listener_denied_to_every_client_fails_on_the_client_hop() -> None:
    lb_acl = acl(
        "acl-lb",
        tcp(100, False, "80", "0.0.0.0/0"),
        tcp(110, False, "1024-65535", "0.0.0.0/0"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
    )

    fail = only(
        network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes"))), "NACL_BLOCKS_TRAFFIC"
    )

    assert fail.status is Status.FAIL
    assert fail.evidence[0].startswith(
        "client -> load balancer, zone us-east-1a: acl-lb on subnet-pub-a 10.0.1.0/24 in "
        "us-east-1a inbound from 0.0.0.0/0 tcp 443 (listener 443 of k8s-web) is denied by Rule *"
    )
    assert "--cidr-block 0.0.0.0/0" in fail.fixes[0].text


def test_denying_some_clients_is_a_policy_not_a_block() -> None:
    lb_acl = acl(
        "acl-lb",
        AclEntry(50, False, "-1", "198.51.100.0/24", "deny"),
        AclEntry(100, False, "-1", "0.0.0.0/0", "allow"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
    )

    findings = network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes")))

    assert statuses(findings) == ALL_PASS


def test_listener_open_only_to_private_addresses_blocks_internet_clients() -> None:
    lb_acl = acl(
        "acl-lb",
        tcp(100, False, "443", "10.0.0.0/8"),
        tcp(110, False, "1024-65535", "0.0.0.0/0"),
        AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
    )

    findings = network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes")))

    assert only(findings, "NACL_BLOCKS_TRAFFIC").status is Status.FAIL


def test_replies_to_clients_denied_in_the_lb_subnet() -> None:
    lb_acl = acl(
        "acl-lb",
        AclEntry(100, False, "-1", "0.0.0.0/0", "allow"),
        tcp(100, True, "1024-65535", "10.0.0.0/16"),
    )

    fail = only(
        network_acls.judge(alb_world(lb_acl, allow_all_acl("acl-nodes"))), "NACL_BLOCKS_EPHEMERAL"
    )

    assert fail.status is Status.FAIL
    assert fail.evidence == (
        "client -> load balancer, zone us-east-1a: acl-lb on subnet-pub-a 10.0.1.0/24 in "
        "us-east-1a outbound to 0.0.0.0/0 tcp 1024-65535 (replies of k8s-web to clients) is "
        "denied by Rule * | All traffic | All | All | 0.0.0.0/0 | Deny (no rule allows it; "
        "implicit deny)",
    )
    assert "--rule-number 110 \\\n  --egress \\\n" in fail.fixes[0].text


VPC_ONLY_NODES = acl(
    "acl-nodes",
    tcp(100, False, "30000-32767", "10.0.0.0/16"),
    tcp(100, True, "1024-65535", "10.0.0.0/16"),
)


def test_preserved_client_ip_must_be_admitted_by_the_target_subnet() -> None:
    findings = network_acls.judge(nlb_world(VPC_ONLY_NODES, preserve=None))

    traffic = only(findings, "NACL_BLOCKS_TRAFFIC")
    assert traffic.status is Status.FAIL
    assert traffic.evidence == (
        "load balancer -> target, zone us-east-1a: acl-nodes on subnet-nodes-a 10.0.11.0/24 in "
        "us-east-1a inbound from 0.0.0.0/0 tcp 31000 (traffic to targets in subnet-nodes-a) is "
        "denied by Rule * | All traffic | All | All | 0.0.0.0/0 | Deny (no rule allows it; "
        "implicit deny)",
    )
    assert "--cidr-block 0.0.0.0/0" in traffic.fixes[0].text
    ephemeral = only(findings, "NACL_BLOCKS_EPHEMERAL")
    assert ephemeral.status is Status.FAIL
    assert (
        "outbound to 0.0.0.0/0 tcp 1024-65535 (replies from port 31000 to clients"
        in (ephemeral.evidence[0])
    )


def test_without_client_ip_preservation_the_lb_subnet_is_the_source() -> None:
    findings = network_acls.judge(nlb_world(VPC_ONLY_NODES, preserve="false"))

    assert statuses(findings) == ALL_PASS


# ----------------------------------------------------------------- kube-proxy hop


def nodes_acl(*entries: AclEntry) -> NetworkAcl:
    """The ACL of both node subnets: the NodePorts from the load balancer subnets, replies."""
    return acl(
        "acl-nodes",
        tcp(100, False, "30000-32767", "10.0.0.0/22"),
        tcp(100, True, "1024-65535", "10.0.0.0/22"),
        *entries,
    )


def split_nodes_world(nodes: NetworkAcl) -> Snapshot:
    subnets = (
        replace(NODES_1A, network_acl_id=nodes.id),
        replace(NODES_1B, network_acl_id=nodes.id),
    )
    return node_port_world(OPEN_NODES, acls=[nodes], subnets=subnets)


def test_node_acl_without_node_to_node_rules_blocks_the_kube_proxy_hop() -> None:
    findings = network_acls.judge(split_nodes_world(nodes_acl()))

    outbound, inbound = [f for f in findings if f.code == "NACL_BLOCKS_TRAFFIC"]
    assert (outbound.status, inbound.status) == (Status.FAIL, Status.FAIL)
    assert outbound.summary == (
        "Network ACL acl-nodes drops outbound traffic of k8s-web on port(s) 8080."
    )
    assert outbound.evidence == (
        "node -> pod (kube-proxy), zone us-east-1a: acl-nodes on subnet-nodes-a 10.0.11.0/24 in "
        "us-east-1a outbound to 10.0.12.0/24 tcp 8080 (traffic and health check of k8s-web from "
        "NodePort 30780, forwarded to pods in subnet-nodes-b) is denied by Rule * | All traffic "
        "| All | All | 0.0.0.0/0 | Deny (no rule allows it; implicit deny)",
        "node -> pod (kube-proxy), zone us-east-1b: acl-nodes on subnet-nodes-b 10.0.12.0/24 in "
        "us-east-1b outbound to 10.0.11.0/24 tcp 8080 (traffic and health check of k8s-web from "
        "NodePort 30780, forwarded to pods in subnet-nodes-a) is denied by Rule * | All traffic "
        "| All | All | 0.0.0.0/0 | Deny (no rule allows it; implicit deny)",
    )
    assert inbound.evidence[0] == (
        "node -> pod (kube-proxy), zone us-east-1b: acl-nodes on subnet-nodes-b 10.0.12.0/24 in "
        "us-east-1b inbound from 10.0.11.0/24 tcp 8080 (traffic and health check of k8s-web "
        "from NodePort 30780, forwarded to pods in subnet-nodes-b) is denied by Rule * | All "
        "traffic | All | All | 0.0.0.0/0 | Deny (no rule allows it; implicit deny)"
    )
    cli = outbound.fixes[0].text
    assert "--port-range From=8080,To=8080 \\\n  --cidr-block 10.0.12.0/24 \\\n" in cli
    assert "--port-range From=8080,To=8080 \\\n  --cidr-block 10.0.11.0/24 \\\n" in cli
    replies = [f for f in findings if f.code == "NACL_BLOCKS_EPHEMERAL"]
    assert {f.status for f in replies} == {Status.FAIL}
    assert (
        "node -> pod (kube-proxy), zone us-east-1a: acl-nodes on subnet-nodes-a 10.0.11.0/24 in "
        "us-east-1a inbound from 10.0.12.0/24 tcp 1024-65535 (replies from pods in "
        "subnet-nodes-b port 8080) is denied by Rule * | All traffic | All | All | 0.0.0.0/0 | "
        "Deny (no rule allows it; implicit deny)"
    ) in [line for f in replies for line in f.evidence]


def test_node_acl_open_between_node_subnets_passes_the_kube_proxy_hop() -> None:
    between = (
        AclEntry(200, False, "-1", "10.0.8.0/21", "allow"),
        AclEntry(200, True, "-1", "10.0.8.0/21", "allow"),
    )

    findings = network_acls.judge(split_nodes_world(nodes_acl(*between)))

    assert statuses(findings) == ALL_PASS
    assert (
        "node -> pod (kube-proxy): subnet-nodes-a (us-east-1a) -> subnet-nodes-b (us-east-1b) "
        "[acl-nodes -> acl-nodes] tcp 8080 from 10.0.11.0/24, replies 1024-65535"
    ) in only(findings, "NACL_BLOCKS_TRAFFIC").evidence


def test_nodes_of_one_subnet_cross_no_acl_on_the_kube_proxy_hop() -> None:
    one = subnet("subnet-nodes", "10.0.8.0/21", "us-east-1a", "acl-nodes")
    world = node_port_world(OPEN_NODES, acls=[nodes_acl()], subnets=(one, one))

    findings = network_acls.judge(world)

    assert statuses(findings) == ALL_PASS
    assert (
        "node -> pod (kube-proxy): subnet-nodes (us-east-1a) -> subnet-nodes (us-east-1a): "
        "one subnet, no network ACL crossed"
    ) in only(findings, "NACL_BLOCKS_TRAFFIC").evidence
