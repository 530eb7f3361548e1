"""NO_READY_ENDPOINTS and BACKEND_PORT_MISMATCH, on scenario worlds and edge cases."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from checks.models import Status
from checks.rules import backend_port_mismatch, no_ready_endpoints
from checks.snapshot import Gap, Listener, LoadBalancer, TargetHealth
from tests.checks.test_zones import (
    CASE_WORLDS,
    QUIET_WORLDS,
    VPC,
    assert_scenario,
    only,
    pod,
    scenario_snapshot,
    service,
    tg,
    v2,
    world,
)


def not_ready(name: str, ip: str, **status: Any) -> dict[str, Any]:
    found = pod(name, ip, "n-a")
    found["status"] = {"phase": "Running", "podIP": ip, **status}
    return found


def slice_of(*ready: bool | None) -> dict[str, Any]:
    endpoints = []
    for index, flag in enumerate(ready):
        conditions = {} if flag is None else {"ready": flag}
        endpoints.append({"addresses": [f"10.9.11.{index + 1}"], "conditions": conditions})
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "ns",
            "name": "web-abc",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "endpoints": endpoints,
    }


def ingress(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Ingress",
        "metadata": {"namespace": "ns", "name": "web"},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {"path": "/", "backend": {"service": {"name": "web", "port": port}}}
                        ]
                    }
                }
            ]
        },
    }


def with_ports(item: dict[str, Any], *ports: dict[str, Any]) -> dict[str, Any]:
    item["spec"]["containers"] = [{"name": "web", "ports": list(ports)}]
    return item


# ------------------------------------------------------------ scenarios


@pytest.mark.parametrize("filename", QUIET_WORLDS + CASE_WORLDS)
@pytest.mark.parametrize("check", [no_ready_endpoints.CHECK, backend_port_mismatch.CHECK])
def test_endpoint_and_port_codes_match_scenario_expectations(check: Any, filename: str) -> None:
    assert_scenario(check, filename)


def test_named_ports_of_the_healthy_world_resolve() -> None:
    _, snapshot = scenario_snapshot("h0-alb-healthy.yaml")
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.PASS
    assert finding.evidence == (
        "ingress/shop/catalog catalog.example.com/ -> service catalog port http: resolves",
        "service port 80 (http) -> targetPort web: resolves on all 2 pod(s)",
        "k8s-shop-catalog-http (ip): target ports resolve",
    )


# ------------------------------------------------------------ NO_READY_ENDPOINTS


def test_selector_matching_no_pod_fails_and_names_the_selector() -> None:
    finding = only(no_ready_endpoints.judge(world(pods=[])))
    assert finding.status is Status.FAIL
    assert finding.summary == "Service ns/web selects no pod: selector app=web matches none."
    assert finding.evidence[:2] == ("selector app=web", "pods matching the selector: 0, Ready: 0")
    assert "kubectl get pods --namespace ns --selector app=web -o wide" in finding.fixes[0].text


def test_pods_not_ready_are_named_with_their_reasons() -> None:
    crashing = not_ready(
        "web-1",
        "10.9.11.5",
        conditions=[{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        containerStatuses=[
            {"name": "web", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ],
    )
    probing = not_ready(
        "web-2",
        "10.9.12.5",
        conditions=[{"type": "Ready", "status": "False"}],
        containerStatuses=[
            {"name": "web", "ready": False, "restartCount": 3, "state": {"running": {}}}
        ],
    )
    gated = pod("web-3", "10.9.12.6", "n-b")
    gated["spec"]["readinessGates"] = [{"conditionType": "target-health.elbv2.k8s.aws/tg"}]
    gated["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    finding = only(no_ready_endpoints.judge(world(pods=[crashing, probing, gated])))
    assert finding.status is Status.FAIL
    assert finding.summary == "Service ns/web has no ready endpoint: none of its 3 pod(s) is Ready."
    assert finding.evidence[2:] == (
        "pod ns/web-1: container web waiting: CrashLoopBackOff; Ready is False "
        "(ContainersNotReady)",
        "pod ns/web-2: container web not ready (readiness probe failing, 3 restarts); Ready is "
        "False",
        "pod ns/web-3: readiness gate target-health.elbv2.k8s.aws/tg is not set; Ready is False",
    )


def test_terminating_pod_is_no_endpoint() -> None:
    leaving = pod("web-1", "10.9.11.5", "n-a")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    finding = only(no_ready_endpoints.judge(world(pods=[leaving])))
    assert finding.status is Status.FAIL
    assert finding.evidence[-1] == "pod ns/web-1: terminating"


def test_endpoint_slices_decide_over_pods() -> None:
    snapshot = world(pods=[pod("web-1", "10.9.11.1", "n-a")], endpoint_slices=[slice_of(False)])
    finding = only(no_ready_endpoints.judge(snapshot))
    assert finding.status is Status.FAIL
    assert "EndpointSlices: 0 ready of 1 address(es) in 1 slice(s)" in finding.evidence


def test_endpoint_with_unset_ready_counts_as_ready() -> None:
    snapshot = world(
        pods=[pod("web-1", "10.9.11.1", "n-a")], endpoint_slices=[slice_of(None, False)]
    )
    finding = only(no_ready_endpoints.judge(snapshot))
    assert finding.status is Status.PASS
    assert finding.summary == "Service ns/web has 1 ready endpoint(s)."


def test_service_without_selector_and_without_slices_fails() -> None:
    finding = only(no_ready_endpoints.judge(world(service=service(selector=None))))
    assert finding.status is Status.FAIL
    assert finding.evidence == (
        "the Service has no selector: its endpoints are managed by hand",
        "no EndpointSlice names the Service",
    )


def test_endpoints_unknown_when_neither_pods_nor_slices_were_read() -> None:
    snapshot = world(
        gaps=[
            Gap("kubernetes:pods", "pods in ns", "cannot list pods"),
            Gap("kubernetes:endpointslices", "endpointslices in ns", "cannot list endpointslices"),
        ]
    )
    finding = only(no_ready_endpoints.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == ("cannot list endpointslices", "cannot list pods")


def test_external_name_service_has_no_endpoints_by_design() -> None:
    snapshot = world(service=service(type="ExternalName", externalName="db.example"))
    assert only(no_ready_endpoints.judge(snapshot)).status is Status.PASS


# ------------------------------------------------------------ BACKEND_PORT_MISMATCH


def test_ingress_naming_the_target_port_instead_of_the_service_port_fails() -> None:
    snapshot = world(
        ingresses=[ingress({"number": 8080})],
        pods=[with_ports(pod("web-1", "10.9.11.5", "n-a"), {"containerPort": 8080})],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence[0] == (
        "ingress/ns/web */ -> service web port 8080: the Service has no such port (ports: 80)"
    )
    assert finding.fixes[0].text == (
        "backend:\n  service:\n    name: web\n    port:\n      number: 80\n"
    )


def test_ingress_port_name_that_the_service_lacks_fails() -> None:
    snapshot = world(ingresses=[ingress({"name": "https"})])
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence[0] == (
        "ingress/ns/web */ -> service web port name https: the Service has no such port (ports: 80)"
    )


def test_named_target_port_missing_on_one_pod_fails_with_a_service_patch() -> None:
    snapshot = world(
        service=service(ports=[{"name": "http", "port": 80, "targetPort": "web"}]),
        pods=[
            with_ports(pod("web-1", "10.9.11.5", "n-a"), {"name": "web", "containerPort": 8000}),
            with_ports(pod("web-2", "10.9.12.5", "n-b"), {"name": "http", "containerPort": 8000}),
        ],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence == (
        "service port 80 (http) -> targetPort web (TCP): no container port of that name on pod "
        "ns/web-2 (declared: http=8000/TCP); it gets no endpoint for this port",
    )
    words = shlex.split(finding.fixes[0].text.replace("\\\n", " "))
    assert words[:6] == ["kubectl", "patch", "service", "--namespace", "ns", "web"]
    assert json.loads(words[-1]) == [
        {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8000}
    ]


def test_named_target_port_must_match_the_protocol() -> None:
    snapshot = world(
        service=service(ports=[{"port": 53, "targetPort": "dns", "protocol": "UDP"}]),
        pods=[with_ports(pod("dns-1", "10.9.11.5", "n-a"), {"name": "dns", "containerPort": 53})],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert "(declared: dns=53/TCP)" in finding.evidence[0]


def test_undeclared_numeric_target_port_only_warns() -> None:
    snapshot = world(pods=[with_ports(pod("web-1", "10.9.11.5", "n-a"), {"containerPort": 80})])
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.WARN
    assert finding.evidence == (
        "service port 80 -> targetPort 8080: pod ns/web-1 declares 80, not 8080; the connection "
        "fails unless the app listens there anyway",
    )


def test_pods_that_declare_no_port_are_not_judged_on_numbers() -> None:
    snapshot = world(pods=[pod("web-1", "10.9.11.5", "n-a")])
    assert only(backend_port_mismatch.judge(snapshot)).status is Status.PASS


def _classic(instance_port: int) -> LoadBalancer:
    return LoadBalancer(
        "clb", "classic", "clb.example", "internet-facing", VPC, ("subnet-pub-a",), (),
        {"cross_zone": "false"}, (Listener(80, "HTTP", instance_port, "HTTP"),),
        serves="service/ns/web",
    )  # fmt: skip


def test_classic_listener_on_a_stale_node_port_fails_with_a_listener_fix() -> None:
    snapshot = world(
        region="us-east-1",
        service=service(
            type="LoadBalancer", ports=[{"port": 80, "targetPort": 8080, "nodePort": 31380}]
        ),
        load_balancers=[_classic(30080)],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence == (
        "clb listener HTTP:80 forwards to instance port 30080, which is no nodePort of service "
        "web (nodePorts: 31380)",
    )
    assert (
        "--listeners Protocol=HTTP,LoadBalancerPort=80,InstanceProtocol=HTTP,InstancePort=31380"
    ) in finding.fixes[0].text


def test_classic_listener_on_the_node_port_passes() -> None:
    snapshot = world(
        service=service(
            type="LoadBalancer", ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}]
        ),
        load_balancers=[_classic(30080)],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.PASS
    assert "clb listener HTTP:80 -> nodePort 30080: resolves" in finding.evidence


def test_ip_target_on_another_port_than_the_pod_serves_fails() -> None:
    snapshot = world(
        pods=[with_ports(pod("web-1", "10.9.11.5", "n-a"), {"containerPort": 8080})],
        load_balancers=[
            v2(
                "network",
                ("subnet-pub-a",),
                (tg("ip", (TargetHealth("10.9.11.5", 80, "unhealthy"),)),),
            )
        ],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence == (
        "tg-web target 10.9.11.5:80: pod ns/web-1 serves the Service on 8080, not 80",
    )
    assert "kubectl get targetgroupbindings --namespace ns -o yaml" in finding.fixes[0].text


def test_instance_target_of_a_direct_nlb_must_be_a_node_port() -> None:
    snapshot = world(
        service=service(
            type="LoadBalancer", ports=[{"port": 80, "targetPort": 8080, "nodePort": 31000}]
        ),
        load_balancers=[
            v2(
                "network",
                ("subnet-pub-a",),
                (tg("instance", (TargetHealth("i-a", 30999, "unhealthy"),)),),
            )
        ],
    )
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence == (
        "tg-web target i-a:30999: 30999 is no nodePort of service web (nodePorts: 31000)",
    )


def test_ports_unknown_when_pods_were_not_read() -> None:
    snapshot = world(gaps=[Gap("kubernetes:pods", "pods in ns", "cannot list pods")])
    finding = only(backend_port_mismatch.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == ("pods not read, container ports not checked: cannot list pods",)
