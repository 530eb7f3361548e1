"""The network path evaluator: ACL and security-group semantics, and worlds built from scenarios.

Snapshots are built by hand the way the collectors fill them from the AWS APIs: ACL
protocols as numbers ("-1", "6"), security-group protocols as names ("-1", "tcp"), a
"self" reference as the group's own id, and every subnet associated with an ACL (the VPC's
default ACL, rule 100 allowing everything, where a scenario names none).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from checks import netpath
from checks.models import Finding, Status
from checks.rules import network_acls, security_groups
from checks.snapshot import (
    AclEntry,
    HealthCheck,
    Instance,
    Listener,
    LoadBalancer,
    NetworkAcl,
    SecurityGroup,
    SgRule,
    Snapshot,
    Subnet,
    TargetGroup,
    TargetHealth,
)

# ------------------------------------------------------------------ builders


def with_star(*entries: AclEntry) -> tuple[AclEntry, ...]:
    """``entries`` and the final deny-all rules, as DescribeNetworkAcls lists them."""
    return (
        *entries,
        AclEntry(32767, False, "-1", "0.0.0.0/0", "deny"),
        AclEntry(32767, True, "-1", "0.0.0.0/0", "deny"),
    )


def allow_all_acl(acl_id: str = "acl-default") -> NetworkAcl:
    return NetworkAcl(
        acl_id,
        True,
        with_star(
            AclEntry(100, False, "-1", "0.0.0.0/0", "allow"),
            AclEntry(100, True, "-1", "0.0.0.0/0", "allow"),
        ),
    )


def tcp(
    rule: int, egress: bool, ports: str, cidr: str, action: Literal["allow", "deny"] = "allow"
) -> AclEntry:
    lo, _, hi = ports.partition("-")
    return AclEntry(rule, egress, "6", cidr, action, int(lo), int(hi or lo))


def sg_tcp(ports: str, cidrs: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> SgRule:
    lo, _, hi = ports.partition("-")
    return SgRule("tcp", int(lo), int(hi or lo), cidrs, groups)


def sg_all(cidrs: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> SgRule:
    return SgRule("-1", None, None, cidrs, groups)


def group(
    group_id: str, ingress: tuple[SgRule, ...], egress: tuple[SgRule, ...] | None = None
) -> SecurityGroup:
    out = egress if egress is not None else (sg_all(("0.0.0.0/0",)),)
    return SecurityGroup(group_id, group_id.removeprefix("sg-"), "vpc-1", ingress, out)


def subnet(subnet_id: str, cidr: str, az: str, acl: str = "acl-default") -> Subnet:
    return Subnet(subnet_id, cidr, az, "vpc-1", subnet_id.startswith("subnet-pub"), acl)


def pod(namespace: str, name: str, ip: str, node: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"nodeName": node},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def node(name: str, zone: str, instance_id: str) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
    }


PUBLIC_A = subnet("subnet-pub-a", "10.0.1.0/24", "us-east-1a")
PUBLIC_B = subnet("subnet-pub-b", "10.0.2.0/24", "us-east-1b")


def snapshot(
    lb: LoadBalancer,
    subnets: list[Subnet],
    groups: list[SecurityGroup],
    instances: list[Instance],
    acls: list[NetworkAcl] | None = None,
    pods: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
) -> Snapshot:
    all_acls = [allow_all_acl(), *(acls or [])]
    return Snapshot(
        namespace="ns",
        service_name="svc",
        region="us-east-1",
        vpc_cidr="10.0.0.0/16",
        load_balancers=[lb],
        subnets={s.id: s for s in subnets},
        network_acls={a.id: a for a in all_acls},
        security_groups={g.id: g for g in groups},
        instances={i.id: i for i in instances},
        pods=pods or [],
        nodes=nodes or [],
    )


def target_group(
    name: str, target_type: str, protocol: str, port: int, targets: list[str], **attributes: str
) -> TargetGroup:
    return TargetGroup(
        name,
        f"arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/{name}/0123",
        target_type,
        protocol,
        port,
        HealthCheck(protocol, "traffic-port"),
        attributes,
        tuple(TargetHealth(t, port, "healthy") for t in targets),
    )


def of(findings: list[Finding], code: str, status: Status) -> list[Finding]:
    return [f for f in findings if f.code == code and f.status is status]


def judge_all(snap: Snapshot) -> list[Finding]:
    return [*security_groups.judge(snap), *network_acls.judge(snap)]


def problems(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.is_problem}


# ------------------------------------------------- worlds mirroring scenarios


def clb_nacl_ephemeral_world() -> Snapshot:
    """A Classic LB whose node subnet ACL lets the NodePort in but no reply out."""
    nodes_a = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a", "acl-nodes-tight")
    tight = NetworkAcl(
        "acl-nodes-tight",
        False,
        with_star(
            tcp(100, False, "30000-32767", "10.0.0.0/16"),
            tcp(110, False, "1024-65535", "0.0.0.0/0"),
            tcp(100, True, "443", "0.0.0.0/0"),
            tcp(110, True, "80", "0.0.0.0/0"),
        ),
        "nodes-tight",
    )
    elb = group("sg-elb", (sg_tcp("80", ("0.0.0.0/0",)),))
    nodes = group(
        "sg-nodes", (sg_tcp("30000-32767", groups=("sg-elb",)), sg_all(groups=("sg-nodes",)))
    )
    lb = LoadBalancer(
        "a71c5e0d9b3a4f2e8c1d0b9a8f7e6d5c",
        "classic",
        "a71c.us-east-1.elb.amazonaws.com",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        ("sg-elb",),
        {"idle_timeout": "60", "cross_zone": "true"},
        (Listener(80, "HTTP", instance_port=30900, instance_protocol="HTTP"),),
        instances=(TargetHealth("i-0c3300000000000a1", None, "OutOfService"),),
        serves="service/api/orders",
    )
    instance = Instance(
        "i-0c3300000000000a1", nodes_a.id, "10.0.11.20", "us-east-1a", ("sg-nodes",)
    )
    return snapshot(lb, [PUBLIC_A, PUBLIC_B, nodes_a], [elb, nodes], [instance], [tight])


def alb_custom_sg_world() -> Snapshot:
    """An ALB with its own group; the nodes trust only the cluster group."""
    nodes_a = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a")
    nodes_b = subnet("subnet-nodes-b", "10.0.12.0/24", "us-east-1b")
    alb = group("sg-payments-alb", (sg_tcp("80", ("0.0.0.0/0",)),))
    cluster = group("sg-cluster", (sg_all(groups=("sg-cluster",)),))
    nodes = group(
        "sg-nodes", (sg_all(groups=("sg-cluster",)), sg_tcp("443", groups=("sg-cluster",)))
    )
    tg = target_group(
        "k8s-payments-80", "instance", "HTTP", 31443, ["i-0f9000000000000a1", "i-0f9000000000000b1"]
    )
    lb = LoadBalancer(
        "k8s-payments-checkout-2d3e4f5a6b",
        "application",
        "k8s-payments.us-east-1.elb.amazonaws.com",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        ("sg-payments-alb",),
        {"idle_timeout.timeout_seconds": "60"},
        (Listener(80, "HTTP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
        serves="ingress/payments/checkout",
    )
    instances = [
        Instance("i-0f9000000000000a1", nodes_a.id, "10.0.11.20", "us-east-1a", ("sg-nodes",)),
        Instance("i-0f9000000000000b1", nodes_b.id, "10.0.12.40", "us-east-1b", ("sg-nodes",)),
    ]
    return snapshot(lb, [PUBLIC_A, PUBLIC_B, nodes_a, nodes_b], [alb, cluster, nodes], instances)


def nlb_listener_port_only_world() -> Snapshot:
    """An internal NLB with ip targets; the node subnets' ACL opens only the listener port."""
    nodes_a = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a", "acl-kafka-only")
    nodes_b = subnet("subnet-nodes-b", "10.0.12.0/24", "us-east-1b", "acl-kafka-only")
    kafka = NetworkAcl(
        "acl-kafka-only",
        False,
        with_star(tcp(100, False, "9092", "10.0.0.0/16"), tcp(100, True, "9092", "10.0.0.0/16")),
        "kafka-only",
    )
    nodes = group("sg-nodes", (sg_all(("10.0.0.0/16",)),))
    tg = target_group("k8s-kafka-9092", "ip", "TCP", 9092, ["10.0.11.21", "10.0.12.21"])
    lb = LoadBalancer(
        "k8s-kafka-broker-8e7d6c5b4a",
        "network",
        "k8s-kafka.elb.us-east-1.amazonaws.com",
        "internal",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        (),
        {"load_balancing.cross_zone.enabled": "true"},
        (Listener(9092, "TCP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
        serves="service/kafka/broker",
    )
    instances = [
        Instance("i-0a2000000000000a1", nodes_a.id, "10.0.11.20", "us-east-1a", ("sg-nodes",)),
        Instance("i-0a2000000000000b1", nodes_b.id, "10.0.12.40", "us-east-1b", ("sg-nodes",)),
    ]
    pods = [
        pod("kafka", "broker-0", "10.0.11.21", "ip-10-0-11-20.ec2.internal"),
        pod("kafka", "broker-1", "10.0.12.21", "ip-10-0-12-40.ec2.internal"),
    ]
    nodes_k8s = [
        node("ip-10-0-11-20.ec2.internal", "us-east-1a", "i-0a2000000000000a1"),
        node("ip-10-0-12-40.ec2.internal", "us-east-1b", "i-0a2000000000000b1"),
    ]
    return snapshot(
        lb, [PUBLIC_A, PUBLIC_B, nodes_a, nodes_b], [nodes], instances, [kafka], pods, nodes_k8s
    )


def alb_healthy_world() -> Snapshot:
    """An ALB in ip mode, open groups, default ACLs."""
    nodes_a = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a")
    nodes_b = subnet("subnet-nodes-b", "10.0.12.0/24", "us-east-1b")
    alb = group("sg-alb", (sg_tcp("80", ("0.0.0.0/0",)), sg_tcp("443", ("0.0.0.0/0",))))
    nodes = group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)), sg_all(groups=("sg-nodes",))))
    tg = target_group("k8s-shop-catalog-http", "ip", "HTTP", 8000, ["10.0.11.14", "10.0.12.15"])
    lb = LoadBalancer(
        "k8s-shop-catalog-9a8b7c6d5e",
        "application",
        "k8s-shop.us-east-1.elb.amazonaws.com",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        ("sg-alb",),
        {"idle_timeout.timeout_seconds": "120"},
        (Listener(80, "HTTP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
        serves="ingress/shop/catalog",
    )
    instances = [
        Instance("i-0d4400000000000a1", nodes_a.id, "10.0.11.20", "us-east-1a", ("sg-nodes",)),
        Instance("i-0d4400000000000b2", nodes_b.id, "10.0.12.40", "us-east-1b", ("sg-nodes",)),
    ]
    pods = [
        pod("shop", "catalog-58b9c-aa111", "10.0.11.14", "ip-10-0-11-20.ec2.internal"),
        pod("shop", "catalog-58b9c-bb222", "10.0.12.15", "ip-10-0-12-40.ec2.internal"),
    ]
    nodes_k8s = [
        node("ip-10-0-11-20.ec2.internal", "us-east-1a", "i-0d4400000000000a1"),
        node("ip-10-0-12-40.ec2.internal", "us-east-1b", "i-0d4400000000000b2"),
    ]
    return snapshot(
        lb, [PUBLIC_A, PUBLIC_B, nodes_a, nodes_b], [alb, nodes], instances, None, pods, nodes_k8s
    )


# ------------------------------------------------------- scenario-derived tests


def test_clb_with_tight_node_acl_fails_only_on_ephemeral_replies() -> None:
    findings = judge_all(clb_nacl_ephemeral_world())

    assert problems(findings) == {"NACL_BLOCKS_EPHEMERAL"}
    [fail] = of(findings, "NACL_BLOCKS_EPHEMERAL", Status.FAIL)
    assert fail.resource == "acl-nodes-tight"
    assert fail.summary.startswith(
        "Network ACL acl-nodes-tight (nodes-tight) drops outbound return traffic of "
        "a71c5e0d9b3a4f2e8c1d0b9a8f7e6d5c on ephemeral ports 1024-65535"
    )
    assert (
        "load balancer -> target, zone us-east-1a: acl-nodes-tight on subnet-nodes-a 10.0.11.0/24 "
        "in us-east-1a outbound to 10.0.1.0/24 tcp 1024-65535 (replies from port 30900 to "
        "load balancer subnet 10.0.1.0/24) is denied by "
        "Rule * | All traffic | All | All | 0.0.0.0/0 | Deny (no rule allows it; implicit deny)"
    ) in fail.evidence
    assert of(findings, "SG_BLOCKS_TRAFFIC", Status.PASS)
    assert of(findings, "NACL_BLOCKS_TRAFFIC", Status.PASS)


def test_clb_ephemeral_fix_appends_after_last_rule_for_each_lb_subnet() -> None:
    [fail] = of(
        network_acls.judge(clb_nacl_ephemeral_world()), "NACL_BLOCKS_EPHEMERAL", Status.FAIL
    )

    cli, terraform = fail.fixes
    assert cli.language == "shell"
    assert cli.text == (
        "aws ec2 create-network-acl-entry \\\n"
        "  --region us-east-1 \\\n"
        "  --network-acl-id acl-nodes-tight \\\n"
        "  --rule-number 120 \\\n"
        "  --egress \\\n"
        "  --protocol tcp \\\n"
        "  --port-range From=1024,To=65535 \\\n"
        "  --cidr-block 10.0.1.0/24 \\\n"
        "  --rule-action allow\n"
        "aws ec2 create-network-acl-entry \\\n"
        "  --region us-east-1 \\\n"
        "  --network-acl-id acl-nodes-tight \\\n"
        "  --rule-number 130 \\\n"
        "  --egress \\\n"
        "  --protocol tcp \\\n"
        "  --port-range From=1024,To=65535 \\\n"
        "  --cidr-block 10.0.2.0/24 \\\n"
        "  --rule-action allow\n"
    )
    assert terraform.language == "hcl"
    assert 'resource "aws_network_acl_rule" "acl_nodes_tight_egress_120" {' in terraform.text
    assert '  cidr_block     = "10.0.2.0/24"\n' in terraform.text
    assert "  egress         = true\n" in terraform.text


def test_alb_with_untrusted_custom_group_fails_on_node_group_only() -> None:
    findings = judge_all(alb_custom_sg_world())

    assert problems(findings) == {"SG_BLOCKS_TRAFFIC"}
    [fail] = of(findings, "SG_BLOCKS_TRAFFIC", Status.FAIL)
    assert fail.resource == "sg-nodes"
    assert fail.summary == (
        "Security group sg-nodes (nodes) does not let in traffic of "
        "k8s-payments-checkout-2d3e4f5a6b on tcp 31443."
    )
    assert (
        "load balancer -> target, zone us-east-1a: no ingress rule of sg-nodes on instance "
        "i-0f9000000000000a1 admits traffic and health check on tcp 31443 from load balancer "
        "subnet 10.0.1.0/24 or group sg-payments-alb"
    ) in fail.evidence
    cli, _ = fail.fixes
    assert cli.text == (
        "aws ec2 authorize-security-group-ingress \\\n"
        "  --region us-east-1 \\\n"
        "  --group-id sg-nodes \\\n"
        '  --ip-permissions \'[{"IpProtocol":"tcp","FromPort":31443,"ToPort":31443,'
        '"UserIdGroupPairs":[{"GroupId":"sg-payments-alb",'
        '"Description":"eks504: load balancer path"}]}]\'\n'
    )


def test_nlb_with_listener_port_only_acl_fails_on_ephemeral_ranges_around_it() -> None:
    findings = judge_all(nlb_listener_port_only_world())

    assert problems(findings) == {"NACL_BLOCKS_EPHEMERAL"}
    [fail] = of(findings, "NACL_BLOCKS_EPHEMERAL", Status.FAIL)
    assert fail.resource == "acl-kafka-only"
    assert "on ephemeral ports 1024-9091, 9093-65535" in fail.summary
    assert (
        "load balancer -> target, zone us-east-1b: acl-kafka-only on subnet-nodes-b 10.0.12.0/24 "
        "in us-east-1b outbound to 10.0.1.0/24 tcp 9093-65535 (replies from port 9092 to "
        "load balancer subnet 10.0.1.0/24) is denied by "
        "Rule * | All traffic | All | All | 0.0.0.0/0 | Deny (no rule allows it; implicit deny)"
    ) in fail.evidence
    _, terraform = fail.fixes
    assert terraform.text.count('resource "aws_network_acl_rule"') == 2
    assert "rule_number    = 110" in terraform.text
    assert "rule_number    = 120" in terraform.text


def test_healthy_alb_passes_every_network_code() -> None:
    findings = judge_all(alb_healthy_world())

    assert [(f.code, f.status) for f in findings] == [
        ("SG_BLOCKS_TRAFFIC", Status.PASS),
        ("NACL_BLOCKS_TRAFFIC", Status.PASS),
        ("NACL_BLOCKS_EPHEMERAL", Status.PASS),
    ]
    [sg_pass] = of(findings, "SG_BLOCKS_TRAFFIC", Status.PASS)
    assert (
        "load balancer -> target: k8s-shop-catalog-9a8b7c6d5e [sg-alb] -> pod "
        "shop/catalog-58b9c-aa111 (10.0.11.14) on i-0d4400000000000a1 [sg-nodes] tcp 8000 "
        "(traffic and health check) from load balancer subnet 10.0.1.0/24 or group sg-alb"
    ) in sg_pass.evidence


# ------------------------------------------------------------- ACL evaluator

ACL_RULES = (
    tcp(90, False, "22", "0.0.0.0/0", "deny"),
    tcp(100, False, "80-443", "10.0.0.0/16"),
    AclEntry(200, False, "-1", "10.0.1.0/24", "deny"),
    tcp(300, False, "1024-65535", "0.0.0.0/0"),
)
ACL = NetworkAcl("acl-1", False, ACL_RULES)


def test_first_matching_rule_decides_even_when_a_later_rule_would_deny() -> None:
    decision = netpath.acl_decision(ACL, False, "6", "10.0.1.7", 443)

    assert decision == netpath.Decision(True, ACL_RULES[1])
    assert decision.rule_number == 100


def test_earlier_deny_wins_over_a_later_allow() -> None:
    assert netpath.acl_decision(ACL, False, "6", "10.0.1.7", 2000).rule_number == 200
    assert not netpath.acl_decision(ACL, False, "6", "10.0.1.7", 2000).allowed


def test_no_matching_rule_is_the_implicit_deny() -> None:
    assert netpath.acl_decision(ACL, False, "17", "192.0.2.1", 53) == netpath.Decision(False, None)


def test_listed_final_deny_rule_is_the_star_rule() -> None:
    acl = NetworkAcl("acl-3", False, with_star(tcp(100, True, "443", "0.0.0.0/0")))

    assert netpath.acl_decision(acl, True, "6", "10.0.1.0/24", 8443) == netpath.Decision(False)
    assert netpath.console_acl_rule(acl.entries[-1]) == (
        "Rule * | All traffic | All | All | 0.0.0.0/0 | Deny"
    )
    [gap] = netpath.acl_port_range_gaps(acl, True, "6", "10.0.1.0/24", 1024, 65535)
    assert (gap.lo, gap.hi, gap.entry) == (1024, 65535, None)


def test_missing_acl_allows_everything() -> None:
    assert netpath.acl_decision(None, True, "6", "10.0.0.0/8", 1) == netpath.Decision(True, None)


def test_range_is_denied_when_any_address_is_denied() -> None:
    # 10.0.0.0/8 is allowed on 443 only inside 10.0.0.0/16: the rest hits the implicit deny.
    assert netpath.acl_decision(ACL, False, "tcp", "10.0.0.0/8", 443) == netpath.Decision(
        False, None
    )
    assert netpath.acl_decision(ACL, False, "tcp", "10.0.0.0/8", 443, "any").allowed


def test_range_split_across_two_allow_rules_is_allowed() -> None:
    acl = NetworkAcl(
        "acl-2",
        False,
        (tcp(10, True, "443", "10.0.0.0/25"), tcp(20, True, "443", "10.0.0.128/25")),
    )

    decision = netpath.acl_decision(acl, True, "6", "10.0.0.0/24", 443)

    assert decision.allowed
    assert decision.rule_number == 20


def test_port_gaps_report_each_subrange_with_its_deciding_rule() -> None:
    gaps = netpath.acl_port_range_gaps(ACL, False, "6", "10.0.1.0/24", 1, 65535)

    assert [(g.lo, g.hi, g.rule_number) for g in gaps] == [
        (1, 21, 200),
        (22, 22, 90),
        (23, 79, 200),
        (444, 65535, 200),
    ]


def test_console_rendering_of_acl_rules() -> None:
    assert netpath.console_acl_rule(tcp(100, False, "443", "0.0.0.0/0")) == (
        "Rule 100 | Custom TCP | TCP (6) | 443 | 0.0.0.0/0 | Allow"
    )
    assert netpath.console_acl_rule(ACL_RULES[2]) == (
        "Rule 200 | All traffic | All | All | 10.0.1.0/24 | Deny"
    )
    assert netpath.console_acl_rule(tcp(300, True, "1024-65535", "10.0.0.0/16")) == (
        "Rule 300 | Custom TCP | TCP (6) | 1024 - 65535 | 10.0.0.0/16 | Allow"
    )


def test_free_rule_number_sits_just_below_the_deciding_deny() -> None:
    assert netpath.free_rule_number({90, 99, 100}, before=100) == 98
    assert netpath.free_rule_number({1}, before=2) is None


def test_free_rule_number_after_the_last_rule_is_the_next_multiple_of_ten() -> None:
    assert netpath.free_rule_number({100, 105}, before=None) == 110
    assert netpath.free_rule_number(set(), before=None) == 100
    assert netpath.free_rule_number({32760, 32766}, before=None) == 32765


# Property: the evaluator agrees with a brute force over a small address space.

# Rules and peers live in 10.0.0.0/28 plus two ranges around it, so a brute force over
# every address of a peer stays small.
_cidrs = st.one_of(
    st.builds(
        lambda host, length: str(ipaddress.ip_network(f"10.0.0.{host}/{length}", strict=False)),
        st.integers(min_value=0, max_value=15),
        st.integers(min_value=26, max_value=32),
    ),
    st.sampled_from(["0.0.0.0/0", "10.0.1.0/24"]),
)
_entries = st.builds(
    lambda number, egress, proto, cidr, allow, a, b: AclEntry(
        number,
        egress,
        proto,
        cidr,
        "allow" if allow else "deny",
        None if proto == "-1" else min(a, b),
        None if proto == "-1" else max(a, b),
    ),
    st.integers(min_value=1, max_value=60),
    st.booleans(),
    st.sampled_from(["-1", "6", "17"]),
    _cidrs,
    st.booleans(),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=40),
)
_acls = st.lists(_entries, max_size=8, unique_by=lambda e: (e.rule_number, e.egress)).map(
    lambda entries: NetworkAcl("acl-p", False, tuple(entries))
)
_peers = st.builds(
    lambda host, length: str(ipaddress.ip_network(f"10.0.0.{host}/{length}", strict=False)),
    st.integers(min_value=0, max_value=15),
    st.integers(min_value=28, max_value=32),
)


def _brute_address(acl: NetworkAcl, egress: bool, protocol: str, address: str, port: int) -> bool:
    for entry in sorted(acl.entries, key=lambda e: e.rule_number):
        if entry.egress == egress and entry.matches(protocol, address, port):
            return entry.action == "allow"
    return False


def _brute_range(acl: NetworkAcl, egress: bool, protocol: str, peer: str, port: int) -> list[bool]:
    return [
        _brute_address(acl, egress, protocol, str(address), port)
        for address in ipaddress.ip_network(peer)
    ]


@settings(max_examples=300, deadline=None)
@given(
    _acls,
    st.booleans(),
    st.sampled_from(["6", "17"]),
    _peers,
    st.integers(min_value=1, max_value=41),
)
def test_acl_decision_matches_brute_force(
    acl: NetworkAcl, egress: bool, protocol: str, peer: str, port: int
) -> None:
    verdicts = _brute_range(acl, egress, protocol, peer, port)

    assert netpath.acl_decision(acl, egress, protocol, peer, port).allowed == all(verdicts)
    assert netpath.acl_decision(acl, egress, protocol, peer, port, "any").allowed == any(verdicts)


@settings(max_examples=300, deadline=None)
@given(
    _acls,
    st.booleans(),
    st.sampled_from(["6", "17"]),
    _peers,
    st.integers(min_value=1, max_value=41),
    st.integers(min_value=1, max_value=41),
)
def test_port_gaps_match_brute_force(
    acl: NetworkAcl, egress: bool, protocol: str, peer: str, a: int, b: int
) -> None:
    lo, hi = min(a, b), max(a, b)
    gaps = netpath.acl_port_range_gaps(acl, egress, protocol, peer, lo, hi)

    denied = {p for g in gaps for p in range(g.lo, g.hi + 1)}
    expected = {
        p for p in range(lo, hi + 1) if not all(_brute_range(acl, egress, protocol, peer, p))
    }
    assert denied == expected
    for gap in gaps:
        for port in range(gap.lo, gap.hi + 1):
            assert netpath.acl_decision(acl, egress, protocol, peer, port).entry == gap.entry


# ------------------------------------------------------------ managed prefix lists


def test_prefix_list_entries_count_as_cidrs_of_the_rule() -> None:
    listed = group("sg-nodes", (SgRule("tcp", 8000, 8000, prefix_list_ids=("pl-lb",)),))
    lists = {"pl-lb": ("10.0.1.0/25", "10.0.1.128/25")}

    coverage = netpath.sg_coverage([listed], "ingress", "tcp", "10.0.1.0/24", (), 8000, lists)

    assert coverage == netpath.SgCoverage(
        True, True, ("sg-nodes (nodes) ingress tcp 8000 from pl-lb",), (), ("pl-lb",)
    )


def test_prefix_list_missing_part_of_the_range_admits_only_some() -> None:
    listed = group("sg-nodes", (SgRule("tcp", 8000, 8000, prefix_list_ids=("pl-lb",)),))

    coverage = netpath.sg_coverage(
        [listed], "ingress", "tcp", "10.0.1.0/24", (), 8000, {"pl-lb": ("10.0.1.0/25",)}
    )

    assert (coverage.full, coverage.some, coverage.prefix_lists) == (False, True, ())
    assert coverage.consulted == ("pl-lb",)


def test_prefix_list_without_entries_in_the_snapshot_stays_unknown() -> None:
    listed = group("sg-nodes", (SgRule("tcp", 8000, 8000, prefix_list_ids=("pl-lb",)),))

    coverage = netpath.sg_coverage([listed], "ingress", "tcp", "10.0.1.0/24", (), 8000, {})

    assert (coverage.full, coverage.some) == (False, False)
    assert (coverage.prefix_lists, coverage.consulted) == (("pl-lb",), ())


def test_prefix_list_of_a_rule_on_another_port_is_not_consulted() -> None:
    listed = group("sg-nodes", (SgRule("tcp", 9000, 9000, prefix_list_ids=("pl-lb",)),))

    coverage = netpath.sg_coverage(
        [listed], "ingress", "tcp", "10.0.1.0/24", (), 8000, {"pl-lb": ("10.0.0.0/16",)}
    )

    assert coverage == netpath.SgCoverage(False, False)


# ------------------------------------------------------- security groups for pods


def policy(
    name: str,
    group_ids: list[str],
    pod_selector: dict[str, Any] | None = None,
    account_selector: dict[str, Any] | None = None,
    namespace: str = "web",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"securityGroups": {"groupIds": group_ids}}
    if pod_selector is not None:
        spec["podSelector"] = pod_selector
    if account_selector is not None:
        spec["serviceAccountSelector"] = account_selector
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    }


