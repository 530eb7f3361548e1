"""A load balancer in front of ingress-nginx is judged against ingress-nginx's own
keep-alive, not against the pods behind it."""

from __future__ import annotations

from checks.collect.proxies import _split_ref
from checks.models import Status
from checks.rules import app_keepalive, tcp_keepalive
from checks.snapshot import InClusterProxy, LbType, Snapshot
from tests.checks.lb_builders import load_balancer, snapshot_with

CONTROLLER = {
    "kind": "Service",
    "metadata": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller"},
}


def _proxy(data: dict[str, str] | None) -> InClusterProxy:
    configmap = (
        None
        if data is None
        else {
            "kind": "ConfigMap",
            "metadata": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller"},
            "data": data,
        }
    )
    return InClusterProxy("ingress-nginx", CONTROLLER, [], configmap)


def _snapshot(lb_type: LbType, idle: int, data: dict[str, str] | None) -> Snapshot:
    lb = load_balancer(lb_type, idle=idle, serves="service/ingress-nginx/ingress-nginx-controller")
    return snapshot_with(lb, proxies=[_proxy(data)])


def test_default_nginx_keepalive_below_a_long_classic_idle_timeout_fails() -> None:
    (finding,) = app_keepalive.judge(_snapshot("classic", 300, {}))
    assert finding.status is Status.FAIL
    assert "ingress-nginx closes idle connections after 75 s" in finding.summary
    assert finding.fixes[0].apply is not None
    assert finding.fixes[0].apply.patch == {"data": {"keep-alive": "305"}}
    assert "kubectl patch configmap --namespace ingress-nginx ingress-nginx-controller" in (
        finding.fixes[0].text
    )


def test_configured_nginx_keepalive_above_the_idle_timeout_passes() -> None:
    (finding,) = app_keepalive.judge(_snapshot("application", 300, {"keep-alive": "400"}))
    assert finding.status is Status.PASS
    assert "keep-alive in ConfigMap ingress-nginx/ingress-nginx-controller" in (finding.evidence[0])


def test_nlb_in_front_of_the_proxy_does_not_judge_the_app_pods_tcp_keepalive() -> None:
    (finding,) = tcp_keepalive.judge(_snapshot("network", 350, {}))
    assert finding.status is Status.UNKNOWN
    assert "flows end at ingress-nginx" in finding.summary


def test_chart_namespace_variable_means_the_controller_namespace() -> None:
    assert _split_ref("$(POD_NAMESPACE)/ingress-nginx-controller", "infra") == (
        "infra",
        "ingress-nginx-controller",
    )
    assert _split_ref("ingress-nginx-controller", "infra") == ("infra", "ingress-nginx-controller")
