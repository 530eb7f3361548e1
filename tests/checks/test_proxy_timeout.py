"""PROXY_TIMEOUT_REACHED through the real sandbox, and on changed copies of its snapshots."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from checks.models import Finding, Status
from checks.rules import proxy_timeout_reached
from checks.rules.proxy_timeout_reached import suggested_timeout
from checks.snapshot import Gap, MetricSeries, Snapshot
from sandbox.scenario import BUNDLED_DIR, load
from tests.checks.test_ladder import snapshot_of

CODE = "PROXY_TIMEOUT_REACHED"
X1 = "x1-nginx-proxy-read-timeout"
LB = "a51d0e2c7b9f4e1a8c3d6b0f2e4a7c91"
OTHERS = sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml") if p.stem != X1)


def _ours(snapshot: Snapshot) -> list[Finding]:
    findings = proxy_timeout_reached.judge(snapshot)
    assert all(f.code == CODE for f in findings)
    return findings


def test_proxy_read_timeout_below_the_classic_lb_fails_with_target_5xx_evidence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = BUNDLED_DIR / f"{X1}.yaml"
    code = main(["check", load(path).ask, "--scenario", str(path), "--format", "json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 1
    (finding,) = [f for f in report["findings"] if f["code"] == CODE]
    assert finding["status"] == "fail"
    assert finding["resource"] == "ingress/reports/export"
    assert finding["summary"] == (
        "ingress-nginx ingress-nginx/ingress-nginx-controller (Ingress reports/export) cut "
        "requests at its proxy-read-timeout of 60 s in 4 of the last 60 minutes, before the "
        f"Classic LB {LB}'s 300 s idle timeout, with 10 HTTPCode_Backend_5XX in those minutes"
    )
    assert finding["evidence"][:3] == [
        "Latency reached 60 s, the proxy-read-timeout, in 4 of the last 60 minutes, with 10 "
        "HTTPCode_Backend_5XX in those minutes.",
        "Those 504s come from ingress-nginx, so the load balancer counts them as "
        "HTTPCode_Backend_5XX; it sent 0 of its own (HTTPCode_ELB_5XX) in those minutes.",
        "proxy-read-timeout 60 s: ingress-nginx default (not set in ConfigMap "
        f"ingress-nginx/ingress-nginx-controller); the Classic LB {LB}'s idle timeout is 300 s "
        "(attribute idle_timeout): the load balancer would have waited longer.",
    ]
    annotation_fix, configmap_fix = finding["fixes"]
    assert annotation_fix["text"].endswith(
        "kubectl -n reports annotate ingress export --overwrite \\\n"
        "  nginx.ingress.kubernetes.io/proxy-read-timeout=120\n"
    )
    assert "Keep it below the load balancer's idle timeout (300 s)" in annotation_fix["text"]
    assert configmap_fix["text"].endswith(
        "kubectl -n ingress-nginx patch configmap ingress-nginx-controller --type merge \\\n"
        """  -p '{"data": {"proxy-read-timeout": "120"}}'\n"""
    )
    read = next(r for r in report["ladder"] if r["setting"] == "proxy-read-timeout")
    assert (read["seconds"], read["note"]) == (60.0, "fires first on a slow request")


@pytest.mark.parametrize("stem", OTHERS)
def test_no_other_bundled_scenario_reports_a_proxy_timeout(stem: str) -> None:
    problems = [f for f in _ours(snapshot_of(stem)) if f.is_problem]

    assert problems == []


def test_behind_an_nlb_it_is_unknown_for_want_of_http_metrics() -> None:
    (finding,) = _ours(snapshot_of("c17-uvicorn-behind-ingress-nginx"))

    assert finding.status is Status.UNKNOWN
    assert finding.evidence[0] == (
        "An NLB publishes no HTTP metrics, and ingress-nginx's own metrics "
        "(nginx_ingress_controller_request_duration_seconds, and "
        "nginx_ingress_controller_requests with status 504) could not be reached."
    )


def test_minutes_at_the_timeout_without_target_5xx_pass_as_the_right_order() -> None:
    snapshot = snapshot_of(X1)
    series = snapshot.metrics[LB]["HTTPCode_Backend_5XX"]
    snapshot.metrics[LB]["HTTPCode_Backend_5XX"] = MetricSeries(
        series.name, series.stat, tuple(0.0 for _ in series.values), timestamps=series.timestamps
    )

    (finding,) = _ours(snapshot)

    assert finding.status is Status.PASS
    assert finding.summary == (
        "ingress-nginx ingress-nginx/ingress-nginx-controller (Ingress reports/export) times "
        f"requests out after 60 s, inside the Classic LB {LB}'s 300 s idle timeout (the right "
        "order), and no minute shows it cutting requests"
    )


def test_elb_5xx_alone_are_not_the_proxys_504s() -> None:
    snapshot = snapshot_of(X1)
    backend = snapshot.metrics[LB].pop("HTTPCode_Backend_5XX")
    snapshot.metrics[LB]["HTTPCode_ELB_5XX"] = MetricSeries(
        "HTTPCode_ELB_5XX", "Sum", backend.values, timestamps=backend.timestamps
    )

    (finding,) = _ours(snapshot)

    assert finding.status is Status.PASS


def test_annotation_at_or_above_the_idle_timeout_leaves_the_cut_to_the_lb() -> None:
    snapshot = snapshot_of(X1)
    (proxy,) = snapshot.proxies
    proxy.ingresses[0]["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-read-timeout"
    ] = "300"

    (finding,) = _ours(snapshot)

    assert finding.status is Status.PASS
    assert finding.summary.endswith(
        f"waits 300 s for a response, not less than the Classic LB {LB}'s idle timeout "
        "(300 s): the load balancer, not the proxy, cuts slow requests"
    )


def test_longer_annotation_no_longer_matches_the_60s_minutes() -> None:
    snapshot = snapshot_of(X1)
    (proxy,) = snapshot.proxies
    proxy.ingresses[0]["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-read-timeout"
    ] = "120"

    (finding,) = _ours(snapshot)

    assert finding.status is Status.PASS


def test_unreadable_metrics_make_it_unknown() -> None:
    snapshot = snapshot_of(X1)
    snapshot.metrics = {}
    snapshot.gaps.append(Gap("metrics", LB, "not allowed: cloudwatch:GetMetricData"))

    (finding,) = _ours(snapshot)

    assert finding.status is Status.UNKNOWN
    assert finding.evidence[0] == "not allowed: cloudwatch:GetMetricData"


@pytest.mark.parametrize(
    ("current", "idle", "expected"),
    [(60, 300, (120, False)), (60, 90, (85, False)), (100, 103, (240, True))],
)
def test_suggested_timeout_stays_below_the_idle_timeout_or_says_to_raise_it(
    current: float, idle: int, expected: tuple[int, bool]
) -> None:
    assert suggested_timeout(current, idle) == expected
