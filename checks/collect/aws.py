"""Reads the AWS side: the load balancers serving a Service and the network around them.

boto3's ``ClientError`` is translated here: refusals become :class:`~checks.errors.
AccessError` (for what the report cannot do without) or gaps naming the IAM action (for
what it can), so the rest of the report stands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from checks.collect.settings import Connection
from checks.errors import AccessError, BackendError
from checks.metrics_catalog import METRICS, NAMESPACES, series_key
from checks.snapshot import (
    AclEntry,
    Gap,
    HealthCheck,
    Instance,
    LbType,
    Listener,
    LoadBalancer,
    MetricSeries,
    NetworkAcl,
    SecurityGroup,
    SgRule,
    Subnet,
    TargetGroup,
    TargetHealth,
)

logger = logging.getLogger(__name__)

_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "RequestExpired",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20
)


class AwsCall:
    """One boto3 session and its clients, with logging and error translation."""

    def __init__(self, connection: Connection) -> None:
        try:
            session = boto3.session.Session(
                profile_name=connection.aws_profile,
                region_name=connection.region,
                aws_access_key_id=connection.aws_access_key_id,
                aws_secret_access_key=connection.aws_secret_access_key,
            )
        except BotoCoreError as exc:
            raise BackendError(f"Cannot set up AWS credentials: {exc}.") from exc
        if not session.region_name:
            raise BackendError(
                "No AWS region configured.",
                "Pass --region, set AWS_DEFAULT_REGION, or `aws configure set region REGION`.",
            )
        if connection.role_arn:
            session = assume_role(session, connection)
        self.region: str = session.region_name
        try:
            self._clients = {
                name: session.client(
                    name, endpoint_url=connection.aws_endpoint_url, config=_BOTO_CONFIG
                )
                for name in ("elb", "elbv2", "ec2", "cloudwatch")
            }
        except (BotoCoreError, ValueError) as exc:
            raise BackendError(
                f"Cannot set up AWS clients for region {self.region!r}: {exc}.",
                "Check the region name (e.g. us-east-1) and the endpoint URL.",
            ) from exc

    def __call__(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        client = self._clients[service]
        started = time.monotonic()
        try:
            result: dict[str, Any] = getattr(client, operation)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            logger.info(
                "aws %s.%s -> %s in %.3f s", service, operation, code, time.monotonic() - started
            )
            raise translate(exc, service, operation) from exc
        except NoCredentialsError as exc:
            raise BackendError(
                "No AWS credentials found.",
                "Configure them as for the AWS CLI: `aws configure`, AWS_PROFILE, or "
                "`aws sso login`; `aws sts get-caller-identity` shows who you are.",
            ) from exc
        except (BotoCoreError, ResponseParserError) as exc:
            logger.info("aws %s.%s -> %s", service, operation, type(exc).__name__)
            raise BackendError(
                f"Cannot reach AWS for {service}:{_action(operation)}: {exc}.",
                "Check network access and credentials (`aws sts get-caller-identity`).",
            ) from exc
        logger.info("aws %s.%s -> ok in %.3f s", service, operation, time.monotonic() - started)
        return result

    def pages(self, service: str, operation: str, key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        token_in, token_out = _PAGINATION[service]
        while True:
            page = self(service, operation, **params)
            items.extend(page.get(key) or [])
            token = page.get(token_out)
            if not token:
                return items
            params[token_in] = token


def assume_role(session: boto3.session.Session, connection: Connection) -> boto3.session.Session:
    """A session in the same region with the temporary credentials of the connection's role."""
    role_arn = str(connection.role_arn)
    sts = session.client("sts", endpoint_url=connection.aws_endpoint_url, config=_BOTO_CONFIG)
    started = time.monotonic()
    try:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="eks504")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        logger.info("aws sts.assume_role %s -> %s", role_arn, code)
        raise translate(exc, "sts", "assume_role") from exc
    except BotoCoreError as exc:
        logger.info("aws sts.assume_role %s -> %s", role_arn, type(exc).__name__)
        raise BackendError(
            f"Cannot reach AWS to assume {role_arn}: {exc}.",
            "Check network access and the base credentials (`aws sts get-caller-identity`).",
        ) from exc
    logger.info("aws sts.assume_role %s -> ok in %.3f s", role_arn, time.monotonic() - started)
    credentials = answer["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=session.region_name,
    )


