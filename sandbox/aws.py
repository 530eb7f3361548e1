"""A local AWS account for scenarios: a moto server on loopback, seeded from a scenario's `aws`.

`LocalAws` runs moto's threaded server in this process, behind a small WSGI layer that can
answer chosen API operations with AWS errors. `seed` creates the scenario's VPC, subnets,
managed prefix lists, security groups, network ACLs, instances, load balancers and
CloudWatch series through boto3
over HTTP, exactly as a client would, and returns the ids the endpoint assigned.

Two things moto gets wrong for a scenario, so `_install_moto_hooks` adjusts moto's
in-process models once per process (the server shares this process):

- target and instance health: moto derives it from instance state, while a scenario states
  it outright, with AWS reason codes and descriptions. `seed` stores the scenario's health
  on the moto objects it created, and only those answer differently;
- a Network Load Balancer's ARN: moto names every elbv2 load balancer `app/NAME/ID`,
  where AWS names an NLB `net/NAME/ID`, and the ARN suffix is the CloudWatch dimension.

Everything else (listener, load-balancer and target-group attributes included) goes
through the real API calls.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from checks.errors import ScenarioError

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_CLUSTER_NAME = "demo"

# One of the AMIs moto ships in its default image list. With that list switched off
# (MOTO_EC2_LOAD_DEFAULT_AMIS=false, which makes each reset much faster), seed registers
# an image of its own instead, so instances always run an image DescribeImages knows.
_AMI_ID = "ami-03cf127a"
_AMI_NAME = "eks504-sandbox-node"
_INSTANCE_TYPE = "m5.large"
# An IAM server-certificate ARN: moto accepts it for HTTPS/TLS listeners without ACM.
_CERTIFICATE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:server-certificate/eks504-sandbox"

_HEALTH_ATTR = "_eks504_seeded_health"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# ---------------------------------------------------------------------------------------------
# What seed returns


@dataclass
class SeededAws:
    endpoint_url: str
    region: str
    vpc_id: str
    subnet_ids: dict[str, str] = field(default_factory=dict)
    security_group_ids: dict[str, str] = field(default_factory=dict)
    prefix_list_ids: dict[str, str] = field(default_factory=dict)
    instance_ids: dict[str, str] = field(default_factory=dict)
    instance_ips: dict[str, str] = field(default_factory=dict)
    network_acl_ids: dict[str, str] = field(default_factory=dict)
    lb_dns_names: dict[str, str] = field(default_factory=dict)
    lb_for: dict[str, list[str]] = field(default_factory=dict)
    # Beyond the names above: ARNs of elbv2 objects, keyed by the scenario's names.
    lb_arns: dict[str, str] = field(default_factory=dict)
    target_group_arns: dict[str, str] = field(default_factory=dict)
    # The minute the last value of every metric series was put at (UTC).
    metrics_end: datetime | None = None


# ---------------------------------------------------------------------------------------------
# The server and its fault injection


@dataclass
class _Fault:
    code: str
    message: str
    status: int
    remaining: int | None


# HTTP statuses AWS answers these error codes with; any other code gets 400.
_ERROR_STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "UnauthorizedOperation": 403,
    "AuthFailure": 401,
    "ExpiredToken": 403,
    "InvalidClientTokenId": 403,
    "Throttling": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalError": 500,
}

_SIGNING_SERVICE = re.compile(r"Credential=[^/,]+/[^/]+/[^/]+/([^/]+)/")
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")


@dataclass(frozen=True)
class _Call:
    """What the fault layer needs to know about one request."""

    operation: str | None
    protocol: str  # query | ec2 | json | cbor
    service: str
    version: str


def _read_call(environ: dict[str, Any]) -> _Call:
    """Names the API operation of a request; leaves the body readable for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = b""
    if length:
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)

    match = _SIGNING_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else ""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return _Call(target.rsplit(".", 1)[-1], "json", service, "")
    rpc = _RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
    if rpc:
        return _Call(rpc.group(1), "cbor", service, "")

    params = parse_qs(environ.get("QUERY_STRING", ""))
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    operation = params.get("Action", [None])[0]
    version = params.get("Version", [""])[0]
    return _Call(operation, "ec2" if service == "ec2" else "query", service, version)


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 | size])
    elif size < 0x100:
        head = bytes([0x78, size])
    elif size < 0x10000:
        head = b"\x79" + size.to_bytes(2, "big")
    else:
        head = b"\x7a" + size.to_bytes(4, "big")
    return head + data


