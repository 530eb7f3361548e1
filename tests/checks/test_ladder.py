"""The timeout ladder, built from snapshots the real collectors read from the sandbox."""

from __future__ import annotations

import copy
import io
from functools import cache
from typing import Any

from bot import render_slack, render_text
from checks.collect.snapshot import collect
from checks.ladder import build_ladder
from checks.models import Report, Rung
from checks.run import build_report
from checks.snapshot import LoadBalancer, Snapshot
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World

NGINX = "ingress-nginx ingress-nginx/ingress-nginx-controller"
NOT_IN_CM = "ingress-nginx default (not set in ConfigMap ingress-nginx/ingress-nginx-controller)"
READ_7200 = (
    "read in the pod (tcp_keepalive_time 7200, tcp_keepalive_intvl 75, tcp_keepalive_probes 9)"
)
CLB_ALB_EVIDENCE = "evidence only: keepalive probes do not keep a Classic LB or ALB connection open"
BEHIND_NGINX = (
    "evidence only: the load balancer's connections end at ingress-nginx, not at these pods"
)


@cache
def _collected(stem: str) -> Snapshot:
    scenario = load(BUNDLED_DIR / f"{stem}.yaml")
    namespace, name = scenario.ask.split("/")
    with World(scenario) as world:
        assert world.connection is not None
        return collect(namespace, name, world.connection)


def snapshot_of(stem: str) -> Snapshot:
    """A copy the test may change."""
    return copy.deepcopy(_collected(stem))


def _rung(ladder: list[Rung], setting: str, layer_start: str = "") -> Rung:
    (found,) = [r for r in ladder if r.setting == setting and r.layer.startswith(layer_start)]
    return found


# ---- the scenarios ------------------------------------------------------------------------


def test_classic_lb_60s_over_nginx_30s_marks_nginx_inverted() -> None:
    assert build_ladder(snapshot_of("s2-clb-nginx-keepalive-30s")) == [
        Rung(
            "Classic LB a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60",
            "idle timeout",
            60.0,
            "attribute idle_timeout",
            "fires first on a slow request",
        ),
        Rung(
            "nginx (web/frontend-5c8b7-q2w3e and 1 more, container nginx)",
            "keep-alive idle timeout",
            30.0,
            "keepalive_timeout 30s, /etc/nginx/conf.d/default.conf line 4, "
            "ConfigMap web/frontend-nginx",
            "inverted: closes idle connections before the Classic LB "
            "a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60 stops reusing them (60 s)",
        ),
        Rung(
            "TCP keepalive (2 pods)",
            "net.ipv4.tcp_keepalive_time",
            45.0,
            "read in the pod (tcp_keepalive_time 45, tcp_keepalive_intvl 75, "
            "tcp_keepalive_probes 9)",
            CLB_ALB_EVIDENCE,
        ),
    ]


def test_nlb_to_ingress_nginx_to_uvicorn_shows_every_layer_and_the_upstream_race() -> None:
    assert build_ladder(snapshot_of("c17-uvicorn-behind-ingress-nginx")) == [
        Rung(
            "NLB a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2",
            "TCP idle timeout",
            350.0,
            "listener attribute tcp.idle_timeout.seconds",
            "no HTTP pooling: each client connection passes through to one target, so there "
            "is no keep-alive race behind it",
        ),
        Rung(NGINX, "keep-alive (client side)", 75.0, NOT_IN_CM, ""),
        Rung(NGINX, "proxy-connect-timeout", 5.0, NOT_IN_CM, ""),
        Rung(NGINX, "proxy-send-timeout", 60.0, NOT_IN_CM, ""),
        Rung(NGINX, "proxy-read-timeout", 60.0, NOT_IN_CM, "fires first on a slow request"),
        Rung(NGINX, "upstream-keepalive-timeout", 60.0, NOT_IN_CM, ""),
        Rung(
            "uvicorn (science/portal-6b7c8-aa and 1 more, container portal)",
            "keep-alive idle timeout",
            5.0,
            "uvicorn's default (5 s)",
            f"inverted: closes idle connections before {NGINX}'s upstream pool stops reusing "
            "them (60 s)",
        ),
        Rung(
            "TCP keepalive (2 pods)", "net.ipv4.tcp_keepalive_time", 7200.0, READ_7200, BEHIND_NGINX
        ),
    ]


