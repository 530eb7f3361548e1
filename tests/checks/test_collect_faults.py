"""Faults on one call leave the rest of the report standing: AWS AccessDenied and
throttling injected in front of the local AWS endpoint, Kubernetes 403s from the local API
server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.collect.snapshot import collect
from checks.errors import AccessError
from checks.models import Report, Status
from checks.run import build_report
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World


@pytest.fixture
def world() -> Iterator[World]:
    with World(load(BUNDLED_DIR / "s3-clb-nacl-ephemeral.yaml")) as running:
        yield running


def _report(world: World) -> Report:
    assert world.connection is not None
    return build_report(collect("api", "orders", world.connection))


def _finding(report: Report, code: str) -> tuple[Status, str]:
    found = [f for f in report.findings if f.code == code]
    assert found, f"{code} missing"
    return found[0].status, " ".join(found[0].evidence)


def test_access_denied_on_instance_health_makes_that_part_unknown(world: World) -> None:
    world.aws.inject_error("DescribeInstanceHealth", "AccessDenied", "not authorized")
    report = _report(world)
    status, evidence = _finding(report, "TARGETS_UNHEALTHY")
    assert status is Status.UNKNOWN
    assert "elasticloadbalancing:DescribeInstanceHealth" in evidence
    # The rest of the report stands.
    assert _finding(report, "BACKEND_CONNECTION_ERRORS")[0] is Status.FAIL


def test_access_denied_on_metrics_names_the_iam_action(world: World) -> None:
    world.aws.inject_error("GetMetricData", "AccessDenied", "not authorized")
    report = _report(world)
    status, evidence = _finding(report, "BACKEND_CONNECTION_ERRORS")
    assert status is Status.UNKNOWN
    assert "cloudwatch:GetMetricData" in evidence
    assert _finding(report, "NACL_BLOCKS_EPHEMERAL")[0] is Status.FAIL


def test_throttling_is_retried_with_backoff(world: World) -> None:
    world.aws.inject_error("GetMetricData", "Throttling", "Rate exceeded", times=2)
    report = _report(world)
    assert _finding(report, "BACKEND_CONNECTION_ERRORS")[0] is Status.FAIL


def test_access_denied_on_finding_the_load_balancer_stops_with_the_action(
    world: World,
) -> None:
    world.aws.inject_error("DescribeLoadBalancers", "AccessDenied", "not authorized")
    assert world.connection is not None
    with pytest.raises(AccessError) as raised:
        collect("api", "orders", world.connection)
    assert "elasticloadbalancing:DescribeLoadBalancers" in str(raised.value)


def test_kubernetes_403_on_pods_is_reported_with_the_rbac_verb(world: World) -> None:
    assert world.kube is not None
    world.kube.forbid("list", "pods", "api")
    report = _report(world)
    gaps = [f for f in report.findings if f.code == "KUBERNETES_ACCESS"]
    assert gaps and gaps[0].status is Status.UNKNOWN
    assert "RBAC verb `list` on `pods` in namespace api" in " ".join(gaps[0].evidence)


def test_kubernetes_403_on_the_service_stops_with_the_rbac_verb(world: World) -> None:
    assert world.kube is not None
    world.kube.forbid("get", "services", "api")
    assert world.connection is not None
    with pytest.raises(AccessError) as raised:
        collect("api", "orders", world.connection)
    assert "RBAC verb `get` on `services` in namespace api" in str(raised.value)