def account(name: str, labels: dict[str, str], namespace: str = "web") -> dict[str, Any]:
    return {
        "kind": "ServiceAccount",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
    }


def labelled_pod(labels: dict[str, str], account_name: str | None = None) -> dict[str, Any]:
    found = pod("web", "web-1", "10.0.11.14", "ip-10-0-11-20")
    found["metadata"]["labels"] = labels
    if account_name is not None:
        found["spec"]["serviceAccountName"] = account_name
    return found


def sgp_snapshot(
    policies: list[dict[str, Any]], accounts: list[dict[str, Any]] | None = None
) -> Snapshot:
    return Snapshot(
        namespace="web",
        service_name="web",
        security_group_policies=policies,
        service_accounts=accounts or [],
    )


def test_label_selector_reads_match_labels_and_every_expression_operator() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "NotIn", "values": ["true"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    labels = {"app": "web", "tier": "edge", "team": "a"}

    assert netpath.label_selector_matches(selector, labels)
    assert not netpath.label_selector_matches(selector, {**labels, "tier": "back"})
    assert not netpath.label_selector_matches(selector, {**labels, "canary": "true"})
    assert netpath.label_selector_matches(selector, {**labels, "canary": "false"})
    assert not netpath.label_selector_matches(selector, {"app": "web", "tier": "edge"})
    assert not netpath.label_selector_matches(selector, {**labels, "legacy": "1"})
    assert not netpath.label_selector_matches(selector, {**labels, "app": "api"})


def test_empty_selector_matches_every_pod_and_an_unknown_operator_none() -> None:
    assert netpath.label_selector_matches({}, {"app": "web"})
    assert not netpath.label_selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]},
        {"app": "web"},
    )


