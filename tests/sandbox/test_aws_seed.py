"""Seeding a local AWS endpoint from scenarios, read back through boto3 over HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from checks.errors import ScenarioError
from sandbox.aws import LocalAws, SeededAws, seed

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
NOW = datetime(2030, 5, 17, 10, 42, 37, tzinfo=UTC)
END = datetime(2030, 5, 17, 10, 42, tzinfo=UTC)


def _scenario(file_name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS / file_name).read_text())
    return data


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    # moto's 1300 default images make every reset slow; seeding registers its own instead.
    with pytest.MonkeyPatch.context() as env, LocalAws() as aws:
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        yield aws


@pytest.fixture
def aws(local_aws: LocalAws) -> Iterator[LocalAws]:
    yield local_aws
    local_aws.reset()


def _seed(aws: LocalAws, file_name: str) -> SeededAws:
    data = _scenario(file_name)
    return seed(
        data["aws"],
        cluster_name=data.get("cluster_name") or "demo",
        endpoint_url=aws.endpoint_url,
        cluster=data.get("cluster"),
        now=NOW,
    )


def _client(aws: LocalAws, service: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _tags_of(elbv2: Any, arn: str) -> dict[str, str]:
    described = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    return {t["Key"]: t["Value"] for t in described}


# -- every scenario ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_scenario_seeds_all_its_resources(aws: LocalAws, path: Path) -> None:
    data = _scenario(path.name)["aws"]

    out = _seed(aws, path.name)

    assert set(out.subnet_ids) == set(data.get("subnets") or {})
    assert set(out.security_group_ids) == set(data.get("security_groups") or {})
    assert set(out.instance_ids) == set(data.get("instances") or {})
    assert set(out.instance_ips) == set(out.instance_ids.values())
    assert set(out.network_acl_ids) == set(data.get("network_acls") or {})
    assert set(out.lb_dns_names) == set(data.get("load_balancers") or {})
    ec2 = _client(aws, "ec2", str(data.get("region") or "us-east-1"))
    described = ec2.describe_instances(InstanceIds=list(out.instance_ids.values()))
    ips = {
        i["InstanceId"]: i["PrivateIpAddress"]
        for r in described["Reservations"]
        for i in r["Instances"]
    }
    assert ips == out.instance_ips


# -- network -----------------------------------------------------------------------------------


def test_network_acl_entries_and_association_read_back(aws: LocalAws) -> None:
    out = _seed(aws, "s3-clb-nacl-ephemeral.yaml")
    ec2 = _client(aws, "ec2")

    acl = ec2.describe_network_acls(NetworkAclIds=[out.network_acl_ids["nodes-tight"]])[
        "NetworkAcls"
    ][0]

    entries = sorted(
        (e["Egress"], e["RuleNumber"], e["Protocol"], e["RuleAction"], e["CidrBlock"],
         e["PortRange"]["From"], e["PortRange"]["To"])
        for e in acl["Entries"]
        if e["RuleNumber"] != 32767
    )  # fmt: skip
    assert entries == [
        (False, 100, "6", "allow", "10.0.0.0/16", 30000, 32767),
        (False, 110, "6", "allow", "0.0.0.0/0", 1024, 65535),
        (True, 100, "6", "allow", "0.0.0.0/0", 443, 443),
        (True, 110, "6", "allow", "0.0.0.0/0", 80, 80),
    ]
    assert [a["SubnetId"] for a in acl["Associations"]] == [out.subnet_ids["nodes-a"]]
    public_acl = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [out.subnet_ids["public-a"]]}]
    )["NetworkAcls"][0]
    assert public_acl["IsDefault"] is True


def test_security_groups_hold_only_the_scenario_rules(aws: LocalAws) -> None:
    out = _seed(aws, "c01-clb-default-idle-timeout.yaml")
    ec2 = _client(aws, "ec2")
    elb_sg, nodes_sg = out.security_group_ids["elb"], out.security_group_ids["nodes"]

    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(GroupIds=[elb_sg, nodes_sg])["SecurityGroups"]
    }

    nodes = groups[nodes_sg]
    assert nodes["GroupName"] == "nodes"
    assert {"Key": "Name", "Value": "nodes"} in nodes["Tags"]
    ingress = sorted(
        (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), p["UserIdGroupPairs"][0]["GroupId"])
        for p in nodes["IpPermissions"]
    )
    assert ingress == sorted([("tcp", 30000, 32767, elb_sg), ("-1", None, None, nodes_sg)])
    elb = groups[elb_sg]
    assert [(p["IpProtocol"], p["FromPort"], p["IpRanges"]) for p in elb["IpPermissions"]] == [
        ("tcp", 80, [{"CidrIp": "0.0.0.0/0"}])
    ]
    assert [(p["IpProtocol"], p["IpRanges"]) for p in elb["IpPermissionsEgress"]] == [
        ("-1", [{"CidrIp": "0.0.0.0/0"}])
    ]


def test_security_group_without_egress_rules_has_no_default_egress(aws: LocalAws) -> None:
    data = _scenario("c01-clb-default-idle-timeout.yaml")["aws"]
    data["security_groups"]["closed"] = {"ingress": [{"protocol": "udp", "ports": 53}]}
    out = seed(data, cluster_name="demo", endpoint_url=aws.endpoint_url, now=NOW)

    group = _client(aws, "ec2").describe_security_groups(
        GroupIds=[out.security_group_ids["closed"]]
    )["SecurityGroups"][0]

    assert group["IpPermissionsEgress"] == []
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]] == [
        ("udp", 53, 53)
    ]


def test_only_public_subnets_route_to_an_internet_gateway(aws: LocalAws) -> None:
    out = _seed(aws, "s3-clb-nacl-ephemeral.yaml")
    ec2 = _client(aws, "ec2")

    def gateway_routes(subnet: str) -> list[str]:
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [out.subnet_ids[subnet]]}]
        )["RouteTables"]
        return [
            r["DestinationCidrBlock"]
            for t in tables
            for r in t["Routes"]
            if r.get("GatewayId", "").startswith("igw-")
        ]

    assert gateway_routes("public-a") == ["0.0.0.0/0"]
    assert gateway_routes("public-b") == ["0.0.0.0/0"]
    assert gateway_routes("nodes-a") == []
    subnet = ec2.describe_subnets(SubnetIds=[out.subnet_ids["nodes-a"]])["Subnets"][0]
    assert (subnet["CidrBlock"], subnet["AvailabilityZone"]) == ("10.0.11.0/24", "us-east-1a")
    assert {"Key": "Name", "Value": "nodes-a"} in subnet["Tags"]


# -- classic load balancers --------------------------------------------------------------------


def test_classic_instance_health_reads_back_state_and_description(aws: LocalAws) -> None:
    out = _seed(aws, "s3-clb-nacl-ephemeral.yaml")
    elb = _client(aws, "elb")

    states = elb.describe_instance_health(LoadBalancerName="a71c5e0d9b3a4f2e8c1d0b9a8f7e6d5c")[
        "InstanceStates"
    ]

    assert states == [
        {
            "InstanceId": out.instance_ids["i-0c3300000000000a1"],
            "State": "OutOfService",
            "ReasonCode": "Instance",
            "Description": "Instance has failed at least the UnhealthyThreshold number of "
            "health checks consecutively.",
        }
    ]


def test_classic_health_mixes_in_service_and_elb_caused_states(aws: LocalAws) -> None:
    out = _seed(aws, "c23-clb-single-zone.yaml")
    lb_name = next(iter(out.lb_dns_names))

    states = _client(aws, "elb").describe_instance_health(LoadBalancerName=lb_name)[
        "InstanceStates"
    ]

    by_id = {s["InstanceId"]: (s["State"], s["ReasonCode"]) for s in states}
    assert by_id == {
        out.instance_ids["i-0a3000000000000a1"]: ("InService", "N/A"),
        out.instance_ids["i-0a3000000000000b1"]: ("OutOfService", "ELB"),
        out.instance_ids["i-0a3000000000000c1"]: ("OutOfService", "ELB"),
    }


def test_classic_load_balancer_attributes_listeners_and_tags(aws: LocalAws) -> None:
    out = _seed(aws, "c01-clb-default-idle-timeout.yaml")
    elb = _client(aws, "elb")
    name = "a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5"

    described = elb.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"]
    attributes = elb.describe_load_balancer_attributes(LoadBalancerName=name)[
        "LoadBalancerAttributes"
    ]
    tags = elb.describe_tags(LoadBalancerNames=[name])["TagDescriptions"][0]["Tags"]

    lb = described[0]
    assert lb["DNSName"] == out.lb_dns_names[name]
    assert lb["Scheme"] == "internet-facing"
    assert sorted(lb["Subnets"]) == sorted([out.subnet_ids["public-a"], out.subnet_ids["public-b"]])
    assert lb["SecurityGroups"] == [out.security_group_ids["elb"]]
    listener = lb["ListenerDescriptions"][0]["Listener"]
    assert (listener["Protocol"], listener["LoadBalancerPort"], listener["InstancePort"]) == (
        "HTTP",
        80,
        31080,
    )
    assert [i["InstanceId"] for i in lb["Instances"]] == [out.instance_ids["i-0e1000000000000a1"]]
    assert attributes["ConnectionSettings"]["IdleTimeout"] == 60
    assert attributes["CrossZoneLoadBalancing"]["Enabled"] is True
    assert {t["Key"]: t["Value"] for t in tags} == {
        "kubernetes.io/service-name": "mesh/gateway",
        "kubernetes.io/cluster/demo": "owned",
    }
    assert out.lb_for == {name: ["service/mesh/gateway"]}


# -- application and network load balancers ----------------------------------------------------


def test_alb_target_health_and_idle_timeout_read_back(aws: LocalAws) -> None:
    out = _seed(aws, "h0-alb-healthy.yaml")
    elbv2 = _client(aws, "elbv2")
    lb_arn = out.lb_arns["k8s-shop-catalog-9a8b7c6d5e"]

    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    groups = elbv2.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]
    health = elbv2.describe_target_health(TargetGroupArn=groups[0]["TargetGroupArn"])

    values = {a["Key"]: a["Value"] for a in attributes}
    assert values["idle_timeout.timeout_seconds"] == "120"
    assert values["routing.http2.enabled"] == "true"
    assert [g["TargetGroupName"] for g in groups] == ["k8s-shop-catalog-http"]
    assert sorted(
        (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"])
        for d in health["TargetHealthDescriptions"]
    ) == [("10.0.11.14", 8000, "healthy"), ("10.0.12.15", 8000, "healthy")]
    assert all("Reason" not in d["TargetHealth"] for d in health["TargetHealthDescriptions"])


def test_alb_unhealthy_instance_targets_carry_reason_codes(aws: LocalAws) -> None:
    out = _seed(aws, "c12-alb-backend-service-family-annotation.yaml")
    elbv2 = _client(aws, "elbv2")
    tg_arn = out.target_group_arns["k8s-store-api-80"]

    health = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    group = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]

    assert sorted(
        (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"],
         d["TargetHealth"]["Reason"])
        for d in health
    ) == sorted(
        (out.instance_ids[i], 30808, "unhealthy", "Target.ResponseCodeMismatch")
        for i in ("i-0f2000000000000a1", "i-0f2000000000000b1")
    )  # fmt: skip
    assert all(d["TargetHealth"]["Description"] for d in health)
    assert (group["TargetType"], group["Protocol"], group["Port"]) == ("instance", "HTTP", 30808)
    assert (group["HealthCheckPath"], group["HealthCheckPort"], group["Matcher"]) == (
        "/",
        "traffic-port",
        {"HttpCode": "200"},
    )


def test_alb_tags_follow_the_load_balancer_controller(aws: LocalAws) -> None:
    out = _seed(aws, "h0-alb-healthy.yaml")
    elbv2 = _client(aws, "elbv2")

    lb_tags = _tags_of(elbv2, out.lb_arns["k8s-shop-catalog-9a8b7c6d5e"])
    tg_tags = _tags_of(elbv2, out.target_group_arns["k8s-shop-catalog-http"])

    assert lb_tags == {
        "elbv2.k8s.aws/cluster": "demo",
        "ingress.k8s.aws/stack": "shop/catalog",
        "ingress.k8s.aws/resource": "LoadBalancer",
    }
    assert tg_tags == {"elbv2.k8s.aws/cluster": "demo", "ingress.k8s.aws/stack": "shop/catalog"}


def test_ingress_group_alb_is_tagged_with_the_group_and_serves_every_target_group(
    aws: LocalAws,
) -> None:
    out = _seed(aws, "c07-ingress-group-conflict.yaml")
    elbv2 = _client(aws, "elbv2")
    lb_arn = out.lb_arns["k8s-sharedinternal-5e4d3c2b1a"]

    groups = elbv2.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]

    assert _tags_of(elbv2, lb_arn)["ingress.k8s.aws/stack"] == "shared-internal"
    assert sorted(g["TargetGroupName"] for g in groups) == [
        "k8s-team-a-api-80",
        "k8s-team-b-web-80",
        "k8s-team-c-admin-80",
    ]
    assert out.lb_for["k8s-sharedinternal-5e4d3c2b1a"] == [
        "ingress/team-a/api",
        "ingress/team-b/web",
        "ingress/team-c/admin",
    ]


def test_nlb_listener_idle_timeout_reads_back(aws: LocalAws) -> None:
    out = _seed(aws, "s5-nlb-idle-pool-resets.yaml")
    elbv2 = _client(aws, "elbv2")

    listeners = elbv2.describe_listeners(LoadBalancerArn=out.lb_arns["k8s-db-pgbouncer-5d4c3b2a1f"])
    listener = listeners["Listeners"][0]
    attributes = elbv2.describe_listener_attributes(ListenerArn=listener["ListenerArn"])

    values = {a["Key"]: a["Value"] for a in attributes["Attributes"]}
    assert values["tcp.idle_timeout.seconds"] == "350"
    assert (listener["Protocol"], listener["Port"]) == ("TCP", 5432)
    assert listener["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": out.target_group_arns["k8s-db-pg-5432"]}
    ]


def test_unset_elbv2_attributes_read_back_as_aws_defaults(aws: LocalAws) -> None:
    data = _scenario("s5-nlb-idle-pool-resets.yaml")["aws"]
    del data["load_balancers"]["k8s-db-pgbouncer-5d4c3b2a1f"]["listeners"][0]["attributes"]
    h0 = _scenario("h0-alb-healthy.yaml")["aws"]["load_balancers"]["k8s-shop-catalog-9a8b7c6d5e"]
    del h0["attributes"]
    h0["security_groups"] = ["nodes"]
    data["load_balancers"]["k8s-shop-catalog-9a8b7c6d5e"] = h0
    out = seed(data, cluster_name="demo", endpoint_url=aws.endpoint_url, now=NOW)
    elbv2 = _client(aws, "elbv2")

    def attributes(arn: str) -> dict[str, str]:
        described = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        return {a["Key"]: a["Value"] for a in described}

    nlb_arn = out.lb_arns["k8s-db-pgbouncer-5d4c3b2a1f"]
    listener = elbv2.describe_listeners(LoadBalancerArn=nlb_arn)["Listeners"][0]
    listener_attributes = elbv2.describe_listener_attributes(ListenerArn=listener["ListenerArn"])
    alb = attributes(out.lb_arns["k8s-shop-catalog-9a8b7c6d5e"])

    assert listener_attributes["Attributes"] == [
        {"Key": "tcp.idle_timeout.seconds", "Value": "350"}
    ]
    assert attributes(nlb_arn)["load_balancing.cross_zone.enabled"] == "false"
    assert alb["idle_timeout.timeout_seconds"] == "60"
    assert alb["load_balancing.cross_zone.enabled"] == "true"


@pytest.mark.parametrize("default_images", ["true", "false"])
def test_instances_run_a_known_image_in_their_subnet_and_groups(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch, default_images: str
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", default_images)
    out = _seed(aws, "h0-alb-healthy.yaml")
    ec2 = _client(aws, "ec2")
    real_id = out.instance_ids["i-0d4400000000000b2"]

    instance = ec2.describe_instances(InstanceIds=[real_id])["Reservations"][0]["Instances"][0]
    images = ec2.describe_images(ImageIds=[instance["ImageId"]])["Images"]

    assert len(images) == 1
    assert instance["SubnetId"] == out.subnet_ids["nodes-b"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [out.security_group_ids["nodes"]]
    assert instance["Placement"]["AvailabilityZone"] == "us-east-1b"


def test_in_tree_nlb_gets_the_in_tree_tags(aws: LocalAws) -> None:
    out = _seed(aws, "c10-nlb-with-clb-annotation.yaml")
    elbv2 = _client(aws, "elbv2")
    name = "a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6"

    balancer = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]

    assert balancer["Type"] == "network"
    assert balancer["DNSName"] == out.lb_dns_names[name]
    assert _tags_of(elbv2, out.lb_arns[name]) == {
        "kubernetes.io/cluster/demo": "owned",
        "kubernetes.io/service-name": "ingress-nginx/ingress-nginx-controller",
    }


def test_undefined_subnet_is_a_scenario_error(aws: LocalAws) -> None:
    data = _scenario("s5-nlb-idle-pool-resets.yaml")["aws"]
    data["instances"]["i-0b5000000000000a1"]["subnet"] = "nowhere"

    with pytest.raises(ScenarioError, match="subnet 'nowhere'"):
        seed(data, cluster_name="demo", endpoint_url=aws.endpoint_url, now=NOW)


# -- metrics -----------------------------------------------------------------------------------


def _metric_query(namespace: str, metric: str, dims: dict[str, str], stat: str) -> dict[str, Any]:
    return {
        "Id": "q",
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": 60,
            "Stat": stat,
        },
    }


def _series(timestamps: list[datetime], values: list[float], count: int) -> list[float | None]:
    by_minute = {t.astimezone(UTC): v for t, v in zip(timestamps, values, strict=True)}
    return [by_minute.get(END - timedelta(minutes=count - 1 - i)) for i in range(count)]


def test_classic_metrics_read_back_with_gaps(aws: LocalAws) -> None:
    out = _seed(aws, "s3-clb-nacl-ephemeral.yaml")
    cloudwatch = _client(aws, "cloudwatch")
    dims = {"LoadBalancerName": "a71c5e0d9b3a4f2e8c1d0b9a8f7e6d5c"}
    window = {"StartTime": END - timedelta(minutes=7), "EndTime": END + timedelta(minutes=1)}

    data = cloudwatch.get_metric_data(
        MetricDataQueries=[_metric_query("AWS/ELB", "Latency", dims, "Maximum")], **window
    )["MetricDataResults"][0]
    stats = cloudwatch.get_metric_statistics(
        Namespace="AWS/ELB",
        MetricName="HTTPCode_ELB_5XX",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        Period=60,
        Statistics=["Sum"],
        **window,
    )["Datapoints"]

    assert out.metrics_end == END
    assert _series(data["Timestamps"], data["Values"], 8) == [
        0.2, 0.3, 10.0, 10.0, None, None, 10.0, None
    ]  # fmt: skip
    assert _series([d["Timestamp"] for d in stats], [d["Sum"] for d in stats], 8) == [
        0, 0, 41, 57, 63, 60, 58, 61
    ]  # fmt: skip


def test_alb_metrics_use_the_arn_suffix_and_target_group_dimensions(aws: LocalAws) -> None:
    out = _seed(aws, "c25-alb-termination-race.yaml")
    cloudwatch = _client(aws, "cloudwatch")
    lb_dim = out.lb_arns["k8s-shop-web-6f5e4d3c2b"].split(":loadbalancer/")[1]
    tg_dim = out.target_group_arns["k8s-shop-web-80"].split(":")[-1]
    window = {"StartTime": END - timedelta(minutes=7), "EndTime": END + timedelta(minutes=1)}

    per_lb = cloudwatch.get_metric_data(
        MetricDataQueries=[
            _metric_query(
                "AWS/ApplicationELB", "HTTPCode_ELB_502_Count", {"LoadBalancer": lb_dim}, "Sum"
            )
        ],
        **window,
    )["MetricDataResults"][0]
    per_tg = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName="TargetConnectionErrorCount",
        Dimensions=[
            {"Name": "LoadBalancer", "Value": lb_dim},
            {"Name": "TargetGroup", "Value": tg_dim},
        ],
        Period=60,
        Statistics=["Maximum"],
        **window,
    )["Datapoints"]

    assert lb_dim.startswith("app/k8s-shop-web-6f5e4d3c2b/")
    assert tg_dim.startswith("targetgroup/k8s-shop-web-80/")
    assert _series(per_lb["Timestamps"], per_lb["Values"], 8) == [0, 0, 37, 0, 0, 0, 41, 0]
    assert _series([d["Timestamp"] for d in per_tg], [d["Maximum"] for d in per_tg], 8) == [
        0, 0, 52, 0, 0, 0, 47, 0
    ]  # fmt: skip


def test_nlb_metrics_land_in_the_network_namespace(aws: LocalAws) -> None:
    out = _seed(aws, "s5-nlb-idle-pool-resets.yaml")
    lb_dim = out.lb_arns["k8s-db-pgbouncer-5d4c3b2a1f"].split(":loadbalancer/")[1]

    result = _client(aws, "cloudwatch").get_metric_data(
        MetricDataQueries=[
            _metric_query("AWS/NetworkELB", "ActiveFlowCount", {"LoadBalancer": lb_dim}, "Average")
        ],
        StartTime=END - timedelta(minutes=7),
        EndTime=END + timedelta(minutes=1),
    )["MetricDataResults"][0]

    assert lb_dim.startswith("net/k8s-db-pgbouncer-5d4c3b2a1f/")
    assert _series(result["Timestamps"], result["Values"], 8) == [
        310, 305, 120, 118, 119, 96, 301, 299
    ]  # fmt: skip


# -- fault injection ---------------------------------------------------------------------------


def test_injected_error_fails_only_the_chosen_elbv2_operation(aws: LocalAws) -> None:
    out = _seed(aws, "h0-alb-healthy.yaml")
    elbv2 = _client(aws, "elbv2")
    aws.inject_error(
        "DescribeTargetHealth", "AccessDenied", "not authorized to DescribeTargetHealth"
    )

    with pytest.raises(ClientError) as caught:
        elbv2.describe_target_health(TargetGroupArn=out.target_group_arns["k8s-shop-catalog-http"])

    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["Error"]["Message"] == "not authorized to DescribeTargetHealth"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(elbv2.describe_load_balancers()["LoadBalancers"]) == 1


def test_injected_error_with_times_stops_after_that_many_calls(aws: LocalAws) -> None:
    _seed(aws, "c01-clb-default-idle-timeout.yaml")
    elb = _client(aws, "elb")
    aws.inject_error("DescribeInstanceHealth", "Throttling", "Rate exceeded", times=2)
    name = "a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5"

    codes = []
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            elb.describe_instance_health(LoadBalancerName=name)
        codes.append(
            (
                caught.value.response["Error"]["Code"],
                caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
            )
        )
    third = elb.describe_instance_health(LoadBalancerName=name)["InstanceStates"]

    assert codes == [("Throttling", 400), ("Throttling", 400)]
    assert [s["State"] for s in third] == ["InService"]


def test_injected_error_reaches_cloudwatch_json_clients(aws: LocalAws) -> None:
    _seed(aws, "s1-alb-idle-timeout-short.yaml")
    cloudwatch = _client(aws, "cloudwatch")
    aws.inject_error("GetMetricData", "AccessDenied", "no cloudwatch:GetMetricData")
    window = {"StartTime": END - timedelta(minutes=5), "EndTime": END}

    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_data(
            MetricDataQueries=[
                _metric_query("AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "x"}, "Sum")
            ],
            **window,
        )
    listed = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB")["Metrics"]

    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert caught.value.response["Error"]["Message"] == "no cloudwatch:GetMetricData"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert {m["MetricName"] for m in listed} == {
        "TargetResponseTime",
        "HTTPCode_ELB_504_Count",
        "HTTPCode_ELB_5XX_Count",
        "RequestCount",
    }


def test_injected_error_reaches_ec2_clients(aws: LocalAws) -> None:
    _seed(aws, "s3-clb-nacl-ephemeral.yaml")
    ec2 = _client(aws, "ec2")
    aws.inject_error("DescribeNetworkAcls", "UnauthorizedOperation", "You are not authorized")

    with pytest.raises(ClientError) as caught:
        ec2.describe_network_acls()
    subnets = ec2.describe_subnets()["Subnets"]

    assert caught.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(subnets) >= 3


def test_cleared_errors_no_longer_fail(aws: LocalAws) -> None:
    _seed(aws, "c01-clb-default-idle-timeout.yaml")
    elb = _client(aws, "elb")
    aws.inject_error("DescribeLoadBalancers", "AccessDenied", "denied")

    aws.clear_errors()

    assert len(elb.describe_load_balancers()["LoadBalancerDescriptions"]) == 1


def test_injected_error_answers_rpc_v2_cbor_requests(aws: LocalAws) -> None:
    aws.inject_error("GetMetricData", "Throttling", "Rate exceeded")
    request = urllib.request.Request(
        f"{aws.endpoint_url}/service/GraniteServiceVersion20100801/operation/GetMetricData",
        data=b"\xa0",
        method="POST",
        headers={"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
    )

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    response = caught.value
    model = botocore.session.get_session().get_service_model("cloudwatch")
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {
            "status_code": response.code,
            "headers": dict(response.headers.items()),
            "body": response.read(),
        },
        model.operation_model("GetMetricData").output_shape,
    )

    assert response.code == 400
    assert parsed["Error"]["Code"] == "Throttling"
    assert parsed["Error"]["Message"] == "Rate exceeded"