def test_healthy_alb_ladder_has_no_inverted_pair() -> None:
    assert build_ladder(snapshot_of("h0-alb-healthy")) == [
        Rung(
            "ALB k8s-shop-catalog-9a8b7c6d5e",
            "idle timeout",
            120.0,
            "attribute idle_timeout.timeout_seconds",
            "fires first on a slow request",
        ),
        Rung(
            "uvicorn (2 pods of deployment/shop/catalog, container catalog)",
            "keep-alive idle timeout",
            130.0,
            "--timeout-keep-alive 130",
            "",
        ),
        Rung(
            "TCP keepalive (2 pods)",
            "net.ipv4.tcp_keepalive_time",
            7200.0,
            READ_7200,
            CLB_ALB_EVIDENCE,
        ),
    ]


def test_configmap_values_and_a_sync_worker_are_shown_with_their_sources() -> None:
    ladder = build_ladder(snapshot_of("x1-nginx-proxy-read-timeout"))

    assert _rung(ladder, "keep-alive (client side)") == Rung(
        NGINX, "keep-alive (client side)", 310.0, "ConfigMap ingress-nginx/ingress-nginx-controller"
    )
    assert _rung(ladder, "proxy-read-timeout").note == "fires first on a slow request"
    assert _rung(ladder, "idle timeout").note == ""
    assert _rung(ladder, "keep-alive idle timeout") == Rung(
        "gunicorn (2 pods of deployment/reports/export, container web)",
        "keep-alive idle timeout",
        0.0,
        "gunicorn's default worker",
        "no keep-alive: nothing to race; the sync worker closes each connection after its response",
    )


# ---- changed snapshots ------------------------------------------------------------------


def _annotate(snapshot: Snapshot, annotations: dict[str, str]) -> None:
    (proxy,) = snapshot.proxies
    for ingress in proxy.ingresses:
        ingress["metadata"].setdefault("annotations", {}).update(annotations)


def _configmap_data(snapshot: Snapshot) -> dict[str, Any]:
    (proxy,) = snapshot.proxies
    assert proxy.configmap is not None
    data: dict[str, Any] = proxy.configmap.setdefault("data", {})
    return data


def test_ingress_annotation_overrides_the_configmap_and_is_named_as_the_source() -> None:
    snapshot = snapshot_of("x1-nginx-proxy-read-timeout")
    _annotate(snapshot, {"nginx.ingress.kubernetes.io/proxy-read-timeout": "240"})

    rung = _rung(build_ladder(snapshot), "proxy-read-timeout")

    assert rung == Rung(
        f"{NGINX} (Ingress reports/export)",
        "proxy-read-timeout",
        240.0,
        "annotation nginx.ingress.kubernetes.io/proxy-read-timeout on Ingress reports/export",
        "fires first on a slow request",
    )


def test_proxy_read_timeout_at_the_idle_timeout_is_marked_inverted() -> None:
    snapshot = snapshot_of("x1-nginx-proxy-read-timeout")
    _configmap_data(snapshot)["proxy-read-timeout"] = "300"

    ladder = build_ladder(snapshot)

    assert _rung(ladder, "proxy-read-timeout").note == (
        "inverted: not below the Classic LB a51d0e2c7b9f4e1a8c3d6b0f2e4a7c91's idle timeout "
        "(300 s), so the load balancer cuts slow requests first"
    )
    assert _rung(ladder, "idle timeout").note == "fires first on a slow request"


def test_nginx_client_keepalive_below_a_pooling_lb_is_marked_inverted() -> None:
    snapshot = snapshot_of("x1-nginx-proxy-read-timeout")
    del _configmap_data(snapshot)["keep-alive"]

    rung = _rung(build_ladder(snapshot), "keep-alive (client side)")

    assert rung == Rung(
        NGINX,
        "keep-alive (client side)",
        75.0,
        NOT_IN_CM,
        "inverted: closes idle connections before the Classic LB "
        "a51d0e2c7b9f4e1a8c3d6b0f2e4a7c91 stops reusing them (300 s)",
    )


