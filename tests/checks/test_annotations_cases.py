"""The annotation checks on the bundled cases, through hand-built snapshots.

Each snapshot is built from a scenario file the way the collector would see the cluster:
the asked Service, the Ingresses routing to it and the other members of their groups,
ConfigMaps of its namespace, its pods and their workloads, Warning events, and the load
balancers written by hand from ``aws.load_balancers``. Deployments of the AWS Load Balancer
Controller go into ``workloads``, where the controller's release is read from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from checks import kube
from checks.annotations import roles
from checks.models import Finding, Status
from checks.registry import Check
from checks.rules import (
    annotation_malformed,
    annotation_out_of_range,
    annotation_unknown,
    annotation_wrong_target,
    idle_timeout_ask_problems,
    idle_timeout_not_applied,
    ingress_group_conflict,
    proxy_protocol_mismatch,
)
from checks.snapshot import (
    HealthCheck,
    KubeObject,
    Listener,
    LoadBalancer,
    Snapshot,
    TargetGroup,
    TargetHealth,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"

ANNOTATION_CHECKS: list[Check] = [
    annotation_unknown.CHECK,
    annotation_malformed.CHECK,
    annotation_out_of_range.CHECK,
    annotation_wrong_target.CHECK,
    ingress_group_conflict.CHECK,
    proxy_protocol_mismatch.CHECK,
    idle_timeout_ask_problems.CHECK,
    idle_timeout_not_applied.CHECK,
]
# Codes these checks own (IDLE_TIMEOUT_NOT_APPLIED shared by the two idle checks).
OWNED = {code for check in ANNOTATION_CHECKS for code in check.codes}


def _target_group(name: str, data: dict[str, Any]) -> TargetGroup:
    targets = []
    for target, state in (data.get("targets") or {}).items():
        ident, _, port = str(target).rpartition(":")
        if isinstance(state, dict):
            targets.append(TargetHealth(ident, int(port), state["state"], state.get("reason", "")))
        else:
            targets.append(TargetHealth(ident, int(port), str(state)))
    check = data.get("health_check") or {}
    return TargetGroup(
        name=name,
        arn=f"arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/{name}/0",
        target_type=str(data.get("target_type", "instance")),
        protocol=str(data.get("protocol", "TCP")),
        port=int(data.get("port", 0)),
        health_check=HealthCheck(
            protocol=str(check.get("protocol", data.get("protocol", "TCP"))),
            port=str(check.get("port", "traffic-port")),
            path=str(check.get("path", "")),
        ),
        attributes={str(k): str(v) for k, v in (data.get("attributes") or {}).items()},
        targets=tuple(targets),
    )


def load_balancer(name: str, data: dict[str, Any]) -> LoadBalancer:
    served = data["for"]
    serves = ", ".join(served) if isinstance(served, list) else str(served)
    groups = {n: _target_group(n, tg) for n, tg in (data.get("target_groups") or {}).items()}
    listeners = []
    for listener in data.get("listeners") or []:
        tg = groups.get(str(listener.get("target_group", "")))
        listeners.append(
            Listener(
                port=int(listener["port"]),
                protocol=str(listener["protocol"]),
                instance_port=listener.get("instance_port"),
                target_group_arns=(tg.arn,) if tg else (),
                attributes={str(k): str(v) for k, v in (listener.get("attributes") or {}).items()},
            )
        )
    return LoadBalancer(
        name=name,
        type=data["type"],
        dns_name=f"{name}.elb.amazonaws.com",
        scheme=str(data.get("scheme", "internet-facing")),
        vpc_id="vpc-1",
        subnet_ids=tuple(data.get("subnets") or ()),
        security_group_ids=tuple(data.get("security_groups") or ()),
        attributes={str(k): str(v) for k, v in (data.get("attributes") or {}).items()},
        listeners=tuple(listeners),
        target_groups=tuple(groups.values()),
        tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        serves=serves,
    )


def snapshot_from_scenario(path: Path) -> Snapshot:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    namespace, name = data["ask"].split("/")
    objects: list[KubeObject] = data["cluster"]

    def of(kind: str) -> list[KubeObject]:
        return [o for o in objects if o.get("kind") == kind]

    service = next(
        s for s in of("Service") if kube.namespace(s) == namespace and kube.name(s) == name
    )
    routing = [i for i in of("Ingress") if roles.routes_to(i, service)]
    group_names = {kube.annotations(i).get(roles.GROUP_KEY) for i in routing} - {None, ""}
    ingresses = routing + [
        i
        for i in of("Ingress")
        if i not in routing and kube.annotations(i).get(roles.GROUP_KEY) in group_names
    ]
    selector = kube.spec(service).get("selector") or {}
    pods = [
        p
        for p in of("Pod")
        if kube.namespace(p) == namespace and kube.selector_matches(selector, kube.labels(p))
    ]
    workloads = [
        d
        for d in of("Deployment")
        if "aws-load-balancer-controller" in str(d)
        or (
            kube.namespace(d) == namespace
            and kube.selector_matches(
                (kube.spec(d).get("selector") or {}).get("matchLabels") or {},
                kube.labels(pods[0]) if pods else {},
            )
        )
    ]
    return Snapshot(
        namespace=namespace,
        service_name=name,
        service=service,
        ingresses=ingresses,
        pods=pods,
        workloads=workloads,
        configmaps={kube.name(c): c for c in of("ConfigMap") if kube.namespace(c) == namespace},
        ingress_classes=of("IngressClass"),
        events=[
            e
            for e in of("Event")
            if kube.namespace(e) in {kube.namespace(i) for i in [service, *ingresses]}
        ],
        load_balancers=[
            load_balancer(n, lb) for n, lb in (data["aws"].get("load_balancers") or {}).items()
        ],
    )


def run(snapshot: Snapshot) -> list[Finding]:
    findings: list[Finding] = []
    for check in ANNOTATION_CHECKS:
        findings.extend(check.judge(snapshot))
    return findings


def problem_codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.status in (Status.FAIL, Status.WARN)}


CASES = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_scenario_annotation_codes_match_expectation(path: Path) -> None:
    expect = yaml.safe_load(path.read_text(encoding="utf-8"))["expect"]
    codes = problem_codes(run(snapshot_from_scenario(path)))
    assert set(expect["findings"]) & OWNED <= codes
    assert not set(expect["absent"]) & codes


def _case(prefix: str) -> list[Finding]:
    (path,) = SCENARIOS.glob(f"{prefix}-*.yaml")
    return [f for f in run(snapshot_from_scenario(path)) if f.is_problem]


def test_unknown_key_names_nearest_known_key_and_the_lost_idle_timeout() -> None:
    findings = _case("c05")
    unknown = [f for f in findings if f.code == "ANNOTATION_UNKNOWN"]
    assert len(unknown) == 1
    assert unknown[0].resource == "ingress/billing/invoices"
    assert "alb.ingress.kubernetes.io/connection-idle-timeout" in unknown[0].summary
    assert unknown[0].evidence[1] == (
        "nearest known key: alb.ingress.kubernetes.io/load-balancer-attributes"
    )
    assert (
        "alb.ingress.kubernetes.io/load-balancer-attributes=idle_timeout.timeout_seconds=1800"
        in (unknown[0].fixes[0].text)
    )
    (idle,) = [f for f in findings if f.code == "IDLE_TIMEOUT_NOT_APPLIED"]
    assert "1800 s" in idle.summary and "60 s" in idle.summary
    assert "idle_timeout.timeout_seconds=1800" in idle.fixes[0].text


def test_colon_in_attributes_is_malformed_with_key_equals_value_fix() -> None:
    findings = _case("c06")
    (malformed,) = [f for f in findings if f.code == "ANNOTATION_MALFORMED"]
    assert "'key: value'" in malformed.summary
    assert "idle_timeout.timeout_seconds=300" in malformed.fixes[0].text
    (idle,) = [f for f in findings if f.code == "IDLE_TIMEOUT_NOT_APPLIED"]
    assert "300 s" in idle.summary


def test_group_conflict_lists_every_member_and_value() -> None:
    findings = _case("c07")
    (conflict,) = [f for f in findings if f.code == "INGRESS_GROUP_CONFLICT"]
    assert conflict.evidence[:3] == (
        "ingress/team-a/api: idle_timeout.timeout_seconds=600",
        "ingress/team-b/web: idle_timeout.timeout_seconds=900",
        "ingress/team-c/admin: idle_timeout.timeout_seconds=1200",
    )
    assert "FailedBuildModel" in conflict.evidence[3]
    assert "idle_timeout.timeout_seconds=1200" in conflict.fixes[0].text


def test_classic_idle_timeout_above_4000_is_out_of_range() -> None:
    findings = _case("c09")
    (out,) = [f for f in findings if f.code == "ANNOTATION_OUT_OF_RANGE"]
    assert "asks for 7200, but AWS accepts 1-4000" in out.summary
    assert "4000" in out.fixes[0].text


def test_classic_only_key_on_nlb_is_wrong_target() -> None:
    findings = _case("c10")
    (wrong,) = [f for f in findings if f.code == "ANNOTATION_WRONG_TARGET"]
    assert "read only for a Classic LB" in wrong.summary
    assert "aws-load-balancer-listener-attributes.TCP-443" in wrong.fixes[0].text
    (idle,) = [f for f in findings if f.code == "IDLE_TIMEOUT_NOT_APPLIED"]
    assert "60 s" in idle.summary and "350 s" in idle.summary


def test_listener_attributes_on_old_controller_bring_no_annotation_finding() -> None:
    findings = _case("c11")
    assert {f.code for f in findings} == {"IDLE_TIMEOUT_NOT_APPLIED"}


def test_service_lb_key_on_alb_backend_points_to_alb_key() -> None:
    findings = _case("c12")
    (wrong,) = [f for f in findings if f.code == "ANNOTATION_WRONG_TARGET"]
    assert wrong.resource == "service/store/api"
    assert "alb.ingress.kubernetes.io/healthcheck-path=/healthz" in wrong.fixes[0].text


def test_proxy_protocol_on_both_sides_passes() -> None:
    (path,) = SCENARIOS.glob("c09-*.yaml")
    findings = proxy_protocol_mismatch.judge(snapshot_from_scenario(path))
    assert [(f.code, f.status) for f in findings] == [("PROXY_PROTOCOL_MISMATCH", Status.PASS)]