def test_policies_that_select_the_pod_add_up_their_groups() -> None:
    world = sgp_snapshot(
        [
            policy("db", ["sg-db", "sg-shared"], {"matchLabels": {"app": "web"}}),
            policy("cache", ["sg-cache", "sg-shared"], {}),
            policy("other-app", ["sg-other"], {"matchLabels": {"app": "api"}}),
            policy("other-namespace", ["sg-x"], {}, namespace="api"),
        ]
    )

    found = netpath.pod_policy_groups(world, labelled_pod({"app": "web"}))

    assert found == netpath.PodGroups(("sg-db", "sg-shared", "sg-cache"), ("db", "cache"))


def test_policy_with_both_selectors_needs_both_to_match() -> None:
    both = policy("db", ["sg-db"], {"matchLabels": {"app": "web"}}, {"matchLabels": {"db": "y"}})
    accounts = [account("web", {"db": "y"}), account("default", {})]
    world = sgp_snapshot([both], accounts)

    matched = netpath.pod_policy_groups(world, labelled_pod({"app": "web"}, "web"))
    default_account = netpath.pod_policy_groups(world, labelled_pod({"app": "web"}))
    other_labels = netpath.pod_policy_groups(world, labelled_pod({"app": "api"}, "web"))

    assert matched == netpath.PodGroups(("sg-db",), ("db",))
    assert default_account == netpath.PodGroups((), ())
    assert other_labels == netpath.PodGroups((), ())


