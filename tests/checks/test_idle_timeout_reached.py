from __future__ import annotations

from checks.models import Status
from checks.rules.idle_timeout_reached import judge, suggested_timeout
from checks.snapshot import Gap
from tests.checks.lb_builders import load_balancer, series, snapshot_with


def test_latency_at_the_idle_timeout_with_elb_5xx_fails_with_counts() -> None:
    lb = load_balancer("classic", idle=60)
    snapshot = snapshot_with(
        lb,
        series("Latency", "Maximum", [0.4, 60.0, 0.5, 59.2, 60.0]),
        series("HTTPCode_ELB_5XX", "Sum", [0, 3, 0, 2, 0]),
    )
    (finding,) = judge(snapshot)
    assert finding.status is Status.FAIL
    # 60.0 in the last minute has no ELB 5XX: it does not count.
    assert "in 2 of the last 60 minutes, with 5 ELB 5XX responses" in finding.summary
    assert finding.evidence[0] == "Latency maximum: 60 s (idle timeout 60 s, classic attribute)"


def test_latency_at_the_timeout_without_elb_errors_passes() -> None:
    lb = load_balancer("application", idle=30, serves="ingress/shop/web")
    snapshot = snapshot_with(
        lb,
        series("TargetResponseTime", "Maximum", [30.0, 30.0]),
        series("HTTPCode_ELB_504_Count", "Sum", [0, 0]),
    )
    (finding,) = judge(snapshot)
    assert finding.status is Status.PASS


def test_fix_keeps_other_alb_attributes_and_quotes_the_value() -> None:
    lb = load_balancer("application", idle=30, serves="ingress/shop/web")
    ingress = {
        "kind": "Ingress",
        "metadata": {
            "namespace": "shop",
            "name": "web",
            "annotations": {
                "alb.ingress.kubernetes.io/load-balancer-attributes": (
                    "routing.http2.enabled=true,idle_timeout.timeout_seconds=30"
                )
            },
        },
    }
    snapshot = snapshot_with(
        lb,
        series("TargetResponseTime", "Maximum", [30.0]),
        series("HTTPCode_ELB_504_Count", "Sum", [4]),
        ingresses=[ingress],
    )
    (finding,) = judge(snapshot)
    shell = finding.fixes[0].text
    assert "kubectl annotate ingress --namespace shop web --overwrite" in shell
    assert (
        "alb.ingress.kubernetes.io/load-balancer-attributes="
        "routing.http2.enabled=true,idle_timeout.timeout_seconds=120" in shell
    )


def test_unreadable_metrics_are_unknown_with_the_reason() -> None:
    lb = load_balancer("classic", idle=60)
    snapshot = snapshot_with(lb)
    snapshot.gaps.append(Gap("metrics", lb.name, "AWS refused cloudwatch:GetMetricData"))
    (finding,) = judge(snapshot)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == ("AWS refused cloudwatch:GetMetricData",)


def test_nlb_has_no_idle_timeout_504() -> None:
    assert judge(snapshot_with(load_balancer("network", idle=None))) == []


def test_suggested_timeout_doubles_on_whole_minutes_within_range() -> None:
    assert suggested_timeout(30, "application") == 120
    assert suggested_timeout(90, "classic") == 180
    assert suggested_timeout(3000, "classic") == 4000


def test_suggested_timeout_stays_under_the_servers_keepalive_when_that_is_longer() -> None:
    assert suggested_timeout(30, "application", ceiling=70) == 70
    # A ceiling at or under the current value cannot help: the doubled value stands.
    assert suggested_timeout(60, "application", ceiling=55) == 120


def test_an_ask_already_in_the_manifest_is_pointed_at_instead_of_a_new_value() -> None:
    lb = load_balancer("application", idle=60, serves="ingress/shop/web")
    ingress = {
        "kind": "Ingress",
        "metadata": {
            "namespace": "shop",
            "name": "web",
            "annotations": {"alb.ingress.kubernetes.io/connection-idle-timeout": "1800"},
        },
    }
    snapshot = snapshot_with(
        lb,
        series("TargetResponseTime", "Maximum", [60.0]),
        series("HTTPCode_ELB_504_Count", "Sum", [2]),
        ingresses=[ingress],
    )
    (finding,) = judge(snapshot)
    assert finding.fixes == ()
    assert (
        "ingress/shop/web asks for 1800 s under alb.ingress.kubernetes.io/connection-idle-timeout"
        in finding.evidence
    )


def test_a_longer_timeout_than_the_servers_keepalive_is_not_offered_for_one_click() -> None:
    lb = load_balancer("application", idle=30, serves="ingress/shop/web")
    pod = {
        "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "web-1"},
        "spec": {"containers": [{"name": "web", "command": ["uvicorn", "app:app"]}]},
    }
    ingress = {"kind": "Ingress", "metadata": {"namespace": "shop", "name": "web"}}
    snapshot = snapshot_with(
        lb,
        series("TargetResponseTime", "Maximum", [30.0]),
        series("HTTPCode_ELB_504_Count", "Sum", [2]),
        ingresses=[ingress],
        pods=[pod],
    )
    (finding,) = judge(snapshot)
    assert "idle_timeout.timeout_seconds=120" in finding.fixes[0].text
    assert all(f.apply is None for f in finding.fixes)
    assert any("raise it too" in e for e in finding.evidence)