def _cbor_text_map(items: Mapping[str, str]) -> bytes:
    """A CBOR map of text to text: all an RPCv2 error body holds."""
    out = bytes([0xA0 | len(items)])
    for key, value in items.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def _error_response(call: _Call, fault: _Fault) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body AWS sends for an error, in the request's protocol."""
    request_id = str(uuid.uuid4())
    fault_type = "Receiver" if fault.status >= 500 else "Sender"
    code, message = escape(fault.code), escape(fault.message)
    if call.protocol in ("json", "cbor"):
        # CloudWatch is "awsQueryCompatible": the header carries the code query clients know.
        headers = [
            ("x-amzn-RequestId", request_id),
            ("x-amzn-query-error", f"{fault.code};{fault_type}"),
        ]
        payload = {"__type": fault.code, "message": fault.message}
        if call.protocol == "json":
            headers.append(("Content-Type", "application/x-amz-json-1.0"))
            return fault.status, headers, json.dumps(payload).encode()
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return fault.status, headers, _cbor_text_map(payload)
    if call.protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return fault.status, [("Content-Type", "text/xml;charset=UTF-8")], body.encode()
    namespace = f"http://{call.service}.amazonaws.com/doc/{call.version}/"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault_type}</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return fault.status, headers, body.encode()


class _FaultLayer:
    """WSGI middleware: answers chosen operations with an AWS error instead of moto."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}

    def add(self, operation: str, fault: _Fault) -> None:
        with self._lock:
            self._faults[operation] = fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, operation: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(operation)
            if fault is None or fault.remaining is None:
                return fault
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[operation]
            return fault

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def faulty_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if not self._faults:
                return app(environ, start_response)
            call = _read_call(environ)
            fault = self._take(call.operation) if call.operation else None
            if fault is None:
                return app(environ, start_response)
            logger.debug("answering %s with injected %s", call.operation, fault.code)
            status, headers, body = _error_response(call, fault)
            headers.append(("Content-Length", str(len(body))))
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [body]

        return faulty_app


def _moto_server(faults: _FaultLayer) -> Any:
    """moto's ThreadedMotoServer, with the fault layer in front of its WSGI app."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietRequestHandler(MotoRequestHandler):
        # Werkzeug writes one stderr line per request otherwise; keep them at DEBUG.
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            logger.debug("moto %s %s", self.requestline, code)

    class FaultyMotoServer(ThreadedMotoServer):
        # Same as moto's own entry point, except for the wrapped app and the handler.
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address,
                self._port,
                faults.wrap(app),
                True,
                request_handler=QuietRequestHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return FaultyMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


