"""SG_BLOCKS_TRAFFIC on hand-built snapshots: references, self, CIDR coverage, clients."""

from __future__ import annotations

from dataclasses import replace

from checks import netpath
from checks.models import Finding, Status
from checks.rules import security_groups
from checks.snapshot import (
    Gap,
    Instance,
    Listener,
    LoadBalancer,
    SecurityGroup,
    SgRule,
    Snapshot,
    TargetHealth,
)
from tests.checks.test_netpath import (
    OPEN_NODES,
    PUBLIC_A,
    PUBLIC_B,
    account,
    group,
    node,
    node_port_world,
    pod,
    policy,
    sg_all,
    sg_tcp,
    subnet,
    target_group,
)
from tests.checks.test_netpath import (
    snapshot as build,
)

NODES_A = subnet("subnet-nodes-a", "10.0.11.0/24", "us-east-1a")
NODES_B = subnet("subnet-nodes-b", "10.0.12.0/24", "us-east-1b")
NODE = Instance("i-0node", NODES_A.id, "10.0.11.20", "us-east-1a", ("sg-nodes",))
OPEN_ALB = group("sg-alb", (sg_tcp("443", ("0.0.0.0/0",)),))


def alb_world(
    nodes: SecurityGroup, alb: SecurityGroup = OPEN_ALB, lb_groups: tuple[str, ...] = ("sg-alb",)
) -> Snapshot:
    """An internet-facing ALB in one subnet; one pod on port 8000, found through its node."""
    tg = target_group("tg-web", "ip", "HTTP", 8000, ["10.0.11.14"])
    lb = LoadBalancer(
        "k8s-web",
        "application",
        "k8s-web.example",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id,),
        lb_groups,
        {},
        (Listener(443, "HTTPS", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
    )
    pods = [pod("web", "web-1", "10.0.11.14", "ip-10-0-11-20")]
    nodes_k8s = [node("ip-10-0-11-20", "us-east-1a", NODE.id)]
    groups = list({g.id: g for g in (alb, nodes)}.values())
    return build(lb, [PUBLIC_A, NODES_A], groups, [NODE], None, pods, nodes_k8s)


def nlb_world(nodes: SecurityGroup, preserve: str | None) -> Snapshot:
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
    return build(lb, [PUBLIC_A, NODES_A], [nodes], [NODE])


def only(findings: list[Finding]) -> Finding:
    [finding] = findings
    return finding


def test_target_group_referencing_the_lb_group_passes() -> None:
    finding = only(
        security_groups.judge(alb_world(group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),))))
    )

    assert finding.status is Status.PASS
    assert finding.evidence == (
        "client -> load balancer: clients 0.0.0.0/0 admitted on tcp 443 by sg-alb",
        "load balancer -> target: k8s-web [sg-alb] -> pod web/web-1 (10.0.11.14) on i-0node "
        "[sg-nodes] tcp 8000 (traffic and health check) from load balancer subnet 10.0.1.0/24 "
        "or group sg-alb",
    )


def test_self_reference_admits_a_load_balancer_that_shares_the_group() -> None:
    nodes = group("sg-nodes", (sg_all(groups=("sg-nodes",)),))

    shared = only(security_groups.judge(alb_world(nodes, lb_groups=("sg-alb", "sg-nodes"))))
    apart = only(security_groups.judge(alb_world(nodes)))

    assert shared.status is Status.PASS
    assert apart.status is Status.FAIL
    assert apart.resource == "sg-nodes"


def test_lb_group_without_egress_to_the_target_fails_with_an_egress_fix() -> None:
    alb = group("sg-alb", (sg_tcp("443", ("0.0.0.0/0",)),), (sg_tcp("443", ("0.0.0.0/0",)),))
    nodes = group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),))

    fail = only(security_groups.judge(alb_world(nodes, alb)))

    assert fail.status is Status.FAIL
    assert fail.resource == "sg-alb"
    assert (
        fail.summary
        == "Security group sg-alb (alb) does not let out traffic of k8s-web on tcp 8000."
    )
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: no egress rule of sg-alb (load balancer "
        "k8s-web) admits traffic and health check to pod web/web-1 (10.0.11.14) on i-0node on "
        "tcp 8000",
    )
    cli, terraform = fail.fixes
    assert cli.text.startswith("aws ec2 authorize-security-group-egress \\\n")
    assert '"UserIdGroupPairs":[{"GroupId":"sg-nodes"' in cli.text
    assert '  type              = "egress"\n' in terraform.text
    assert '  source_security_group_id = "sg-nodes"\n' in terraform.text