_PAGINATION = {
    "elb": ("Marker", "NextMarker"),
    "elbv2": ("Marker", "NextMarker"),
    "ec2": ("NextToken", "NextToken"),
    "cloudwatch": ("NextToken", "NextToken"),
}
_IAM_PREFIX = {
    "elb": "elasticloadbalancing",
    "elbv2": "elasticloadbalancing",
    "ec2": "ec2",
    "cloudwatch": "cloudwatch",
    "sts": "sts",
}


def _action(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def translate(exc: ClientError, service: str, operation: str) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).strip()
    action = f"{_IAM_PREFIX[service]}:{_action(operation)}"
    if code in _DENIED:
        return AccessError(f"AWS refused {action} ({code}).", needs=f"the IAM action `{action}`")
    if code in _BAD_CREDENTIALS:
        return BackendError(
            f"AWS rejected the credentials for {action} ({code}).",
            "Refresh them (`aws sso login`, or new keys) and check with "
            "`aws sts get-caller-identity`.",
        )
    return BackendError(
        f"AWS {action} failed: {code}{': ' + message if message else ''}.",
        "Try again in a minute; if it persists, check the AWS Health Dashboard.",
    )


def _gap(area: str, resource: str, err: Exception) -> Gap:
    return Gap(area=area, resource=resource, reason=str(err), needs=getattr(err, "needs", ""))


def _tags_classic(call: AwsCall, name: str) -> dict[str, str]:
    result = call("elb", "describe_tags", LoadBalancerNames=[name])
    descriptions = result.get("TagDescriptions") or [{}]
    return {t["Key"]: t.get("Value", "") for t in descriptions[0].get("Tags", [])}


def _classic(call: AwsCall, desc: dict[str, Any], gaps: list[Gap]) -> LoadBalancer:
    name = desc["LoadBalancerName"]
    attributes: dict[str, str] = {}
    try:
        attrs = call("elb", "describe_load_balancer_attributes", LoadBalancerName=name)[
            "LoadBalancerAttributes"
        ]
        attributes["idle_timeout"] = str(attrs.get("ConnectionSettings", {}).get("IdleTimeout", ""))
        attributes["cross_zone"] = str(
            attrs.get("CrossZoneLoadBalancing", {}).get("Enabled", False)
        ).lower()
        draining = attrs.get("ConnectionDraining") or {}
        if draining:
            attributes["connection_draining"] = str(draining.get("Enabled", False)).lower()
            attributes["connection_draining_timeout"] = str(draining.get("Timeout", ""))
    except (AccessError, BackendError) as err:
        gaps.append(_gap("lb-attributes", name, err))
    instances: tuple[TargetHealth, ...] = ()
    try:
        states = call("elb", "describe_instance_health", LoadBalancerName=name)["InstanceStates"]
        instances = tuple(
            TargetHealth(
                id=s["InstanceId"],
                port=None,
                state=s.get("State", ""),
                reason=s.get("ReasonCode", "") if s.get("ReasonCode") != "N/A" else "",
                description=s.get("Description", "") if s.get("Description") != "N/A" else "",
            )
            for s in states
        )
    except (AccessError, BackendError) as err:
        gaps.append(_gap("target-health", name, err))
    tags: dict[str, str] = {}
    try:
        tags = _tags_classic(call, name)
    except (AccessError, BackendError) as err:
        gaps.append(_gap("lb-tags", name, err))
    listeners = tuple(
        Listener(
            port=int(ld["Listener"]["LoadBalancerPort"]),
            protocol=str(ld["Listener"]["Protocol"]).upper(),
            instance_port=int(ld["Listener"]["InstancePort"]),
            instance_protocol=str(ld["Listener"].get("InstanceProtocol") or "").upper() or None,
        )
        for ld in desc.get("ListenerDescriptions", [])
    )
    return LoadBalancer(
        name=name,
        type="classic",
        dns_name=str(desc.get("DNSName", "")),
        scheme=str(desc.get("Scheme", "")),
        vpc_id=str(desc.get("VPCId", "")),
        subnet_ids=tuple(desc.get("Subnets", [])),
        security_group_ids=tuple(desc.get("SecurityGroups", [])),
        attributes=attributes,
        listeners=listeners,
        instances=instances,
        tags=tags,
        arn="",
    )