def test_policy_without_selector_or_groups_is_ignored_like_the_controller_does() -> None:
    world = sgp_snapshot([policy("no-selector", ["sg-a"]), policy("no-groups", [], {})])

    assert netpath.pod_policy_groups(world, labelled_pod({"app": "web"})) == netpath.PodGroups(
        (), ()
    )


def test_host_network_pod_keeps_the_node_groups() -> None:
    host = labelled_pod({"app": "web"})
    host["spec"]["hostNetwork"] = True

    found = netpath.pod_policy_groups(sgp_snapshot([policy("all", ["sg-a"], {})]), host)

    assert found == netpath.PodGroups((), ())


def test_service_account_selector_without_the_account_is_unknown() -> None:
    world = sgp_snapshot([policy("db", ["sg-db"], None, {"matchLabels": {"db": "y"}})])

    found = netpath.pod_policy_groups(world, labelled_pod({"app": "web"}, "web"))

    assert found == netpath.PodGroups(
        (),
        (),
        "ServiceAccount web/web of pod web-1 was not found, so whether "
        "SecurityGroupPolicy db gives the pod its own security groups is unknown",
    )


# ----------------------------------------------------------------- kube-proxy hop

NODES_1A = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a")
NODES_1B = subnet("subnet-nodes-b", "10.0.12.0/24", "us-east-1b")
NODE_A = Instance("i-0a", NODES_1A.id, "10.0.11.20", "us-east-1a", ("sg-nodes",))
NODE_B = Instance("i-0b", NODES_1B.id, "10.0.12.40", "us-east-1b", ("sg-nodes",))