class LocalAws:
    """A moto server (moto.server.ThreadedMotoServer) on 127.0.0.1, free port."""

    def __init__(self) -> None:
        self._faults = _FaultLayer()
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> str:
        if self._server is not None:
            return self.endpoint_url
        _install_moto_hooks()
        server = _moto_server(self._faults)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        logger.info("local AWS endpoint listening on %s", self.endpoint_url)
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        logger.info("local AWS endpoint on %s stopped", self.endpoint_url)

    def reset(self) -> None:
        """Forgets every resource (moto's reset API) and every injected error."""
        self.clear_errors()
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def inject_error(
        self,
        operation: str,
        code: str,
        message: str,
        *,
        times: int | None = None,
        status: int | None = None,
    ) -> None:
        """Makes the next `times` calls of `operation` (None: every call) fail with `code`.

        `status` defaults to the HTTP status AWS uses for the code (400 when unknown).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every call")
        fault = _Fault(code, message, status or _ERROR_STATUS.get(code, 400), times)
        self._faults.add(operation, fault)

    def clear_errors(self) -> None:
        self._faults.clear()

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Health as the scenario states it, inside moto's models


@dataclass(frozen=True)
class _Health:
    state: str
    reason: str | None
    description: str | None


# What AWS says, in TargetHealth.Description, for each reason code.
_TARGET_REASON_TEXT: dict[str, str] = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Elb.InternalError": "Health checks failed due to an internal error",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.NotRegistered": "Target is not registered to the target group",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.InvalidState": "Target is in the stopped state",
    "Target.IpUnusable": "The target IP address is reserved for use by a load balancer",
    "Target.HealthCheckDisabled": "Health checks are disabled",
}

# Classic ELB descriptions whose cause is the load balancer, not the instance.
_CLASSIC_ELB_CAUSES = ("registration is still in progress", "Availability Zone", "stopped state")


def _target_health(value: Any) -> _Health:
    if isinstance(value, Mapping):
        state = str(value.get("state", "healthy"))
        reason = value.get("reason")
        description = value.get("description")
    else:
        state, reason, description = str(value), None, None
    if reason is not None and description is None:
        description = _TARGET_REASON_TEXT.get(str(reason))
    return _Health(state, None if reason is None else str(reason), description)


def _instance_health(value: Any) -> _Health:
    """Classic health: a state, a ReasonCode (ELB | Instance | N/A) and a Description."""
    if isinstance(value, Mapping):
        state = str(value.get("state", "InService"))
        description = str(value.get("reason") or value.get("description") or "N/A")
        reason_code = value.get("reason_code")
    else:
        state, description, reason_code = str(value), "N/A", None
    if reason_code is None:
        if state == "InService" or description == "N/A":
            reason_code = "N/A"
        elif any(cause in description for cause in _CLASSIC_ELB_CAUSES):
            reason_code = "ELB"
        else:
            reason_code = "Instance"
    return _Health(state, str(reason_code), description)


# The type segment AWS puts in an elbv2 load balancer's ARN (moto always writes "app").
_ARN_TYPE_SEGMENT = {"application": "app", "network": "net", "gateway": "gwy"}

_hooks_lock = threading.Lock()
_hooks_installed = False


def _install_moto_hooks() -> None:
    """Makes moto report seeded health and name NLBs as AWS does (see the module's notes)."""
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        from moto.core.responses import ActionResult
        from moto.elb.responses import ELBResponse
        from moto.elbv2.models import ELBv2Backend, FakeTargetGroup

        moto_health_for = FakeTargetGroup.health_for

        def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
            status = moto_health_for(self, target, ec2_backend)
            seeded: dict[tuple[str, int], _Health] | None = getattr(self, _HEALTH_ATTR, None)
            registered = self.targets.get(target["Id"])
            if seeded and registered is not None:
                health = seeded.get((target["Id"], int(registered["Port"])))
                if health is not None:
                    status.status = health.state
                    status.reason = health.reason
                    status.description = health.description
            return status

        moto_describe_instance_health = ELBResponse.describe_instance_health

        def describe_instance_health(self: Any) -> Any:
            name = self._get_param("LoadBalancerName")
            balancer = self.elb_backend.get_load_balancer(name)
            seeded: dict[str, _Health] | None = getattr(balancer, _HEALTH_ATTR, None)
            if not seeded:
                return moto_describe_instance_health(self)
            asked = self._get_param("Instances", [])
            rows = []
            for row in self.elb_backend.describe_instance_health(name, asked):
                health = seeded.get(row["InstanceId"]) if row["State"] != "Unknown" else None
                rows.append(
                    {
                        "InstanceId": row["InstanceId"],
                        "State": health.state if health else row["State"],
                        "ReasonCode": health.reason if health else "N/A",
                        "Description": health.description if health else "N/A",
                    }
                )
            return ActionResult({"InstanceStates": rows})

        moto_create_load_balancer = ELBv2Backend.create_load_balancer

        def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
            balancer = moto_create_load_balancer(self, *args, **kwargs)
            moto_part = ":loadbalancer/app/"
            segment = _ARN_TYPE_SEGMENT.get(balancer.type, "app")
            if segment != "app" and moto_part in balancer.arn:
                arn = balancer.arn.replace(moto_part, f":loadbalancer/{segment}/")
                self.load_balancers[arn] = self.load_balancers.pop(balancer.arn)
                self.tagging_service.copy_tags(balancer.arn, arn)
                self.tagging_service.delete_all_tags_for_resource(balancer.arn)
                balancer.arn = arn
            return balancer

        FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]
        ELBv2Backend.create_load_balancer = create_load_balancer  # type: ignore[method-assign]
        replaced = describe_instance_health
        ELBResponse.describe_instance_health = replaced  # type: ignore[method-assign]
        _hooks_installed = True
        logger.debug("moto hooks installed")


def _backend(service: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT_ID][region]  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------------
# Reading the scenario


_SG_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "all": "-1", "-1": "-1"}
_NACL_PROTOCOLS = {"tcp": "6", "udp": "17", "icmp": "1", "all": "-1", "-1": "-1"}
# The in-tree cloud provider names a load balancer "a" + the Service's UID, 32 characters.
_IN_TREE_NAME = re.compile(r"a[0-9a-f]{31}")
_LBC_NLB_CLASS = "service.k8s.aws/nlb"
_LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
_GROUP_ANNOTATION = "alb.ingress.kubernetes.io/group.name"
# What AWS reports for attributes nobody set; moto leaves some out or differs.
_ELBV2_DEFAULTS = {
    "application": {
        "idle_timeout.timeout_seconds": "60",
        "load_balancing.cross_zone.enabled": "true",
    },
    "network": {"load_balancing.cross_zone.enabled": "false"},
}
_NLB_TCP_IDLE_TIMEOUT = "350"
_NAMESPACES = {
    "classic": "AWS/ELB",
    "application": "AWS/ApplicationELB",
    "network": "AWS/NetworkELB",
}


def _ref(table: Mapping[str, str], name: Any, what: str) -> str:
    try:
        return table[str(name)]
    except KeyError:
        raise ScenarioError(f"`aws` refers to {what} {name!r}, which it does not define.") from None


def _port_range(ports: Any) -> tuple[int, int]:
    if ports is None:
        return 0, 65535
    text = str(ports)
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise ScenarioError(f"`aws`: {text!r} is not a port or a port range A-B.") from None


def _protocol(rule: Mapping[str, Any], table: Mapping[str, str]) -> str:
    name = str(rule.get("protocol", "all")).lower()
    if name in table:
        return table[name]
    if name.isdigit():
        return name
    raise ScenarioError(f"`aws`: unknown protocol {name!r} (tcp, udp, icmp or all).")


def _aws_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _refs(served: Any) -> list[str]:
    if served is None:
        return []
    if isinstance(served, str):
        return [served]
    return [str(item) for item in served]


