"""LB_AZ_GAP, LB_SUBNET_NOT_PUBLIC and NO_HEALTHY_TARGET_IN_AZ, on scenario worlds and edge cases.

Also home of :func:`scenario_snapshot`, which the endpoint, port and termination tests share:
it builds a Snapshot from a scenario file the way the collectors would fill it (Kubernetes
objects as JSON from ``cluster``; subnets, instances and load balancers from ``aws``, with a
scenario's own names standing in for AWS ids).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from checks import kube
from checks.metrics_catalog import series_key
from checks.models import Finding, Status
from checks.registry import Check
from checks.rules import lb_az_gap, lb_subnet_not_public, no_healthy_target_in_az
from checks.snapshot import (
    Gap,
    HealthCheck,
    Instance,
    KubeObject,
    LbType,
    Listener,
    LoadBalancer,
    MetricSeries,
    Snapshot,
    Subnet,
    TargetGroup,
    TargetHealth,
)
from sandbox.scenario import Scenario, load

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
VPC = "vpc-1"

# ------------------------------------------------------------ scenario worlds


def subnet_id(name: str) -> str:
    return f"subnet-{name}"


def _attributes(raw: dict[str, Any] | None) -> dict[str, str]:
    return {
        str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (raw or {}).items()
    }


def _health(target: str, value: Any, port: int | None) -> TargetHealth:
    if isinstance(value, dict):
        return TargetHealth(target, port, str(value["state"]), str(value.get("reason", "")))
    return TargetHealth(target, port, str(value))


def _target_group(name: str, spec: dict[str, Any]) -> TargetGroup:
    targets = []
    for key, value in (spec.get("targets") or {}).items():
        target, _, port = str(key).rpartition(":")
        targets.append(_health(target, value, int(port)))
    check = spec.get("health_check") or {}
    return TargetGroup(
        name=name,
        arn=f"arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/{name}/0001",
        target_type=str(spec.get("target_type", "instance")),
        protocol=str(spec.get("protocol", "TCP")),
        port=int(spec["port"]),
        health_check=HealthCheck(str(check.get("protocol", "HTTP")), str(check.get("port", ""))),
        attributes=_attributes(spec.get("attributes")),
        targets=tuple(targets),
    )


def _load_balancer(name: str, spec: dict[str, Any], service: KubeObject | None) -> LoadBalancer:
    kind = spec["type"]
    serves = spec["for"] if isinstance(spec["for"], list) else [spec["for"]]
    attributes = _attributes(spec.get("attributes"))
    listeners: list[Listener] = []
    groups = tuple(_target_group(n, g) for n, g in (spec.get("target_groups") or {}).items())
    arns = {g.name: g.arn for g in groups}
    for lst in spec.get("listeners") or []:
        listeners.append(
            Listener(
                port=int(lst["port"]),
                protocol=str(lst["protocol"]),
                instance_port=lst.get("instance_port"),
                target_group_arns=(arns[lst["target_group"]],) if "target_group" in lst else (),
                attributes=_attributes(lst.get("attributes")),
            )
        )
    if kind == "classic":
        # The collector always fills the Classic LB's cross-zone flag; off unless set.
        attributes.setdefault("cross_zone", "false")
    lb_type_note = (service or {}).get("metadata", {}).get("annotations", {}) or {}
    by_controller = kind == "application" or lb_type_note.get(
        "service.beta.kubernetes.io/aws-load-balancer-type"
    ) in ("external", "nlb-ip")
    return LoadBalancer(
        name=name,
        type=kind,
        dns_name=f"{name}.elb.example",
        scheme=str(spec.get("scheme", "internet-facing")),
        vpc_id=VPC,
        subnet_ids=tuple(subnet_id(s) for s in spec.get("subnets") or []),
        security_group_ids=tuple(f"sg-{g}" for g in spec.get("security_groups") or []),
        attributes=attributes,
        listeners=tuple(listeners),
        target_groups=groups,
        instances=tuple(_health(i, v, None) for i, v in (spec.get("instances") or {}).items()),
        arn=f"arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/{name}",
        tags={"elbv2.k8s.aws/cluster": "demo"} if by_controller else {},
        serves=", ".join(serves),
    )


def _routes_to(ingress: KubeObject, service: str) -> bool:
    return service in repr(kube.spec(ingress))


def snapshot_of(scenario: Scenario) -> Snapshot:
    namespace, name = scenario.ask.split("/", 1)
    objects = copy.deepcopy(scenario.cluster)

    def of(kind: str) -> list[KubeObject]:
        return [o for o in objects if o.get("kind") == kind]

    service = next(
        s for s in of("Service") if kube.namespace(s) == namespace and kube.name(s) == name
    )
    selector = kube.spec(service).get("selector") or {}
    pods = [
        p
        for p in of("Pod")
        if kube.namespace(p) == namespace and kube.selector_matches(selector, kube.labels(p))
    ]
    hosts = {kube.spec(p).get("nodeName") for p in pods}
    workloads = [
        w
        for w in of("Deployment") + of("StatefulSet")
        if kube.namespace(w) == namespace
        and any(
            kube.selector_matches(
                (kube.spec(w).get("selector") or {}).get("matchLabels") or {}, kube.labels(p)
            )
            for p in pods
        )
    ]
    aws = scenario.aws
    subnets = {
        subnet_id(n): Subnet(
            subnet_id(n), s["cidr"], s["az"], VPC, bool(s.get("public")), "acl-default", n
        )
        for n, s in (aws.get("subnets") or {}).items()
    }
    instances = {
        i: Instance(
            i,
            subnet_id(spec["subnet"]),
            "",
            subnets[subnet_id(spec["subnet"])].az,
            tuple(f"sg-{g}" for g in spec.get("security_groups") or []),
        )
        for i, spec in (aws.get("instances") or {}).items()
    }
    metrics: dict[str, dict[str, MetricSeries]] = {}
    for lb_name, by_metric in (aws.get("metrics") or {}).items():
        metrics[lb_name] = {
            series_key(metric, m.get("target_group", "")): MetricSeries(
                metric, m["stat"], tuple(m["values"])
            )
            for metric, m in (by_metric or {}).items()
        }
    return Snapshot(
        namespace=namespace,
        service_name=name,
        service=service,
        ingresses=[
            i for i in of("Ingress") if kube.namespace(i) == namespace and _routes_to(i, name)
        ],
        pods=pods,
        nodes=[n for n in of("Node") if kube.name(n) in hosts],
        workloads=workloads,
        endpoint_slices=[
            e
            for e in of("EndpointSlice")
            if kube.labels(e).get("kubernetes.io/service-name") == name
        ],
        region=str(aws.get("region", "")),
        vpc_cidr=str((aws.get("vpc") or {}).get("cidr", "")),
        load_balancers=[
            _load_balancer(n, spec, service)
            for n, spec in (aws.get("load_balancers") or {}).items()
        ],
        subnets=subnets,
        instances=instances,
        metrics=metrics,
    )


def scenario_snapshot(filename: str) -> tuple[Scenario, Snapshot]:
    scenario = load(SCENARIOS / filename)
    return scenario, snapshot_of(scenario)


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_problem]


def assert_scenario(check: Check, filename: str) -> None:
    """Expected codes of ``check`` fail or warn; every other code of it stays quiet."""
    scenario, snapshot = scenario_snapshot(filename)
    findings = check.judge(snapshot)
    for code in check.codes:
        reported = [f for f in problems(findings) if f.code == code]
        if code in scenario.expect_findings:
            assert reported, f"{code} expected in {filename}: {findings}"
        else:
            assert not reported, f"{code} reported in {filename}: {reported}"


QUIET_WORLDS = [
    "h0-alb-healthy.yaml",
    "s1-alb-idle-timeout-short.yaml",
    "s2-clb-nginx-keepalive-30s.yaml",
    "s3-clb-nacl-ephemeral.yaml",
    "s5-nlb-idle-pool-resets.yaml",
    "c01-clb-default-idle-timeout.yaml",
]
CASE_WORLDS = ["c23-clb-single-zone.yaml", "c25-alb-termination-race.yaml"]

# ------------------------------------------------------------ builders


def sub(name: str, az: str, public: bool = False, cidr: str = "") -> Subnet:
    return Subnet(subnet_id(name), cidr or "10.9.0.0/24", az, VPC, public, None, name)


def node(name: str, zone: str, instance: str) -> KubeObject:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": f"aws:///{zone}/{instance}"},
    }


def pod(name: str, ip: str, node_name: str, **spec: Any) -> KubeObject:
    return {
        "kind": "Pod",
        "metadata": {"namespace": "ns", "name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": node_name, **spec},
        "status": {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def service(**spec: Any) -> KubeObject:
    return {
        "kind": "Service",
        "metadata": {"namespace": "ns", "name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }


def classic(
    subnets: tuple[str, ...],
    instances: tuple[TargetHealth, ...],
    cross_zone: bool = False,
    scheme: str = "internet-facing",
) -> LoadBalancer:
    return LoadBalancer(
        "clb", "classic", "clb.example", scheme, VPC, subnets, (),
        {"cross_zone": str(cross_zone).lower()}, (Listener(80, "HTTP", 30080),),
        instances=instances, serves="service/ns/web",
    )  # fmt: skip


def v2(
    kind: LbType,
    subnets: tuple[str, ...],
    groups: tuple[TargetGroup, ...],
    attributes: dict[str, str] | None = None,
    scheme: str = "internet-facing",
    tags: dict[str, str] | None = None,
) -> LoadBalancer:
    return LoadBalancer(
        "lb2", kind, "lb2.example", scheme, VPC, subnets, (), attributes or {}, (),
        target_groups=groups, serves="service/ns/web", tags=tags or {},
    )  # fmt: skip


def tg(target_type: str, targets: tuple[TargetHealth, ...], **attributes: str) -> TargetGroup:
    return TargetGroup(
        "tg-web", "arn:tg-web", target_type, "TCP", 8080, HealthCheck("TCP", "traffic-port"),
        dict(attributes), targets,
    )  # fmt: skip


def world(**fields: Any) -> Snapshot:
    base: dict[str, Any] = {
        "namespace": "ns",
        "service_name": "web",
        "service": service(),
        "subnets": {
            s.id: s
            for s in (
                sub("pub-a", "us-east-1a", True, "10.9.1.0/24"),
                sub("pub-b", "us-east-1b", True, "10.9.2.0/24"),
                sub("priv-a", "us-east-1a", False, "10.9.11.0/24"),
                sub("priv-b", "us-east-1b", False, "10.9.12.0/24"),
                sub("priv-c", "us-east-1c", False, "10.9.13.0/24"),
            )
        },
    }
    base.update(fields)
    return Snapshot(**base)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# ------------------------------------------------------------ scenarios


@pytest.mark.parametrize("filename", QUIET_WORLDS + CASE_WORLDS)
@pytest.mark.parametrize(
    "check", [lb_az_gap.CHECK, lb_subnet_not_public.CHECK, no_healthy_target_in_az.CHECK]
)
def test_zone_codes_match_scenario_expectations(check: Check, filename: str) -> None:
    assert_scenario(check, filename)


def test_single_zone_classic_names_the_nodes_outside_its_zone() -> None:
    _, snapshot = scenario_snapshot("c23-clb-single-zone.yaml")
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.WARN
    assert finding.summary == (
        "2 of 3 target nodes of a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7 sit in us-east-1b, us-east-1c, "
        "where it has no subnet."
    )
    assert (
        "node ip-10-0-12-40.ec2.internal (i-0a3000000000000b1), hosting proxy-b sits in "
        "us-east-1b: no subnet of a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7 there"
    ) in finding.evidence
    assert any("no public subnet in us-east-1c" in e for e in finding.evidence)
    assert [f.title for f in finding.fixes] == [
        "List the subnets of us-east-1b, us-east-1c to pick or create one"
    ]


# ------------------------------------------------------------ LB_AZ_GAP


def test_az_gap_fails_for_ip_targets_outside_the_zones() -> None:
    snapshot = world(
        pods=[pod("a", "10.9.11.5", "n-a"), pod("c", "10.9.13.5", "n-c")],
        load_balancers=[v2("network", ("subnet-pub-a", "subnet-pub-b"), (tg("ip", ()),))],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.FAIL
    assert "pod ns/c (10.9.13.5) sits in us-east-1c: no subnet of lb2 there" in finding.evidence


def test_az_gap_fails_with_local_traffic_policy() -> None:
    snapshot = world(
        service=service(externalTrafficPolicy="Local"),
        pods=[pod("a", "10.9.11.5", "n-a"), pod("c", "10.9.13.5", "n-c")],
        nodes=[node("n-a", "us-east-1a", "i-a"), node("n-c", "us-east-1c", "i-c")],
        load_balancers=[
            classic(
                ("subnet-pub-a",),
                (TargetHealth("i-a", None, "InService"), TargetHealth("i-c", None, "OutOfService")),
            )
        ],
    )
    assert only(lb_az_gap.judge(snapshot)).status is Status.FAIL


def test_az_gap_fails_when_no_node_of_the_lb_zones_is_healthy() -> None:
    snapshot = world(
        pods=[pod("c", "10.9.13.5", "n-c")],
        nodes=[node("n-c", "us-east-1c", "i-c")],
        load_balancers=[classic(("subnet-pub-a",), (TargetHealth("i-c", None, "OutOfService"),))],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.FAIL
    assert "no target of clb sits in a zone it serves: nothing gets traffic" in finding.evidence


def test_az_gap_suggests_a_public_subnet_of_the_missing_zone() -> None:
    snapshot = world(
        pods=[pod("b", "10.9.12.5", "n-b")],
        load_balancers=[v2("network", ("subnet-pub-a",), (tg("ip", ()),))],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.fixes[0].text == (
        "# The controller reconciles the load balancer to the subnets listed here.\n"
        "kubectl annotate service --namespace ns web --overwrite \\\n"
        "  service.beta.kubernetes.io/aws-load-balancer-subnets=subnet-pub-a,subnet-pub-b\n"
    )


def test_az_gap_internal_lb_may_use_a_private_subnet() -> None:
    snapshot = world(
        pods=[pod("c", "10.9.13.5", "n-c")],
        load_balancers=[v2("network", ("subnet-priv-a",), (tg("ip", ()),), scheme="internal")],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert "subnet-priv-a,subnet-priv-c" in finding.fixes[0].text


def test_az_gap_unknown_when_the_node_is_missing() -> None:
    snapshot = world(
        pods=[pod("a", "10.9.11.5", "n-gone")],
        load_balancers=[classic(("subnet-pub-a",), ())],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "Node n-gone was not found in the cluster (it may have been removed)",
    )


def test_az_gap_says_why_nodes_could_not_be_read() -> None:
    refused = "Kubernetes refused to list nodes: forbidden."
    snapshot = world(
        pods=[pod("a", "10.9.11.5", "n-a")],
        load_balancers=[classic(("subnet-pub-a",), ())],
        gaps=[Gap("kubernetes:nodes", "nodes", refused, "RBAC verb `list` on `nodes`")],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (f"Node n-a could not be read: {refused}",)


def test_az_gap_places_a_node_without_labels_by_its_instance() -> None:
    bare = {"kind": "Node", "metadata": {"name": "n-x"}, "spec": {"providerID": "aws:///i-x"}}
    snapshot = world(
        pods=[pod("x", "10.9.13.5", "n-x")],
        nodes=[bare],
        instances={"i-x": Instance("i-x", "subnet-priv-c", "10.9.13.9", "us-east-1c", ())},
        load_balancers=[classic(("subnet-pub-a",), ())],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.FAIL
    assert (
        "node n-x (i-x), hosting x sits in us-east-1c: no subnet of clb there" in finding.evidence
    )


def test_az_gap_unknown_when_lb_subnets_were_not_read() -> None:
    snapshot = world(
        subnets={},
        gaps=[Gap("network", VPC, "ec2:DescribeSubnets denied")],
        pods=[pod("a", "10.9.11.5", "n-a")],
        load_balancers=[classic(("subnet-pub-a",), ())],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "subnet(s) subnet-pub-a could not be read: ec2:DescribeSubnets denied",
    )


def test_az_gap_unknown_names_subnets_aws_did_not_list() -> None:
    snapshot = world(
        pods=[pod("a", "10.9.11.5", "n-a")],
        load_balancers=[classic(("subnet-gone",), ())],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.summary == "Could not tell the zones of clb."
    assert finding.evidence == (
        "subnet(s) subnet-gone are not among the subnets AWS lists for vpc-1",
    )


ROUTES_REFUSED = Gap(
    "route-tables",
    VPC,
    "AWS refused ec2:DescribeRouteTables (UnauthorizedOperation).",
    "the IAM action `ec2:DescribeRouteTables`",
)


def test_az_gap_does_not_claim_no_public_subnet_when_routes_were_not_read() -> None:
    # Unread routes leave every subnet looking private.
    unrouted = {s.id: replace(s, public=False) for s in world().subnets.values()}
    snapshot = world(
        subnets=unrouted,
        gaps=[ROUTES_REFUSED],
        pods=[pod("b", "10.9.12.5", "n-b")],
        load_balancers=[v2("network", ("subnet-pub-a",), (tg("ip", ()),))],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.FAIL
    assert not any("no public subnet" in e for e in finding.evidence)
    assert (
        "which subnets in us-east-1b are public could not be read: AWS refused "
        "ec2:DescribeRouteTables (UnauthorizedOperation)."
    ) in finding.evidence


def test_az_gap_passes_when_targets_sit_in_served_zones() -> None:
    snapshot = world(
        pods=[pod("a", "10.9.11.5", "n-a"), pod("b", "10.9.12.5", "n-b")],
        load_balancers=[v2("network", ("subnet-pub-a", "subnet-pub-b"), (tg("ip", ()),))],
    )
    finding = only(lb_az_gap.judge(snapshot))
    assert finding.status is Status.PASS
    assert finding.evidence == (
        "lb2 has subnets in us-east-1a, us-east-1b; targets in us-east-1a, us-east-1b",
    )


# ------------------------------------------------------------ LB_SUBNET_NOT_PUBLIC


def test_internet_facing_lb_in_a_private_subnet_fails_and_moves_to_the_public_one() -> None:
    snapshot = world(load_balancers=[classic(("subnet-pub-a", "subnet-priv-b"), ())])
    finding = only(lb_subnet_not_public.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "Internet-facing clb sits in 1 subnet(s) with no internet route: subnet-priv-b."
    )
    assert finding.evidence[0] == (
        "subnet-priv-b (priv-b) (10.9.12.0/24) in us-east-1b has no route to an internet gateway"
    )
    assert "service.beta.kubernetes.io/aws-load-balancer-subnets=subnet-pub-a,subnet-pub-b" in (
        finding.fixes[0].text
    )
    assert "--resources subnet-pub-b --tags Key=kubernetes.io/role/elb,Value=1" in (
        finding.fixes[0].text.replace("\\\n  ", "")
    )


def test_private_subnet_without_a_public_alternative_says_so() -> None:
    snapshot = world(load_balancers=[classic(("subnet-priv-c",), ())])
    finding = only(lb_subnet_not_public.judge(snapshot))
    assert finding.status is Status.FAIL
    assert "no subnet of clb is public: no client can reach it" in finding.evidence
    assert any("no public subnet in us-east-1c" in e for e in finding.evidence)
    assert finding.fixes == ()


def test_internal_lb_in_private_subnets_passes() -> None:
    snapshot = world(load_balancers=[classic(("subnet-priv-a",), (), scheme="internal")])
    assert only(lb_subnet_not_public.judge(snapshot)).status is Status.PASS


def test_subnet_publicity_unknown_when_subnets_were_not_read() -> None:
    snapshot = world(
        subnets={},
        gaps=[Gap("network", VPC, "ec2:DescribeRouteTables denied")],
        load_balancers=[classic(("subnet-pub-a",), ())],
    )
    finding = only(lb_subnet_not_public.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == (
        "subnet(s) subnet-pub-a could not be read: ec2:DescribeRouteTables denied",
    )


def test_subnet_publicity_unknown_when_only_the_route_tables_were_not_read() -> None:
    unrouted = {s.id: replace(s, public=False) for s in world().subnets.values()}
    snapshot = world(
        subnets=unrouted,
        gaps=[ROUTES_REFUSED],
        load_balancers=[classic(("subnet-pub-a",), ())],
    )
    finding = only(lb_subnet_not_public.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == ("AWS refused ec2:DescribeRouteTables (UnauthorizedOperation).",)


# ------------------------------------------------------------ NO_HEALTHY_TARGET_IN_AZ


def _two_zone_classic(cross_zone: bool) -> Snapshot:
    return world(
        instances={
            "i-a": Instance("i-a", "subnet-priv-a", "10.9.11.9", "us-east-1a", ()),
            "i-b": Instance("i-b", "subnet-priv-b", "10.9.12.9", "us-east-1b", ()),
        },
        load_balancers=[
            classic(
                ("subnet-pub-a", "subnet-pub-b"),
                (
                    TargetHealth("i-a", None, "InService"),
                    TargetHealth("i-b", None, "OutOfService", "Instance has failed"),
                ),
                cross_zone=cross_zone,
            )
        ],
    )


def test_zone_without_healthy_target_fails_with_cross_zone_off() -> None:
    finding = only(no_healthy_target_in_az.judge(_two_zone_classic(cross_zone=False)))
    assert finding.status is Status.FAIL
    assert finding.summary.startswith("clb serves us-east-1b with no healthy target")
    assert (
        "clb, zone us-east-1b (subnet-pub-b (pub-b)): 0 healthy of 1; i-b OutOfService "
        "(Instance has failed)" in finding.evidence
    )
    assert "clb, zone us-east-1a (subnet-pub-a (pub-a)): 1 healthy of 1" in finding.evidence
    assert "aws-load-balancer-cross-zone-load-balancing-enabled=true" in finding.fixes[0].text


def test_zone_without_healthy_target_passes_with_cross_zone_on() -> None:
    finding = only(no_healthy_target_in_az.judge(_two_zone_classic(cross_zone=True)))
    assert finding.status is Status.PASS


def test_alb_is_never_reported_for_zones() -> None:
    snapshot = world(
        load_balancers=[
            v2("application", ("subnet-pub-a", "subnet-pub-b"),
               (tg("ip", (TargetHealth("10.9.11.5", 8080, "healthy"),)),))
        ]
    )  # fmt: skip
    assert only(no_healthy_target_in_az.judge(snapshot)).status is Status.PASS


def test_nlb_ip_targets_zone_gap_and_controller_attribute_fix() -> None:
    service_obj = service()
    key = "service.beta.kubernetes.io/aws-load-balancer-attributes"
    service_obj["metadata"]["annotations"] = {key: "deletion_protection.enabled=true"}
    snapshot = world(
        service=service_obj,
        load_balancers=[
            v2(
                "network",
                ("subnet-pub-a", "subnet-pub-b"),
                (tg("ip", (TargetHealth("10.9.11.5", 8080, "healthy"),)),),
                {"load_balancing.cross_zone.enabled": "false"},
                tags={"elbv2.k8s.aws/cluster": "demo"},
            )
        ],
    )
    finding = only(no_healthy_target_in_az.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.summary.startswith("lb2 serves us-east-1b (tg-web) with no healthy target")
    assert (
        "service.beta.kubernetes.io/aws-load-balancer-attributes="
        "deletion_protection.enabled=true,load_balancing.cross_zone.enabled=true"
    ) in finding.fixes[0].text


def test_target_group_cross_zone_setting_overrides_the_nlb() -> None:
    snapshot = world(
        load_balancers=[
            v2(
                "network",
                ("subnet-pub-a", "subnet-pub-b"),
                (tg("ip", (TargetHealth("10.9.11.5", 8080, "healthy"),),
                    **{"load_balancing.cross_zone.enabled": "true"}),),
                {"load_balancing.cross_zone.enabled": "false"},
            )
        ],
    )  # fmt: skip
    assert only(no_healthy_target_in_az.judge(snapshot)).status is Status.PASS


def test_cross_zone_unknown_when_attributes_were_not_read() -> None:
    snapshot = _two_zone_classic(cross_zone=False)
    snapshot.gaps.append(Gap("lb-attributes", "clb", "elb:DescribeLoadBalancerAttributes denied"))
    finding = only(no_healthy_target_in_az.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == ("elb:DescribeLoadBalancerAttributes denied",)


def test_unplaced_healthy_target_makes_an_empty_zone_unknown() -> None:
    snapshot = _two_zone_classic(cross_zone=False)
    snapshot.load_balancers = [
        classic(
            ("subnet-pub-a", "subnet-pub-b"),
            (TargetHealth("i-a", None, "InService"), TargetHealth("i-z", None, "InService")),
        )
    ]
    finding = only(no_healthy_target_in_az.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert (
        "could not place healthy target i-z: instance i-z was not found: AWS did not describe it"
        in (finding.evidence)
    )
