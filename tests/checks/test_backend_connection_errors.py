from __future__ import annotations

from checks.models import Status
from checks.rules.backend_connection_errors import judge
from tests.checks.lb_builders import load_balancer, series, snapshot_with


def test_fast_failures_point_at_connections_closed_by_targets() -> None:
    snapshot = snapshot_with(
        load_balancer("classic"),
        series("BackendConnectionErrors", "Sum", [0, 5, 0, 7]),
        series("HTTPCode_ELB_5XX", "Sum", [0, 4, 0, 6]),
        series("Latency", "Maximum", [0.3, 0.4, 0.2, 0.5]),
    )
    (finding,) = judge(snapshot)
    assert finding.status is Status.FAIL
    assert finding.evidence[0] == (
        "BackendConnectionErrors: 12 in 2 of the last 60 minutes (peak 7 in a minute)"
    )
    assert finding.evidence[1] == "minutes that also show ELB 5XX: 2 of 2"
    assert "fast failures" in finding.evidence[2]


def test_ten_second_latency_points_at_unreachable_targets() -> None:
    snapshot = snapshot_with(
        load_balancer("classic"),
        series("BackendConnectionErrors", "Sum", [3]),
        series("Latency", "Maximum", [10.0]),
        series("HTTPCode_Backend_5XX", "Sum", [2]),
    )
    (finding,) = judge(snapshot)
    assert "connections time out after 10 s" in finding.evidence[2]
    assert finding.evidence[3].startswith("HTTPCode_Backend_5XX: 2: these 5XX the targets")


def test_alb_errors_reported_per_target_group_are_added_up() -> None:
    lb = load_balancer("application", serves="ingress/shop/web")
    per_group = series("TargetConnectionErrorCount", "Sum", [1, 2])
    snapshot = snapshot_with(lb)
    snapshot.metrics[lb.name] = {"TargetConnectionErrorCount@k8s-shop-web-80": per_group}
    (finding,) = judge(snapshot)
    assert finding.status is Status.FAIL
    assert finding.evidence[0].startswith("TargetConnectionErrorCount: 3 in 2 of the last 60")


def test_zero_errors_pass() -> None:
    snapshot = snapshot_with(
        load_balancer("classic"), series("BackendConnectionErrors", "Sum", [0, 0])
    )
    (finding,) = judge(snapshot)
    assert finding.status is Status.PASS