def _health_check(tg: dict[str, Any]) -> HealthCheck:
    matcher = tg.get("Matcher") or {}
    return HealthCheck(
        protocol=str(tg.get("HealthCheckProtocol", "")),
        port=str(tg.get("HealthCheckPort", "traffic-port")),
        path=str(tg.get("HealthCheckPath", "") or ""),
        matcher=str(matcher.get("HttpCode") or matcher.get("GrpcCode") or ""),
        interval_s=tg.get("HealthCheckIntervalSeconds"),
        timeout_s=tg.get("HealthCheckTimeoutSeconds"),
    )


def _target_group(call: AwsCall, tg: dict[str, Any], gaps: list[Gap]) -> TargetGroup:
    arn = tg["TargetGroupArn"]
    name = tg["TargetGroupName"]
    attributes: dict[str, str] = {}
    try:
        attributes = {
            a["Key"]: str(a.get("Value", ""))
            for a in call("elbv2", "describe_target_group_attributes", TargetGroupArn=arn)[
                "Attributes"
            ]
        }
    except (AccessError, BackendError) as err:
        gaps.append(_gap("target-group-attributes", name, err))
    targets: tuple[TargetHealth, ...] = ()
    try:
        descriptions = call("elbv2", "describe_target_health", TargetGroupArn=arn)[
            "TargetHealthDescriptions"
        ]
        targets = tuple(
            TargetHealth(
                id=d["Target"]["Id"],
                port=d["Target"].get("Port"),
                az=d["Target"].get("AvailabilityZone", "") or "",
                state=d.get("TargetHealth", {}).get("State", ""),
                reason=d.get("TargetHealth", {}).get("Reason", "") or "",
                description=d.get("TargetHealth", {}).get("Description", "") or "",
            )
            for d in descriptions
        )
    except (AccessError, BackendError) as err:
        gaps.append(_gap("target-health", name, err))
    return TargetGroup(
        name=name,
        arn=arn,
        target_type=str(tg.get("TargetType", "instance")),
        protocol=str(tg.get("Protocol", "")),
        port=int(tg.get("Port") or 0),
        health_check=_health_check(tg),
        attributes=attributes,
        targets=targets,
    )


def _v2(call: AwsCall, desc: dict[str, Any], gaps: list[Gap]) -> LoadBalancer:
    arn = desc["LoadBalancerArn"]
    name = desc["LoadBalancerName"]
    lb_type: LbType = "application" if desc.get("Type") == "application" else "network"
    attributes: dict[str, str] = {}
    try:
        attributes = {
            a["Key"]: str(a.get("Value", ""))
            for a in call("elbv2", "describe_load_balancer_attributes", LoadBalancerArn=arn)[
                "Attributes"
            ]
        }
    except (AccessError, BackendError) as err:
        gaps.append(_gap("lb-attributes", name, err))
    listeners: list[Listener] = []
    try:
        for lst in call("elbv2", "describe_listeners", LoadBalancerArn=arn)["Listeners"]:
            tg_arns = tuple(
                a["TargetGroupArn"]
                for a in lst.get("DefaultActions", [])
                if a.get("TargetGroupArn")
            )
            lst_attributes: dict[str, str] = {}
            if lb_type == "network":
                try:
                    lst_attributes = {
                        a["Key"]: str(a.get("Value", ""))
                        for a in call(
                            "elbv2",
                            "describe_listener_attributes",
                            ListenerArn=lst["ListenerArn"],
                        ).get("Attributes", [])
                    }
                except (AccessError, BackendError) as err:
                    gaps.append(_gap("listener-attributes", name, err))
            listeners.append(
                Listener(
                    port=int(lst["Port"]),
                    arn=str(lst.get("ListenerArn", "")),
                    protocol=str(lst.get("Protocol", "")),
                    target_group_arns=tg_arns,
                    attributes=lst_attributes,
                )
            )
    except (AccessError, BackendError) as err:
        gaps.append(_gap("listeners", name, err))
    target_groups: tuple[TargetGroup, ...] = ()
    try:
        tgs = call("elbv2", "describe_target_groups", LoadBalancerArn=arn)["TargetGroups"]
        target_groups = tuple(_target_group(call, tg, gaps) for tg in tgs)
    except (AccessError, BackendError) as err:
        gaps.append(_gap("target-groups", name, err))
    tags: dict[str, str] = {}
    try:
        described = call("elbv2", "describe_tags", ResourceArns=[arn])["TagDescriptions"]
        tags = {t["Key"]: t.get("Value", "") for t in (described or [{}])[0].get("Tags", [])}
    except (AccessError, BackendError) as err:
        gaps.append(_gap("lb-tags", name, err))
    return LoadBalancer(
        name=name,
        type=lb_type,
        dns_name=str(desc.get("DNSName", "")),
        scheme=str(desc.get("Scheme", "")),
        vpc_id=str(desc.get("VpcId", "")),
        subnet_ids=tuple(az["SubnetId"] for az in desc.get("AvailabilityZones", [])),
        security_group_ids=tuple(desc.get("SecurityGroups", []) or ()),
        attributes=attributes,
        listeners=tuple(listeners),
        target_groups=target_groups,
        arn=arn,
        tags=tags,
    )