def test_two_cidr_rules_that_together_cover_the_lb_subnet_pass() -> None:
    halves = group(
        "sg-nodes", (sg_tcp("8000", ("10.0.1.0/25",)), sg_tcp("8000", ("10.0.1.128/25",)))
    )

    assert only(security_groups.judge(alb_world(halves))).status is Status.PASS


def test_a_rule_covering_half_the_lb_subnet_fails_because_a_node_can_take_any_address() -> None:
    half = group("sg-nodes", (sg_tcp("8000", ("10.0.1.0/25",)),))

    fail = only(security_groups.judge(alb_world(half)))

    assert fail.status is Status.FAIL
    assert fail.evidence[0].endswith(
        "(only part of it: sg-nodes (nodes) ingress tcp 8000 from 10.0.1.0/25)"
    )
    assert '"UserIdGroupPairs":[{"GroupId":"sg-alb"' in fail.fixes[0].text


def test_prefix_list_that_might_admit_is_unknown() -> None:
    listed = group("sg-nodes", (SgRule("tcp", 8000, 8000, prefix_list_ids=("pl-0abc",)),))

    finding = only(security_groups.judge(alb_world(listed)))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "traffic and health check to pod web/web-1 (10.0.11.14) on i-0node on tcp 8000 from "
        "load balancer subnet 10.0.1.0/24 or group sg-alb is admitted by no rule, unless prefix "
        "list(s) pl-0abc hold it; their entries could not be read",
    )


def test_group_missing_from_the_snapshot_is_unknown() -> None:
    world = alb_world(group("sg-nodes", ()))
    del world.security_groups["sg-nodes"]

    finding = only(security_groups.judge(world))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "security group(s) sg-nodes of pod web/web-1 (10.0.11.14) on i-0node were not found: "
        "AWS did not describe them",
    )


def test_unreadable_security_groups_are_unknown_with_the_permission_needed() -> None:
    world = alb_world(group("sg-nodes", ()))
    world.gaps.append(
        Gap("security-groups", "sg-alb,sg-nodes", "access denied", "ec2:DescribeSecurityGroups")
    )

    finding = only(security_groups.judge(world))

    assert finding.status is Status.UNKNOWN
    assert finding.resource == "sg-alb,sg-nodes"
    assert finding.evidence == (
        "security-groups: access denied",
        "needs ec2:DescribeSecurityGroups",
    )


def test_unrelated_gaps_do_not_stop_the_check() -> None:
    world = alb_world(group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),)))
    world.gaps.append(Gap("metrics", "k8s-web", "throttled"))

    assert only(security_groups.judge(world)).status is Status.PASS


def test_listener_open_only_to_private_addresses_blocks_internet_clients() -> None:
    alb = group("sg-alb", (sg_tcp("443", ("10.0.0.0/8",)),))
    nodes = group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),))

    fail = only(security_groups.judge(alb_world(nodes, alb)))

    assert fail.status is Status.FAIL
    assert fail.evidence == (
        "client -> load balancer, zone us-east-1a: no ingress rule of sg-alb admits clients "
        "0.0.0.0/0 on tcp 443",
    )
    assert '"IpRanges":[{"CidrIp":"0.0.0.0/0"' in fail.fixes[0].text


def test_listener_restricted_to_some_clients_passes_and_says_so() -> None:
    alb = group("sg-alb", (sg_tcp("443", ("203.0.113.0/24",)),))
    nodes = group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),))

    finding = only(security_groups.judge(alb_world(nodes, alb)))

    assert finding.status is Status.PASS
    assert finding.evidence[0] == (
        "client -> load balancer: clients 0.0.0.0/0 admitted on tcp 443 by sg-alb (admits part "
        "of it: sg-alb (alb) ingress tcp 443 from 203.0.113.0/24)"
    )


def test_preserved_client_ip_must_be_admitted_by_the_target_group() -> None:
    vpc_only = group("sg-nodes", (sg_tcp("30000-32767", ("10.0.0.0/16",)),))

    fail = only(security_groups.judge(nlb_world(vpc_only, preserve=None)))

    assert fail.status is Status.FAIL
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: no ingress rule of sg-nodes on instance "
        "i-0node admits traffic on tcp 31000 from clients 0.0.0.0/0 (client IP preserved)",
    )
    assert '"IpRanges":[{"CidrIp":"0.0.0.0/0"' in fail.fixes[0].text