def node_port_world(
    nodes: SecurityGroup,
    policy_name: str | None = "Cluster",
    target_port: int | str = 8080,
    acls: list[NetworkAcl] | None = None,
    subnets: tuple[Subnet, Subnet] = (NODES_1A, NODES_1B),
) -> Snapshot:
    """An ALB on NodePort 30780 of both nodes; one ready pod on each node, port 8080."""
    alb = group("sg-alb", (sg_tcp("80", ("0.0.0.0/0",)),))
    tg = target_group("tg-web", "instance", "HTTP", 30780, [NODE_A.id, NODE_B.id])
    lb = LoadBalancer(
        "k8s-web",
        "application",
        "k8s-web.example",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        ("sg-alb",),
        {},
        (Listener(80, "HTTP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
    )
    node_a = Instance(NODE_A.id, subnets[0].id, "10.0.11.20", subnets[0].az, ("sg-nodes",))
    node_b = Instance(NODE_B.id, subnets[1].id, "10.0.12.40", subnets[1].az, ("sg-nodes",))
    pods = [
        pod("web", "web-a", "10.0.11.14", "ip-10-0-11-20"),
        pod("web", "web-b", "10.0.12.15", "ip-10-0-12-40"),
    ]
    for each in pods:
        each["spec"]["containers"] = [
            {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
        ]
    nodes_k8s = [
        node("ip-10-0-11-20", "us-east-1a", NODE_A.id),
        node("ip-10-0-12-40", "us-east-1b", NODE_B.id),
    ]
    world = snapshot(
        lb,
        [PUBLIC_A, PUBLIC_B, *dict.fromkeys(subnets)],
        [alb, nodes],
        [node_a, node_b],
        acls,
        pods,
        nodes_k8s,
    )
    spec: dict[str, Any] = {
        "type": "NodePort",
        "ports": [{"port": 80, "targetPort": target_port, "nodePort": 30780, "protocol": "TCP"}],
    }
    if policy_name is not None:
        spec["externalTrafficPolicy"] = policy_name
    world.service = {"kind": "Service", "metadata": {"namespace": "web", "name": "web"}}
    world.service["spec"] = spec
    return world


def hops(world: Snapshot) -> list[tuple[str, str, int, int, tuple[str, ...]]]:
    return sorted(
        (f.node.label, f.pod.label, f.node_port, f.port, f.purposes)
        for f in netpath.plan(world).proxy_flows
    )


OPEN_NODES = group("sg-nodes", (sg_tcp("30000-32767", groups=("sg-alb",)),))


def test_node_port_of_a_cluster_policy_service_leads_to_pods_on_the_other_node() -> None:
    expected = [
        ("instance i-0a", "pod web/web-b (10.0.12.15) on i-0b", 30780, 8080,
         ("traffic", "health check")),
        ("instance i-0b", "pod web/web-a (10.0.11.14) on i-0a", 30780, 8080,
         ("traffic", "health check")),
    ]  # fmt: skip

    assert hops(node_port_world(OPEN_NODES)) == expected
    assert hops(node_port_world(OPEN_NODES, policy_name=None)) == expected


def test_named_target_port_is_read_from_the_pod() -> None:
    assert {h[3] for h in hops(node_port_world(OPEN_NODES, target_port="http"))} == {8080}


def test_unknown_named_target_port_is_a_gap() -> None:
    world = node_port_world(OPEN_NODES, target_port="metrics")

    result = netpath.plan(world)

    assert result.proxy_flows == []
    assert list(dict.fromkeys(result.missing)) == [
        f"targetPort metrics of Service web/web is not a port of pod {name}, so the node -> pod "
        "leg cannot be judged"
        for name in ("web-b", "web-a")
    ]


def test_local_policy_keeps_node_port_traffic_on_the_node() -> None:
    assert hops(node_port_world(OPEN_NODES, policy_name="Local")) == []


def test_pods_behind_ip_targets_have_no_kube_proxy_hop() -> None:
    world = node_port_world(OPEN_NODES)
    lb = world.load_balancers[0]
    tg = target_group("tg-ip", "ip", "HTTP", 8080, ["10.0.11.14", "10.0.12.15"])
    world.load_balancers = [replace(lb, target_groups=(tg,))]

    assert netpath.plan(world).proxy_flows == []


def test_unready_pods_get_no_forwarded_traffic() -> None:
    world = node_port_world(OPEN_NODES)
    world.pods[1]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]

    assert hops(world) == [
        ("instance i-0b", "pod web/web-a (10.0.11.14) on i-0a", 30780, 8080,
         ("traffic", "health check")),
    ]  # fmt: skip


def test_pod_with_an_address_that_is_no_ip_is_skipped_with_a_note() -> None:
    world = node_port_world(OPEN_NODES)
    world.pods[1]["status"]["podIP"] = "not-an-ip"

    result = netpath.plan(world)

    assert hops(world) == [
        ("instance i-0b", "pod web/web-a (10.0.11.14) on i-0a", 30780, 8080,
         ("traffic", "health check")),
    ]  # fmt: skip
    assert (
        "pod web/web-b has podIP 'not-an-ip', which is not an IP address: its node -> pod leg "
        "is skipped"
    ) in result.notes
    # The checks judge the rest of the path instead of failing on the address.
    for check in (network_acls, security_groups):
        assert Status.UNKNOWN not in {f.status for f in check.judge(world)}, check


def test_pod_under_a_policy_is_a_target_with_the_policy_groups() -> None:
    world = node_port_world(OPEN_NODES)
    world.pods[1]["metadata"]["labels"] = {"app": "web"}
    world.security_group_policies = [policy("web-db", ["sg-web-pods"], {})]

    flows = netpath.plan(world).proxy_flows

    pod_b = next(f.pod for f in flows if f.pod.address == "10.0.12.15")
    assert pod_b.group_ids == ("sg-web-pods",)
    assert pod_b.label == (
        "pod web/web-b (10.0.12.15) on i-0b (groups of SecurityGroupPolicy web-db)"
    )
    assert (pod_b.kind, pod_b.instance_id) == ("ip", "i-0b")