def find_load_balancers(
    call: AwsCall, hostnames: Iterable[str], gaps: list[Gap]
) -> list[LoadBalancer]:
    """The load balancers whose DNS names are ``hostnames`` (matched on the DNS name)."""
    wanted = {h.lower().rstrip(".") for h in hostnames}
    if not wanted:
        return []
    # Both APIs are asked: any of the three types may serve the name.
    with ThreadPoolExecutor(max_workers=2) as pool:
        classic_f = pool.submit(
            call.pages, "elb", "describe_load_balancers", "LoadBalancerDescriptions"
        )
        v2_f = pool.submit(call.pages, "elbv2", "describe_load_balancers", "LoadBalancers")
        classic, v2 = classic_f.result(), v2_f.result()
    found: list[LoadBalancer] = []
    for desc in classic:
        if str(desc.get("DNSName", "")).lower().rstrip(".") in wanted:
            found.append(_classic(call, desc, gaps))
    for desc in v2:
        if str(desc.get("DNSName", "")).lower().rstrip(".") in wanted:
            found.append(_v2(call, desc, gaps))
    return found


def find_by_target_groups(
    call: AwsCall, target_group_arns: Iterable[str], gaps: list[Gap]
) -> dict[str, LoadBalancer]:
    """Target group ARN -> the load balancer that forwards to it (TargetGroupBinding)."""
    arns = sorted(set(target_group_arns))
    if not arns:
        return {}
    groups = call("elbv2", "describe_target_groups", TargetGroupArns=arns)["TargetGroups"]
    lb_arns = sorted({a for g in groups for a in g.get("LoadBalancerArns", [])})
    if not lb_arns:
        return {}
    found = {
        d["LoadBalancerArn"]: _v2(call, d, gaps)
        for d in call("elbv2", "describe_load_balancers", LoadBalancerArns=lb_arns)["LoadBalancers"]
    }
    return {
        g["TargetGroupArn"]: found[a]
        for g in groups
        for a in g.get("LoadBalancerArns", [])
        if a in found
    }


def _sg_rules(permissions: list[dict[str, Any]]) -> tuple[SgRule, ...]:
    rules = []
    for p in permissions:
        rules.append(
            SgRule(
                protocol=str(p.get("IpProtocol", "-1")),
                from_port=p.get("FromPort"),
                to_port=p.get("ToPort"),
                cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges", []) if r.get("CidrIp"))
                + tuple(r["CidrIpv6"] for r in p.get("Ipv6Ranges", []) if r.get("CidrIpv6")),
                group_ids=tuple(
                    g["GroupId"] for g in p.get("UserIdGroupPairs", []) if g.get("GroupId")
                ),
                prefix_list_ids=tuple(
                    pl["PrefixListId"]
                    for pl in p.get("PrefixListIds", [])
                    if pl.get("PrefixListId")
                ),
            )
        )
    return tuple(rules)


def _name_tag(tags: list[dict[str, str]] | None) -> str:
    return next((t.get("Value", "") for t in tags or [] if t.get("Key") == "Name"), "")


class NetworkFacts:
    def __init__(self) -> None:
        self.vpc_cidr = ""
        self.subnets: dict[str, Subnet] = {}
        self.network_acls: dict[str, NetworkAcl] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.instances: dict[str, Instance] = {}
        self.prefix_lists: dict[str, tuple[str, ...]] = {}