def test_without_client_ip_preservation_the_lb_subnet_must_be_admitted() -> None:
    vpc_only = group("sg-nodes", (sg_tcp("30000-32767", ("10.0.0.0/16",)),))

    finding = only(security_groups.judge(nlb_world(vpc_only, preserve="false")))

    assert finding.status is Status.PASS


def test_classic_lb_health_check_node_port_of_a_local_service_must_be_admitted() -> None:
    nodes = group("sg-nodes", (sg_tcp("30900", groups=("sg-elb",)),))
    elb = group("sg-elb", (sg_tcp("80", ("0.0.0.0/0",)),))
    lb = LoadBalancer(
        "clb",
        "classic",
        "clb.example",
        "internet-facing",
        "vpc-1",
        (PUBLIC_A.id,),
        ("sg-elb",),
        {},
        (Listener(80, "TCP", instance_port=30900, instance_protocol="TCP"),),
        instances=(TargetHealth(NODE.id, None, "InService"),),
        serves="service/api/orders",
    )
    world = build(lb, [PUBLIC_A, NODES_A], [elb, nodes], [NODE])
    world.service = {
        "kind": "Service",
        "metadata": {"namespace": "api", "name": "orders"},
        "spec": {"externalTrafficPolicy": "Local", "healthCheckNodePort": 32456},
    }

    fail = only(security_groups.judge(world))

    assert fail.status is Status.FAIL
    assert (
        fail.summary
        == "Security group sg-nodes (nodes) does not let in traffic of clb on tcp 32456."
    )


def test_cross_zone_off_sends_traffic_within_the_zone_and_health_checks_from_every_zone() -> None:
    tg = target_group("tg-nlb", "ip", "TCP", 9092, ["10.0.11.21"])
    lb = LoadBalancer(
        "nlb",
        "network",
        "nlb.example",
        "internal",
        "vpc-1",
        (PUBLIC_A.id, PUBLIC_B.id),
        (),
        {"load_balancing.cross_zone.enabled": "false"},
        (Listener(9092, "TCP", target_group_arns=(tg.arn,)),),
        target_groups=(tg,),
    )
    world = build(lb, [PUBLIC_A, PUBLIC_B, NODES_A, NODES_B], [group("sg-nodes", ())], [NODE])

    flows = netpath.plan(world).flows

    assert sorted((f.lb_subnet.id, f.purposes) for f in flows) == [
        ("subnet-pub-a", ("traffic", "health check")),
        ("subnet-pub-b", ("health check",)),
    ]
    assert {f.target.label for f in flows} == {"target 10.0.11.21 on i-0node"}


def test_pod_ip_without_a_pod_falls_back_to_the_instance_of_its_subnet() -> None:
    world = alb_world(group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),)))
    world.pods = []
    world.instances["i-0other"] = replace(NODE, id="i-0other", subnet_id=NODES_B.id)
    world.subnets[NODES_B.id] = NODES_B

    [flow] = netpath.plan(world).flows

    assert flow.target.label == "target 10.0.11.14 on i-0node"
    assert flow.target.subnet == NODES_A


# ------------------------------------------------------------ managed prefix lists

LISTED_NODES = group("sg-nodes", (SgRule("tcp", 8000, 8000, prefix_list_ids=("pl-0lb",)),))


def test_prefix_list_holding_the_lb_subnet_admits_it() -> None:
    world = alb_world(LISTED_NODES)
    world.prefix_lists = {"pl-0lb": ("10.0.1.0/24", "10.0.2.0/24")}

    finding = only(security_groups.judge(world))

    assert finding.status is Status.PASS


def test_prefix_list_without_the_lb_subnet_fails_and_shows_what_it_holds() -> None:
    world = alb_world(LISTED_NODES)
    world.prefix_lists = {"pl-0lb": ("10.0.2.0/24", "10.0.3.0/24")}

    fail = only(security_groups.judge(world))

    assert fail.status is Status.FAIL
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: no ingress rule of sg-nodes on pod web/web-1 "
        "(10.0.11.14) on i-0node admits traffic and health check on tcp 8000 from load balancer "
        "subnet 10.0.1.0/24 or group sg-alb (prefix list pl-0lb holds 10.0.2.0/24, 10.0.3.0/24)",
    )
    assert '"UserIdGroupPairs":[{"GroupId":"sg-alb"' in fail.fixes[0].text
    assert fail.fixes[2].title == (
        "Or add 10.0.1.0/24 to prefix list pl-0lb (every rule that uses the list gains it)"
    )
    assert "--prefix-list-id pl-0lb" in fail.fixes[2].text
    assert "--add-entries 'Cidr=10.0.1.0/24," in fail.fixes[2].text