def _find_object(cluster: Sequence[Mapping[str, Any]], ref: str) -> Mapping[str, Any] | None:
    kind, _, rest = ref.partition("/")
    namespace, _, name = rest.partition("/")
    for obj in cluster:
        meta = obj.get("metadata") or {}
        if (
            str(obj.get("kind", "")).lower() == kind
            and meta.get("namespace", "default") == namespace
            and meta.get("name") == name
        ):
            return obj
    return None


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    if obj is None:
        return {}
    return (obj.get("metadata") or {}).get("annotations") or {}


def _lbc_manages(
    name: str, lb_type: str, refs: list[str], cluster: Sequence[Mapping[str, Any]] | None
) -> bool:
    """Whether the AWS Load Balancer Controller (not the in-tree provider) made this LB."""
    if lb_type != "network":
        return lb_type == "application"
    if cluster is not None and refs:
        service = _find_object(cluster, refs[0])
        if service is not None:
            spec = service.get("spec") or {}
            lb_kind = _annotations(service).get(_LB_TYPE_ANNOTATION, "")
            return spec.get("loadBalancerClass") == _LBC_NLB_CLASS or lb_kind in (
                "external",
                "nlb-ip",
            )
    return not _IN_TREE_NAME.fullmatch(name)


def _controller_tags(
    name: str,
    lb_type: str,
    refs: list[str],
    cluster_name: str,
    cluster: Sequence[Mapping[str, Any]] | None,
) -> dict[str, str]:
    """The tags the load balancer's controller puts on it."""
    if not _lbc_manages(name, lb_type, refs, cluster):
        tags = {f"kubernetes.io/cluster/{cluster_name}": "owned"}
        if refs:
            tags["kubernetes.io/service-name"] = refs[0].partition("/")[2]
        return tags

    tags = {"elbv2.k8s.aws/cluster": cluster_name}
    if refs and refs[0].startswith("service/"):
        tags["service.k8s.aws/stack"] = refs[0].partition("/")[2]
        tags["service.k8s.aws/resource"] = "LoadBalancer"
        return tags
    groups: set[str] = set()
    if cluster is not None:
        for ref in refs:
            group = _annotations(_find_object(cluster, ref)).get(_GROUP_ANNOTATION)
            if group:
                groups.add(str(group))
    if len(groups) == 1:
        tags["ingress.k8s.aws/stack"] = str(groups.pop())
    elif len(refs) == 1:
        tags["ingress.k8s.aws/stack"] = refs[0].partition("/")[2]
    else:
        # Limitation: without the Ingresses, an IngressGroup's name is unknown, so no stack tag.
        logger.debug("no ingress.k8s.aws/stack tag for %s: group name unknown", name)
    tags["ingress.k8s.aws/resource"] = "LoadBalancer"
    return tags


# ---------------------------------------------------------------------------------------------
# Seeding