def test_upstream_pooling_off_removes_the_app_race() -> None:
    snapshot = snapshot_of("c17-uvicorn-behind-ingress-nginx")
    _configmap_data(snapshot)["upstream-keepalive-connections"] = "0"

    ladder = build_ladder(snapshot)

    assert _rung(ladder, "upstream-keepalive-timeout").note == (
        "upstream keep-alive off (upstream-keepalive-connections is 0)"
    )
    assert _rung(ladder, "keep-alive idle timeout").note == ""


def test_value_that_is_not_whole_seconds_is_unknown_not_guessed() -> None:
    snapshot = snapshot_of("c17-uvicorn-behind-ingress-nginx")
    _configmap_data(snapshot)["proxy-send-timeout"] = "2m"

    rung = _rung(build_ladder(snapshot), "proxy-send-timeout")

    assert rung.seconds is None
    assert rung.source == (
        "ConfigMap ingress-nginx/ingress-nginx-controller: '2m' is not a whole number of seconds"
    )


def test_missing_lb_attribute_falls_back_to_the_aws_default_and_says_so() -> None:
    snapshot = snapshot_of("h0-alb-healthy")
    (lb,) = snapshot.load_balancers
    attributes = {k: v for k, v in lb.attributes.items() if k != "idle_timeout.timeout_seconds"}
    snapshot.load_balancers = [LoadBalancer(**{**lb.__dict__, "attributes": attributes})]

    rung = _rung(build_ladder(snapshot), "idle timeout")

    assert (rung.seconds, rung.source) == (60.0, "AWS default (attribute not read)")


def test_nlb_with_pods_keepalive_not_below_its_idle_timeout_is_marked_inverted() -> None:
    ladder = build_ladder(snapshot_of("s5-nlb-idle-pool-resets"))

    rung = _rung(ladder, "net.ipv4.tcp_keepalive_time")

    assert rung.seconds == 7200.0
    assert (
        rung.note
        == "inverted: not below the NLB k8s-db-pgbouncer-5d4c3b2a1f's idle timeout (350 s)"
    )


# ---- shown in the report ------------------------------------------------------------------


def _report(stem: str) -> Report:
    return build_report(snapshot_of(stem))


def test_terminal_report_shows_the_ladder_as_a_table_after_the_load_balancers() -> None:
    text = render_text.render(_report("s2-clb-nginx-keepalive-30s"), stream=io.StringIO())
    lines = text.splitlines()

    start = lines.index("  timeout ladder, outermost first:")
    nginx = "nginx (web/frontend-5c8b7-q2w3e and 1 more, container nginx)"
    width = len(nginx)
    pad = " " * (4 + width + 2)
    assert lines[start - 1].startswith("  path: client -> classic LB ")
    assert lines[start + 1 : start + 9] == [
        f"    {'layer':<{width}}  {'setting':<27}  value  source",
        f"    {'Classic LB a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60':<{width}}  {'idle timeout':<27}"
        "   60 s  attribute idle_timeout",
        f"{pad}^ fires first on a slow request",
        f"    {nginx}  {'keep-alive idle timeout':<27}   30 s  keepalive_timeout 30s, "
        "/etc/nginx/conf.d/default.conf line 4, ConfigMap web/frontend-nginx",
        f"{pad}^ inverted: closes idle connections before the Classic LB "
        "a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60 stops reusing them (60 s)",
        f"    {'TCP keepalive (2 pods)':<{width}}  net.ipv4.tcp_keepalive_time   45 s  "
        "read in the pod (tcp_keepalive_time 45, tcp_keepalive_intvl 75, "
        "tcp_keepalive_probes 9)",
        f"{pad}^ {CLB_ALB_EVIDENCE}",
        "",
    ]


def test_slack_closing_reply_carries_the_ladder_as_a_code_block() -> None:
    messages = render_slack.render(_report("h0-alb-healthy"), cache_hit=False, age_s=0)
    sections = [b["text"]["text"] for b in messages.replies[-1]["blocks"] if b["type"] == "section"]

    title = sections.index("*Timeout ladder*, outermost first")
    table = sections[title + 1]
    assert table.startswith("```\nlayer ")
    assert table.endswith("\n```")
    assert "ALB k8s-shop-catalog-9a8b7c6d5e" in table
    assert "--timeout-keep-alive 130" in table