def test_a_block_in_one_of_the_load_balancers_zones_names_that_zone() -> None:
    world = alb_world(LISTED_NODES)
    lb = world.load_balancers[0]
    world.load_balancers = [replace(lb, subnet_ids=(PUBLIC_A.id, PUBLIC_B.id))]
    world.subnets = {**world.subnets, PUBLIC_B.id: PUBLIC_B}
    world.prefix_lists = {"pl-0lb": (PUBLIC_A.cidr,)}

    fail = only(security_groups.judge(world))

    assert fail.summary == (
        "Security group sg-nodes (nodes) does not let in traffic of k8s-web on tcp 8000 from "
        f"zone {PUBLIC_B.az}."
    )
    assert [line.split(":")[0] for line in fail.evidence] == [
        f"load balancer -> target, zone {PUBLIC_B.az}"
    ]
    assert f"--add-entries 'Cidr={PUBLIC_B.cidr}," in fail.fixes[2].text


def test_unreadable_prefix_list_is_unknown_with_the_permission_needed() -> None:
    world = alb_world(LISTED_NODES)
    world.gaps.append(
        Gap(
            "prefix-lists",
            "pl-0lb",
            "AWS refused ec2:GetManagedPrefixListEntries (UnauthorizedOperation).",
            "the IAM action `ec2:GetManagedPrefixListEntries`",
        )
    )

    finding = only(security_groups.judge(world))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "traffic and health check to pod web/web-1 (10.0.11.14) on i-0node on tcp 8000 from "
        "load balancer subnet 10.0.1.0/24 or group sg-alb is admitted by no rule, unless prefix "
        "list(s) pl-0lb hold it; their entries could not be read: AWS refused "
        "ec2:GetManagedPrefixListEntries (UnauthorizedOperation). (needs the IAM action "
        "`ec2:GetManagedPrefixListEntries`)",
    )


# ------------------------------------------------------- security groups for pods

TRUSTING_NODES = group("sg-nodes", (sg_tcp("8000", groups=("sg-alb",)),))


def test_pod_under_a_policy_is_judged_by_the_policy_group_not_the_node_group() -> None:
    world = alb_world(TRUSTING_NODES)
    world.security_groups["sg-web-pods"] = group("sg-web-pods", (sg_all(groups=("sg-web-pods",)),))
    world.pods[0]["metadata"]["labels"] = {"app": "web"}
    world.security_group_policies = [
        policy("web-db", ["sg-web-pods"], {"matchLabels": {"app": "web"}})
    ]

    fail = only(security_groups.judge(world))

    assert fail.status is Status.FAIL
    assert fail.resource == "sg-web-pods"
    assert fail.evidence == (
        "load balancer -> target, zone us-east-1a: no ingress rule of sg-web-pods on pod "
        "web/web-1 (10.0.11.14) on i-0node (groups of SecurityGroupPolicy web-db) admits "
        "traffic and health check on tcp 8000 from load balancer subnet 10.0.1.0/24 or group "
        "sg-alb",
    )
    assert "--group-id sg-web-pods" in fail.fixes[0].text


def test_policy_group_that_admits_the_lb_passes_though_the_node_group_would_not() -> None:
    world = alb_world(group("sg-nodes", ()))
    world.security_groups["sg-web-pods"] = group(
        "sg-web-pods", (sg_tcp("8000", groups=("sg-alb",)),)
    )
    world.pods[0]["metadata"]["labels"] = {"app": "web"}
    world.security_group_policies = [policy("web-db", ["sg-web-pods"], {})]

    assert only(security_groups.judge(world)).status is Status.PASS


def test_policy_selecting_by_service_account_labels_applies() -> None:
    world = alb_world(TRUSTING_NODES)
    world.security_groups["sg-web-pods"] = group("sg-web-pods", ())
    world.pods[0]["spec"]["serviceAccountName"] = "web"
    world.security_group_policies = [
        policy("web-db", ["sg-web-pods"], None, {"matchLabels": {"db": "yes"}})
    ]
    world.service_accounts = [account("web", {"db": "yes"})]

    assert only(security_groups.judge(world)).resource == "sg-web-pods"

    world.service_accounts = [account("web", {"db": "no"})]
    assert only(security_groups.judge(world)).status is Status.PASS