class _Seeder:
    def __init__(
        self,
        aws: Mapping[str, Any],
        cluster_name: str,
        endpoint_url: str,
        cluster: Sequence[Mapping[str, Any]] | None,
    ) -> None:
        self.aws = aws
        self.cluster_name = cluster_name
        self.cluster = cluster
        self.region = str(aws.get("region") or DEFAULT_REGION)
        client_kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_session_token": "testing",
        }
        self.ec2 = boto3.client("ec2", **client_kwargs)
        self.elb = boto3.client("elb", **client_kwargs)
        self.elbv2 = boto3.client("elbv2", **client_kwargs)
        self.cloudwatch = boto3.client("cloudwatch", **client_kwargs)
        self.out = SeededAws(endpoint_url=endpoint_url, region=self.region, vpc_id="")
        # Per load balancer: its CloudWatch dimension, and its target groups' dimensions.
        self.lb_dimension: dict[str, tuple[str, str]] = {}
        self.tg_dimension: dict[tuple[str, str], str] = {}

    # -- network ------------------------------------------------------------------------------

    def vpc(self) -> None:
        cidr = str((self.aws.get("vpc") or {}).get("cidr", "10.0.0.0/16"))
        vpc_id = self.ec2.create_vpc(
            CidrBlock=cidr,
            TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags({"Name": self.cluster_name})}],
        )["Vpc"]["VpcId"]
        self.out.vpc_id = vpc_id

    def subnets(self) -> None:
        public: list[str] = []
        for name, facts in (self.aws.get("subnets") or {}).items():
            subnet = self.ec2.create_subnet(
                VpcId=self.out.vpc_id,
                CidrBlock=str(facts["cidr"]),
                AvailabilityZone=str(facts["az"]),
                TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags({"Name": name})}],
            )["Subnet"]
            self.out.subnet_ids[name] = subnet["SubnetId"]
            if facts.get("public"):
                public.append(subnet["SubnetId"])
        if not public:
            return
        gateway = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=self.out.vpc_id)
        table = self.ec2.create_route_table(
            VpcId=self.out.vpc_id,
            TagSpecifications=[{"ResourceType": "route-table", "Tags": _tags({"Name": "public"})}],
        )["RouteTable"]["RouteTableId"]
        self.ec2.create_route(
            RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway
        )
        for subnet_id in public:
            self.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)

    def prefix_lists(self) -> None:
        for name, cidrs in (self.aws.get("prefix_lists") or {}).items():
            entries = [str(c) for c in cidrs or []]
            family = "IPv6" if any(":" in c for c in entries) else "IPv4"
            created = self.ec2.create_managed_prefix_list(
                PrefixListName=str(name),
                MaxEntries=max(len(entries), 1),
                AddressFamily=family,
                Entries=[{"Cidr": c} for c in entries],
                TagSpecifications=[{"ResourceType": "prefix-list", "Tags": _tags({"Name": name})}],
            )["PrefixList"]
            self.out.prefix_list_ids[str(name)] = created["PrefixListId"]

    def security_groups(self) -> None:
        groups = self.aws.get("security_groups") or {}
        for name in groups:
            group_id = self.ec2.create_security_group(
                GroupName=name,
                Description=f"{name} (scenario)",
                VpcId=self.out.vpc_id,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": _tags({"Name": name})}
                ],
            )["GroupId"]
            self.out.security_group_ids[name] = group_id
        # Rules go in once every group exists: a rule may name a group defined after it.
        for name, rules in groups.items():
            group_id = self.out.security_group_ids[name]
            default = self.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
            if default[0].get("IpPermissionsEgress"):
                self.ec2.revoke_security_group_egress(
                    GroupId=group_id, IpPermissions=default[0]["IpPermissionsEgress"]
                )
            ingress = [self._permission(r, "from", group_id) for r in rules.get("ingress") or []]
            egress = [self._permission(r, "to", group_id) for r in rules.get("egress") or []]
            if ingress:
                self.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
            if egress:
                self.ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=egress)

    def _permission(self, rule: Mapping[str, Any], peer_key: str, own_id: str) -> dict[str, Any]:
        protocol = _protocol(rule, _SG_PROTOCOLS)
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol in ("tcp", "udp", "6", "17"):
            permission["FromPort"], permission["ToPort"] = _port_range(rule.get("ports"))
        elif protocol in ("icmp", "1"):
            permission["FromPort"], permission["ToPort"] = -1, -1
        peer = str(rule.get(peer_key, "0.0.0.0/0"))
        if peer == "self":
            permission["UserIdGroupPairs"] = [{"GroupId": own_id}]
        elif peer.startswith("sg/"):
            group_id = _ref(self.out.security_group_ids, peer[3:], "security group")
            permission["UserIdGroupPairs"] = [{"GroupId": group_id}]
        elif peer.startswith("pl/"):
            listed = _ref(self.out.prefix_list_ids, peer[3:], "prefix list")
            permission["PrefixListIds"] = [{"PrefixListId": listed}]
        elif ":" in peer:
            permission["Ipv6Ranges"] = [{"CidrIpv6": peer}]
        else:
            permission["IpRanges"] = [{"CidrIp": peer}]
        return permission

    def network_acls(self) -> None:
        for name, acl in (self.aws.get("network_acls") or {}).items():
            acl_id = self.ec2.create_network_acl(
                VpcId=self.out.vpc_id,
                TagSpecifications=[{"ResourceType": "network-acl", "Tags": _tags({"Name": name})}],
            )["NetworkAcl"]["NetworkAclId"]
            self.out.network_acl_ids[name] = acl_id
            for egress, entries in ((False, acl.get("inbound")), (True, acl.get("outbound"))):
                for entry in entries or []:
                    self._acl_entry(acl_id, entry, egress=egress)
            for subnet in acl.get("subnets") or []:
                subnet_id = _ref(self.out.subnet_ids, subnet, "subnet")
                current = self.ec2.describe_network_acls(
                    Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
                )["NetworkAcls"]
                association = next(
                    a["NetworkAclAssociationId"]
                    for a in current[0]["Associations"]
                    if a["SubnetId"] == subnet_id
                )
                self.ec2.replace_network_acl_association(
                    AssociationId=association, NetworkAclId=acl_id
                )

    def _acl_entry(self, acl_id: str, entry: Mapping[str, Any], *, egress: bool) -> None:
        protocol = _protocol(entry, _NACL_PROTOCOLS)
        cidr = str(entry.get("cidr", "0.0.0.0/0"))
        params: dict[str, Any] = {
            "NetworkAclId": acl_id,
            "RuleNumber": int(entry["rule"]),
            "Protocol": protocol,
            "RuleAction": str(entry.get("action", "allow")).lower(),
            "Egress": egress,
        }
        params["Ipv6CidrBlock" if ":" in cidr else "CidrBlock"] = cidr
        if protocol in ("6", "17"):
            low, high = _port_range(entry.get("ports"))
            params["PortRange"] = {"From": low, "To": high}
        elif protocol == "1":
            params["IcmpTypeCode"] = {"Type": -1, "Code": -1}
        self.ec2.create_network_acl_entry(**params)

    def _image_id(self) -> str:
        try:
            self.ec2.describe_images(ImageIds=[_AMI_ID])
            return _AMI_ID
        except ClientError as exc:
            if not exc.response.get("Error", {}).get("Code", "").startswith("InvalidAMIID"):
                raise
        logger.debug("moto's default images are off; registering %s", _AMI_NAME)
        image: str = self.ec2.register_image(
            Name=_AMI_NAME, Architecture="x86_64", RootDeviceName="/dev/xvda"
        )["ImageId"]
        return image

    def instances(self) -> None:
        if not self.aws.get("instances"):
            return
        image_id = self._image_id()
        for scenario_id, facts in (self.aws.get("instances") or {}).items():
            groups = [
                _ref(self.out.security_group_ids, g, "security group")
                for g in facts.get("security_groups") or []
            ]
            tags = {"Name": scenario_id, f"kubernetes.io/cluster/{self.cluster_name}": "owned"}
            params: dict[str, Any] = {
                "ImageId": image_id,
                "InstanceType": _INSTANCE_TYPE,
                "MinCount": 1,
                "MaxCount": 1,
                "SubnetId": _ref(self.out.subnet_ids, facts.get("subnet"), "subnet"),
                "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(tags)}],
            }
            if groups:
                params["SecurityGroupIds"] = groups
            instance = self.ec2.run_instances(**params)["Instances"][0]
            self.out.instance_ids[str(scenario_id)] = instance["InstanceId"]
            self.out.instance_ips[instance["InstanceId"]] = instance["PrivateIpAddress"]

    # -- load balancers -----------------------------------------------------------------------

    def load_balancers(self) -> None:
        for name, spec in (self.aws.get("load_balancers") or {}).items():
            lb_type = str(spec.get("type", "classic"))
            refs = _refs(spec.get("for"))
            self.out.lb_for[name] = refs
            tags = _controller_tags(name, lb_type, refs, self.cluster_name, self.cluster)
            if lb_type == "classic":
                self._classic(name, spec, tags)
            elif lb_type in ("application", "network"):
                self._elbv2(name, lb_type, spec, tags)
            else:
                raise ScenarioError(
                    f"`aws`: load balancer {name!r} has type {lb_type!r}; "
                    "use classic, application or network."
                )

    def _classic(self, name: str, spec: Mapping[str, Any], tags: dict[str, str]) -> None:
        listeners = []
        for listener in spec.get("listeners") or []:
            item: dict[str, Any] = {
                "Protocol": str(listener.get("protocol", "TCP")),
                "LoadBalancerPort": int(listener["port"]),
                "InstancePort": int(listener["instance_port"]),
            }
            if listener.get("instance_protocol"):
                item["InstanceProtocol"] = str(listener["instance_protocol"])
            if item["Protocol"].upper() in ("HTTPS", "SSL"):
                item["SSLCertificateId"] = _CERTIFICATE_ARN
            listeners.append(item)
        params: dict[str, Any] = {
            "LoadBalancerName": name,
            "Listeners": listeners,
            "Subnets": [_ref(self.out.subnet_ids, s, "subnet") for s in spec.get("subnets") or []],
            "Scheme": str(spec.get("scheme", "internet-facing")),
            "Tags": _tags(tags),
        }
        groups = spec.get("security_groups") or []
        if groups:
            params["SecurityGroups"] = [
                _ref(self.out.security_group_ids, g, "security group") for g in groups
            ]
        dns_name = self.elb.create_load_balancer(**params)["DNSName"]
        self.out.lb_dns_names[name] = dns_name
        self.lb_dimension[name] = ("LoadBalancerName", name)

        attributes = dict(spec.get("attributes") or {})
        unknown = set(attributes) - {"idle_timeout", "cross_zone"}
        if unknown:
            logger.warning("classic load balancer %s: ignoring attributes %s", name, unknown)
        self.elb.modify_load_balancer_attributes(
            LoadBalancerName=name,
            LoadBalancerAttributes={
                "ConnectionSettings": {"IdleTimeout": int(attributes.get("idle_timeout", 60))},
                "CrossZoneLoadBalancing": {"Enabled": bool(attributes.get("cross_zone", False))},
            },
        )

        health: dict[str, _Health] = {}
        for scenario_id, value in (spec.get("instances") or {}).items():
            health[_ref(self.out.instance_ids, scenario_id, "instance")] = _instance_health(value)
        if health:
            self.elb.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=[{"InstanceId": i} for i in health]
            )
            model = _backend("elb", self.region).get_load_balancer(name)
            setattr(model, _HEALTH_ATTR, health)

    def _elbv2(
        self, name: str, lb_type: str, spec: Mapping[str, Any], tags: dict[str, str]
    ) -> None:
        params: dict[str, Any] = {
            "Name": name,
            "Type": lb_type,
            "Scheme": str(spec.get("scheme", "internet-facing")),
            "Subnets": [_ref(self.out.subnet_ids, s, "subnet") for s in spec.get("subnets") or []],
            "Tags": _tags(tags),
        }
        groups = spec.get("security_groups") or []
        if groups:
            params["SecurityGroups"] = [
                _ref(self.out.security_group_ids, g, "security group") for g in groups
            ]
        balancer = self.elbv2.create_load_balancer(**params)["LoadBalancers"][0]
        lb_arn = balancer["LoadBalancerArn"]
        self.out.lb_arns[name] = lb_arn
        self.out.lb_dns_names[name] = balancer["DNSName"]
        self.lb_dimension[name] = ("LoadBalancer", lb_arn.split(":loadbalancer/", 1)[1])
        attributes = {**_ELBV2_DEFAULTS.get(lb_type, {}), **(spec.get("attributes") or {})}
        if attributes:
            self.elbv2.modify_load_balancer_attributes(
                LoadBalancerArn=lb_arn,
                Attributes=[{"Key": k, "Value": _aws_value(v)} for k, v in attributes.items()],
            )

        tg_tags = {k: v for k, v in tags.items() if not k.endswith("/resource")}
        # Limitation: target groups lack the controller's `.../resource` tag (the Service
        # port it names is not in `aws`).
        tg_arns: dict[str, str] = {}
        for tg_name, tg_spec in (spec.get("target_groups") or {}).items():
            tg_arns[tg_name] = self._target_group(name, tg_name, tg_spec, tg_tags)

        attached: set[str] = set()
        listener_arns: list[tuple[str, str]] = []
        for listener in spec.get("listeners") or []:
            tg_name = str(listener["target_group"])
            protocol = str(listener.get("protocol", "TCP"))
            listener_params: dict[str, Any] = {
                "LoadBalancerArn": lb_arn,
                "Protocol": protocol,
                "Port": int(listener["port"]),
                "DefaultActions": [
                    {"Type": "forward", "TargetGroupArn": _ref(tg_arns, tg_name, "target group")}
                ],
            }
            if protocol.upper() in ("HTTPS", "TLS"):
                listener_params["Certificates"] = [{"CertificateArn": _CERTIFICATE_ARN}]
            listener_arn = self.elbv2.create_listener(**listener_params)["Listeners"][0][
                "ListenerArn"
            ]
            listener_arns.append((listener_arn, protocol))
            attached.add(tg_name)
            listener_attributes = dict(listener.get("attributes") or {})
            if lb_type == "network" and protocol.upper() == "TCP":
                listener_attributes.setdefault("tcp.idle_timeout.seconds", _NLB_TCP_IDLE_TIMEOUT)
            if listener_attributes:
                self.elbv2.modify_listener_attributes(
                    ListenerArn=listener_arn,
                    Attributes=[
                        {"Key": k, "Value": _aws_value(v)} for k, v in listener_attributes.items()
                    ],
                )

        # A target group reaches the load balancer only through a listener action; an
        # IngressGroup's other groups hang off rules of the same listener.
        http_listener = next((a for a, p in listener_arns if p.upper() in ("HTTP", "HTTPS")), None)
        for priority, tg_name in enumerate(sorted(set(tg_arns) - attached), start=1):
            if http_listener is None:
                logger.warning("target group %s of %s has no listener", tg_name, name)
                continue
            # Limitation: these rules match every path; `aws` does not say which paths route where.
            self.elbv2.create_rule(
                ListenerArn=http_listener,
                Priority=priority,
                Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": tg_arns[tg_name]}],
            )

    def _target_group(
        self, lb_name: str, tg_name: str, spec: Mapping[str, Any], tags: dict[str, str]
    ) -> str:
        protocol = str(spec.get("protocol", "TCP"))
        params: dict[str, Any] = {
            "Name": tg_name,
            "Protocol": protocol,
            "Port": int(spec["port"]),
            "VpcId": self.out.vpc_id,
            "TargetType": str(spec.get("target_type", "instance")),
            "Tags": _tags(tags),
        }
        check = spec.get("health_check") or {}
        params["HealthCheckProtocol"] = str(check.get("protocol", protocol))
        params["HealthCheckPort"] = str(check.get("port", "traffic-port"))
        if "path" in check:
            params["HealthCheckPath"] = str(check["path"])
        if "matcher" in check:
            params["Matcher"] = {"HttpCode": str(check["matcher"])}
        for key, aws_key in (
            ("interval", "HealthCheckIntervalSeconds"),
            ("timeout", "HealthCheckTimeoutSeconds"),
            ("healthy_threshold", "HealthyThresholdCount"),
            ("unhealthy_threshold", "UnhealthyThresholdCount"),
        ):
            if key in check:
                params[aws_key] = int(check[key])
        tg_arn: str = self.elbv2.create_target_group(**params)["TargetGroups"][0]["TargetGroupArn"]
        self.out.target_group_arns[tg_name] = tg_arn
        self.tg_dimension[(lb_name, tg_name)] = tg_arn.rsplit(":", 1)[1]

        attributes = spec.get("attributes") or {}
        if attributes:
            self.elbv2.modify_target_group_attributes(
                TargetGroupArn=tg_arn,
                Attributes=[{"Key": k, "Value": _aws_value(v)} for k, v in attributes.items()],
            )

        # Limitation: moto keeps one registration per target id, so one id on two ports
        # of the same target group ends up registered once, on the last port.
        targets: list[dict[str, Any]] = []
        health: dict[tuple[str, int], _Health] = {}
        for key, value in (spec.get("targets") or {}).items():
            target_id, _, port_text = str(key).rpartition(":")
            if not target_id:
                target_id, port_text = port_text, str(spec["port"])
            if target_id.startswith("i-"):
                target_id = _ref(self.out.instance_ids, target_id, "instance")
            port = int(port_text)
            targets.append({"Id": target_id, "Port": port})
            health[(target_id, port)] = _target_health(value)
        if targets:
            self.elbv2.register_targets(TargetGroupArn=tg_arn, Targets=targets)
            model = _backend("elbv2", self.region).target_groups[tg_arn]
            setattr(model, _HEALTH_ATTR, health)
        return tg_arn

    # -- metrics ------------------------------------------------------------------------------

    def metrics(self, now: datetime) -> None:
        end = now.astimezone(UTC).replace(second=0, microsecond=0)
        self.out.metrics_end = end
        lb_types = {
            name: str(spec.get("type", "classic"))
            for name, spec in (self.aws.get("load_balancers") or {}).items()
        }
        for lb_name, series_by_metric in (self.aws.get("metrics") or {}).items():
            if lb_name not in self.lb_dimension:
                raise ScenarioError(
                    f"`aws.metrics` names load balancer {lb_name!r}, which `aws` does not define."
                )
            lb_key, lb_value = self.lb_dimension[lb_name]
            data: list[dict[str, Any]] = []
            for metric, series in (series_by_metric or {}).items():
                dimensions = [{"Name": lb_key, "Value": lb_value}]
                if series.get("target_group"):
                    tg = _ref(
                        {tg: d for (lb, tg), d in self.tg_dimension.items() if lb == lb_name},
                        series["target_group"],
                        f"a target group of {lb_name}:",
                    )
                    dimensions.append({"Name": "TargetGroup", "Value": tg})
                values = list(series.get("values") or [])
                for age, value in enumerate(reversed(values)):
                    if value is None:
                        continue
                    number = float(value)
                    data.append(
                        {
                            "MetricName": str(metric),
                            "Dimensions": dimensions,
                            "Timestamp": end - timedelta(minutes=age),
                            "StatisticValues": {
                                "SampleCount": 1.0,
                                "Sum": number,
                                "Minimum": number,
                                "Maximum": number,
                            },
                        }
                    )
            namespace = _NAMESPACES[lb_types[lb_name]]
            for start in range(0, len(data), 1000):
                self.cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=data[start : start + 1000]
                )


