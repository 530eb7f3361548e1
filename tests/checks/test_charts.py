"""The series behind metric findings, gathered for charts."""

from __future__ import annotations

from checks.charts import build_charts
from checks.models import ChartData, Finding, Report, Severity, Status, Target
from checks.rules import idle_timeout_reached
from checks.run import judge_all
from checks.snapshot import Snapshot
from tests.checks.lb_builders import load_balancer, series, snapshot_with


def alb_snapshot() -> tuple[Snapshot, list[Finding]]:
    snapshot = snapshot_with(
        load_balancer("application", idle=30),
        series("TargetResponseTime", "Maximum", [1.0, 30.0, None, 29.5]),
        series("HTTPCode_ELB_504_Count", "Sum", [0, 2, 0, 1]),
        series("HTTPCode_ELB_5XX_Count", "Sum", [0, 2, 0, 1]),
        series("RequestCount", "Sum", [100, 90, 80, 70]),
    )
    return snapshot, judge_all(snapshot, [idle_timeout_reached.CHECK])


def test_failing_idle_timeout_finding_gets_latency_against_the_idle_timeout() -> None:
    snapshot, findings = alb_snapshot()
    assert [f.status for f in findings] == [Status.FAIL]

    (chart,) = build_charts(snapshot, findings)

    assert chart == ChartData(
        title="TargetResponseTime of web-lb (application)",
        unit="s",
        series={"TargetResponseTime (maximum)": [1.0, 30.0, None, 29.5]},
        timestamps=[0.0, 60.0, 120.0, 180.0],
        threshold=30.0,
        threshold_label="idle timeout 30 s",
        counts={"HTTPCode_ELB_504_Count": [0, 2, 0, 1], "HTTPCode_ELB_5XX_Count": [0, 2, 0, 1]},
        resource="web-lb",
        codes=("IDLE_TIMEOUT_REACHED",),
    )


def test_passing_metric_finding_gets_no_chart() -> None:
    snapshot = snapshot_with(
        load_balancer("application", idle=60),
        series("TargetResponseTime", "Maximum", [1.0, 2.0]),
        series("HTTPCode_ELB_504_Count", "Sum", [0, 0]),
    )
    findings = judge_all(snapshot, [idle_timeout_reached.CHECK])
    assert [f.status for f in findings] == [Status.PASS]

    assert build_charts(snapshot, findings) == []


def test_failing_finding_not_carried_by_metrics_gets_no_chart() -> None:
    snapshot, _ = alb_snapshot()
    other = Finding("SG_BLOCKS_TRAFFIC", Status.FAIL, Severity.HIGH, "blocked", "web-lb")

    assert build_charts(snapshot, [other]) == []


def test_nlb_has_no_latency_so_no_chart() -> None:
    snapshot = snapshot_with(
        load_balancer("network", idle=None),
        series("TCP_ELB_Reset_Count", "Sum", [3, 4]),
    )
    finding = Finding("BACKEND_CONNECTION_ERRORS", Status.FAIL, Severity.HIGH, "resets", "web-lb")

    assert build_charts(snapshot, [finding]) == []


def test_report_with_charts_survives_the_json_round_trip() -> None:
    snapshot, findings = alb_snapshot()
    report = Report(
        target=Target("shop", "web"),
        load_balancers=[],
        findings=findings,
        charts=build_charts(snapshot, findings),
    )

    again = Report.from_dict(report.to_dict())

    assert again.charts == report.charts
    assert again.to_dict() == report.to_dict()


def test_report_stored_before_charts_existed_reads_without_charts() -> None:
    data = Report(target=Target("shop", "web"), load_balancers=[], findings=[]).to_dict()
    del data["charts"]

    assert Report.from_dict(data).charts == []