def fetch_prefix_lists(
    call: AwsCall, groups: Iterable[SecurityGroup], gaps: list[Gap]
) -> dict[str, tuple[str, ...]]:
    """Prefix list id -> the CIDRs it holds, for every list a rule of ``groups`` names.

    A list that cannot be read is left out (with a gap): the rules naming it stay unjudged.
    """
    listed = sorted(
        {pl for g in groups for rule in (*g.ingress, *g.egress) for pl in rule.prefix_list_ids}
    )
    found: dict[str, tuple[str, ...]] = {}
    for prefix_list_id in listed:
        try:
            entries = call.pages(
                "ec2", "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list_id
            )
        except (AccessError, BackendError) as err:
            gaps.append(_gap("prefix-lists", prefix_list_id, err))
            continue
        found[prefix_list_id] = tuple(str(e["Cidr"]) for e in entries if e.get("Cidr"))
    return found


def fetch_network(
    call: AwsCall, vpc_id: str, instance_ids: set[str], extra_sg_ids: set[str], gaps: list[Gap]
) -> NetworkFacts:
    """Subnets (with their route to the internet), ACLs, groups and instances of the VPC."""
    facts = NetworkFacts()
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}]

    def guarded(area: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (AccessError, BackendError) as err:
            gaps.append(_gap(area, vpc_id, err))

    def vpc() -> None:
        vpcs = call("ec2", "describe_vpcs", VpcIds=[vpc_id])["Vpcs"]
        facts.vpc_cidr = str(vpcs[0].get("CidrBlock", "")) if vpcs else ""

    def instances() -> None:
        if not instance_ids:
            return
        reservations = call.pages(
            "ec2", "describe_instances", "Reservations", InstanceIds=sorted(instance_ids)
        )
        for reservation in reservations:
            for i in reservation.get("Instances", []):
                facts.instances[i["InstanceId"]] = Instance(
                    id=i["InstanceId"],
                    subnet_id=str(i.get("SubnetId", "")),
                    private_ip=str(i.get("PrivateIpAddress", "")),
                    az=str(i.get("Placement", {}).get("AvailabilityZone", "")),
                    security_group_ids=tuple(g["GroupId"] for g in i.get("SecurityGroups", [])),
                )

    def listed(area: str, operation: str, key: str) -> list[Any]:
        """One describe call of the VPC; a refusal is a gap of its own area, so the parts
        that were read still stand (subnets without their ACLs, for instance)."""
        try:
            return call.pages("ec2", operation, key, Filters=filters)
        except (AccessError, BackendError) as err:
            gaps.append(_gap(area, vpc_id, err))
            return []

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: dict[str, Future[Any]] = {
            "vpc": pool.submit(guarded, "vpc", vpc),
            "instances": pool.submit(guarded, "instances", instances),
            "subnets": pool.submit(listed, "subnets", "describe_subnets", "Subnets"),
            "routes": pool.submit(listed, "route-tables", "describe_route_tables", "RouteTables"),
            "acls": pool.submit(listed, "network-acls", "describe_network_acls", "NetworkAcls"),
        }
        subnets: list[Any] = futures["subnets"].result()
        routes: list[Any] = futures["routes"].result()
        acls: list[Any] = futures["acls"].result()
        futures["vpc"].result()
        futures["instances"].result()

    acl_by_subnet: dict[str, str] = {}
    for acl in acls:
        entries = tuple(
            AclEntry(
                rule_number=int(e["RuleNumber"]),
                egress=bool(e.get("Egress")),
                protocol=str(e.get("Protocol", "-1")),
                cidr=str(e.get("CidrBlock") or e.get("Ipv6CidrBlock") or "0.0.0.0/0"),
                action="allow" if e.get("RuleAction") == "allow" else "deny",
                port_from=(e.get("PortRange") or {}).get("From"),
                port_to=(e.get("PortRange") or {}).get("To"),
            )
            for e in acl.get("Entries", [])
        )
        facts.network_acls[acl["NetworkAclId"]] = NetworkAcl(
            id=acl["NetworkAclId"],
            is_default=bool(acl.get("IsDefault")),
            entries=tuple(sorted(entries, key=lambda e: e.rule_number)),
            name=_name_tag(acl.get("Tags")),
        )
        for assoc in acl.get("Associations", []):
            acl_by_subnet[assoc["SubnetId"]] = acl["NetworkAclId"]
    default_acl = next((a.id for a in facts.network_acls.values() if a.is_default), None)

    public_tables: set[str] = set()
    main_public = False
    table_by_subnet: dict[str, str] = {}
    for table in routes:
        has_igw = any(
            str(r.get("GatewayId", "")).startswith("igw-") and r.get("State", "active") == "active"
            for r in table.get("Routes", [])
        )
        for assoc in table.get("Associations", []):
            if assoc.get("Main"):
                main_public = main_public or has_igw
            elif assoc.get("SubnetId"):
                table_by_subnet[assoc["SubnetId"]] = table["RouteTableId"]
        if has_igw:
            public_tables.add(table["RouteTableId"])

    for s in subnets:
        sid = s["SubnetId"]
        table = table_by_subnet.get(sid)
        facts.subnets[sid] = Subnet(
            id=sid,
            cidr=str(s.get("CidrBlock", "")),
            az=str(s.get("AvailabilityZone", "")),
            vpc_id=vpc_id,
            public=(table in public_tables) if table else main_public,
            network_acl_id=acl_by_subnet.get(sid, default_acl),
            name=_name_tag(s.get("Tags")),
        )

    sg_ids = set(extra_sg_ids)
    for inst in facts.instances.values():
        sg_ids.update(inst.security_group_ids)
    if sg_ids:
        try:
            groups = call.pages(
                "ec2", "describe_security_groups", "SecurityGroups", GroupIds=sorted(sg_ids)
            )
            for g in groups:
                facts.security_groups[g["GroupId"]] = SecurityGroup(
                    id=g["GroupId"],
                    name=str(g.get("GroupName", "")),
                    vpc_id=str(g.get("VpcId", "")),
                    ingress=_sg_rules(g.get("IpPermissions", [])),
                    egress=_sg_rules(g.get("IpPermissionsEgress", [])),
                )
        except (AccessError, BackendError) as err:
            gaps.append(_gap("security-groups", ",".join(sorted(sg_ids)), err))
        facts.prefix_lists = fetch_prefix_lists(call, facts.security_groups.values(), gaps)
    return facts


def _dimension_value(lb: LoadBalancer) -> tuple[str, str]:
    if lb.type == "classic":
        return "LoadBalancerName", lb.name
    return "LoadBalancer", lb.arn.split(":loadbalancer/", 1)[-1]


def fetch_metrics(
    call: AwsCall, lb: LoadBalancer, window_s: int, gaps: list[Gap], now: datetime | None = None
) -> dict[str, MetricSeries]:
    """Every metric of the catalogue for ``lb``, one point a minute over the window."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    minutes = max(1, window_s // 60)
    start = end - timedelta(minutes=minutes)
    dim_name, dim_value = _dimension_value(lb)
    queries: list[dict[str, Any]] = []
    meta: dict[str, tuple[str, str, dict[str, str]]] = {}
    for spec in METRICS[lb.type]:
        dimension_sets: list[tuple[str, dict[str, str]]] = [("", {dim_name: dim_value})]
        if spec.per_target_group:
            for tg in lb.target_groups:
                tg_dim = tg.arn.split(":", 5)[-1]
                dimension_sets.append((tg.name, {dim_name: dim_value, "TargetGroup": tg_dim}))
        for tg_name, dims in dimension_sets:
            query_id = f"m{len(queries)}"
            meta[query_id] = (series_key(spec.name, tg_name), spec.stat, dims)
            queries.append(
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACES[lb.type],
                            "MetricName": spec.name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                        },
                        "Period": 60,
                        "Stat": spec.stat,
                    },
                    "ReturnData": True,
                }
            )
    try:
        results = call.pages(
            "cloudwatch",
            "get_metric_data",
            "MetricDataResults",
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
        )
    except (AccessError, BackendError) as err:
        gaps.append(_gap("metrics", lb.name, err))
        return {}
    slots = [start + timedelta(minutes=i) for i in range(minutes)]
    merged: dict[str, dict[datetime, float]] = {}
    for result in results:
        points = merged.setdefault(result["Id"], {})
        for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
            points[ts.astimezone(UTC).replace(second=0, microsecond=0)] = float(value)
    series: dict[str, MetricSeries] = {}
    for query_id, (key, stat, dims) in meta.items():
        points = merged.get(query_id, {})
        if not points:
            continue
        values = tuple(points.get(slot) for slot in slots)
        # Trim the leading minutes with no data so the series reads like the console graph.
        first = next((i for i, v in enumerate(values) if v is not None), len(values))
        series[key] = MetricSeries(
            name=key.split("@", 1)[0],
            stat=stat,
            values=values[first:],
            dimensions=dims,
            timestamps=tuple(s.timestamp() for s in slots[first:]),
        )
    return series