def seed(
    aws_section: dict[str, Any],
    *,
    cluster_name: str,
    endpoint_url: str,
    cluster: Sequence[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> SeededAws:
    """Creates the scenario's `aws` resources in the moto server at `endpoint_url`.

    The server must run in this process (`LocalAws`): health is set in its models.
    `cluster`, the scenario's Kubernetes objects, lets the tags name an IngressGroup and
    tell an NLB made by the AWS Load Balancer Controller from one made in-tree. `now` is
    the moment the metric series end at (default: the current time).
    """
    started = time.monotonic()
    _install_moto_hooks()
    try:
        seeder = _Seeder(aws_section, cluster_name or DEFAULT_CLUSTER_NAME, endpoint_url, cluster)
        seeder.vpc()
        seeder.subnets()
        seeder.prefix_lists()
        seeder.security_groups()
        seeder.network_acls()
        seeder.instances()
        seeder.load_balancers()
        seeder.metrics(now or datetime.now(UTC))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ScenarioError(
            f"The local AWS endpoint refused {exc.operation_name} while seeding the scenario: "
            f"{error.get('Code')}: {error.get('Message')}",
            "Check the `aws` section against the scenario format.",
        ) from exc
    except BotoCoreError as exc:
        # The client refused a value before sending it (a region, a parameter's type).
        raise ScenarioError(
            f"The scenario's `aws` section holds a value AWS cannot take: {exc}",
            "Check the `aws` section against the scenario format.",
        ) from exc
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # Limitation: load() validates the section first; this is for a shape it missed.
        raise ScenarioError(
            f"The scenario's `aws` section is incomplete or malformed: {exc!r}.",
            "Check the `aws` section against the scenario format.",
        ) from exc
    out = seeder.out
    logger.info(
        "seeded %s: %d subnets, %d security groups, %d instances, %d load balancers in %.2fs",
        endpoint_url,
        len(out.subnet_ids),
        len(out.security_group_ids),
        len(out.instance_ids),
        len(out.lb_dns_names),
        time.monotonic() - started,
    )
    return out