def test_policy_group_missing_from_the_snapshot_is_unknown() -> None:
    world = alb_world(TRUSTING_NODES)
    world.security_group_policies = [policy("web-db", ["sg-web-pods"], {})]

    finding = only(security_groups.judge(world))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "security group(s) sg-web-pods of pod web/web-1 (10.0.11.14) on i-0node (groups of "
        "SecurityGroupPolicy web-db) were not found: AWS did not describe them",
    )


def test_unreadable_policies_make_the_check_unknown() -> None:
    world = alb_world(TRUSTING_NODES)
    world.gaps.append(
        Gap(
            "kubernetes:securitygrouppolicies",
            "securitygrouppolicies in web",
            "Kubernetes refused to list securitygrouppolicies in namespace web: forbidden.",
            "RBAC verb `list` on `securitygrouppolicies` in namespace web",
        )
    )

    finding = only(security_groups.judge(world))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence[1] == (
        "needs RBAC verb `list` on `securitygrouppolicies` in namespace web"
    )


# ----------------------------------------------------------------- kube-proxy hop


def test_node_group_without_a_rule_for_the_pod_port_blocks_the_kube_proxy_hop() -> None:
    fail = only(security_groups.judge(node_port_world(OPEN_NODES)))

    assert fail.status is Status.FAIL
    assert fail.resource == "sg-nodes"
    assert fail.summary == (
        "Security group sg-nodes (nodes) does not let in traffic of k8s-web on tcp 8080."
    )
    assert fail.evidence == (
        "node -> pod (kube-proxy), zone us-east-1a -> us-east-1b: no ingress rule of sg-nodes "
        "on pod web/web-b (10.0.12.15) on i-0b admits traffic and health check of k8s-web that "
        "instance i-0a received on NodePort 30780, forwarded on tcp 8080 from instance i-0a "
        "[sg-nodes] in 10.0.11.0/24",
        "node -> pod (kube-proxy), zone us-east-1b -> us-east-1a: no ingress rule of sg-nodes "
        "on pod web/web-a (10.0.11.14) on i-0a admits traffic and health check of k8s-web that "
        "instance i-0b received on NodePort 30780, forwarded on tcp 8080 from instance i-0b "
        "[sg-nodes] in 10.0.12.0/24",
    )
    cli = fail.fixes[0].text
    assert "--group-id sg-nodes \\\n" in cli
    assert '"FromPort":8080,"ToPort":8080,"UserIdGroupPairs":[{"GroupId":"sg-nodes"' in cli


def test_self_rule_of_the_node_group_admits_the_kube_proxy_hop() -> None:
    nodes = group("sg-nodes", (*OPEN_NODES.ingress, sg_all(groups=("sg-nodes",))))

    finding = only(security_groups.judge(node_port_world(nodes)))

    assert finding.status is Status.PASS
    assert finding.evidence[-1] == (
        "node -> pod (kube-proxy): instance i-0b [sg-nodes] -> pod web/web-a (10.0.11.14) on "
        "i-0a [sg-nodes] tcp 8080 (traffic and health check of k8s-web on NodePort 30780)"
    )


def test_node_group_that_lets_nothing_out_to_the_pod_port_fails_on_egress() -> None:
    nodes = group(
        "sg-nodes",
        (*OPEN_NODES.ingress, sg_all(groups=("sg-nodes",))),
        (sg_tcp("443", ("0.0.0.0/0",)),),
    )

    fail = only(security_groups.judge(node_port_world(nodes)))

    assert (fail.resource, fail.status) == ("sg-nodes", Status.FAIL)
    assert fail.summary == (
        "Security group sg-nodes (nodes) does not let out traffic of k8s-web on tcp 8080."
    )
    assert fail.evidence[0] == (
        "node -> pod (kube-proxy), zone us-east-1a -> us-east-1b: no egress rule of sg-nodes on "
        "instance i-0a lets out traffic and health check of k8s-web that instance i-0a received "
        "on NodePort 30780, forwarded to pod web/web-b (10.0.12.15) on i-0b on tcp 8080"
    )


def test_local_policy_needs_no_node_to_node_rule() -> None:
    finding = only(security_groups.judge(node_port_world(OPEN_NODES, policy_name="Local")))

    assert finding.status is Status.PASS
