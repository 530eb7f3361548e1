from __future__ import annotations

from checks.models import Severity, Status
from checks.rules.targets_unhealthy import judge
from checks.snapshot import TargetHealth
from tests.checks.lb_builders import load_balancer, snapshot_with


def test_every_target_unhealthy_fails_with_the_reason_explained() -> None:
    lb = load_balancer(
        "application",
        serves="ingress/shop/web",
        targets=(TargetHealth("10.0.1.5", 8080, "unhealthy", "Target.Timeout"),),
    )
    (finding,) = judge(snapshot_with(lb))
    assert finding.status is Status.FAIL
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence[0].startswith(
        "10.0.1.5:8080 in k8s-shop-web-80: unhealthy (Target.Timeout): the health check timed out"
    )
    assert "http://10.0.1.5:8080/healthz" in finding.fixes[0].text


def test_some_unhealthy_is_a_warning_and_draining_does_not_count() -> None:
    lb = load_balancer(
        "application",
        serves="ingress/shop/web",
        targets=(
            TargetHealth("10.0.1.5", 8080, "healthy"),
            TargetHealth("10.0.1.6", 8080, "unhealthy", "Target.ResponseCodeMismatch"),
            TargetHealth("10.0.1.7", 8080, "draining", "Target.DeregistrationInProgress"),
        ),
    )
    (finding,) = judge(snapshot_with(lb))
    assert finding.status is Status.WARN
    assert finding.summary == "1 of 3 target(s) of web-lb are unhealthy."


def test_classic_out_of_service_instance_keeps_its_description() -> None:
    lb = load_balancer(
        "classic",
        instances=(TargetHealth("i-1", None, "OutOfService", "", "Instance has failed"),),
    )
    (finding,) = judge(snapshot_with(lb))
    assert finding.evidence == ("i-1 in web-lb: OutOfService: Instance has failed",)
    assert "aws elb describe-instance-health --region us-east-1 --load-balancer-name web-lb" in (
        finding.fixes[0].text
    )
