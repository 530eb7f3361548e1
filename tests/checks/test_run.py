"""The runner: every check judged, broken or stuck checks isolated, the deadline kept."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import pytest

from checks.collect.snapshot import collect
from checks.models import Finding, Severity, Status
from checks.registry import Check, all_checks
from checks.run import build_report, judge_all, unread_parts
from checks.snapshot import Gap, LoadBalancer, Snapshot
from sandbox.kube_server import KubeApiServer
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World


def _check(name: str, judge: object) -> Check:
    return Check(
        name=name,
        codes=(name.upper(),),
        severity=Severity.LOW,
        title=f"{name} title",
        explains="",
        judge=judge,  # type: ignore[arg-type]
    )


def _passes(snapshot: Snapshot) -> list[Finding]:
    return [Finding("PASSES", Status.PASS, Severity.LOW, "fine")]


def _raises(snapshot: Snapshot) -> list[Finding]:
    raise KeyError("missing")


def _sleeps(snapshot: Snapshot) -> list[Finding]:
    time.sleep(1.0)
    return []


def test_a_raising_check_becomes_unknown_and_the_others_stand() -> None:
    findings = judge_all(
        Snapshot("ns", "svc"), [_check("raises", _raises), _check("passes", _passes)]
    )
    assert [(f.code, f.status) for f in findings] == [
        ("RAISES", Status.UNKNOWN),
        ("PASSES", Status.PASS),
    ]
    assert findings[0].evidence == ("KeyError: 'missing'",)


def test_a_check_over_its_time_limit_is_reported_as_not_finished() -> None:
    findings = judge_all(
        Snapshot("ns", "svc"), [_check("sleeps", _sleeps), _check("passes", _passes)], limit_s=0.2
    )
    assert findings[0].code == "SLEEPS"
    assert findings[0].status is Status.UNKNOWN
    assert "did not finish within 0.2 s" in findings[0].summary
    assert findings[1].status is Status.PASS


def test_every_registered_check_has_codes_and_a_title() -> None:
    checks = all_checks()
    assert len(checks) >= 10
    for check in checks:
        assert check.codes and all(c.isupper() for c in check.codes)
        assert check.title and check.explains


def test_parts_past_the_deadline_are_reported_and_the_report_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import checks.collect.snapshot as collecting

    real_fetch_metrics = collecting.fetch_metrics

    def slow_metrics(*args: object, **kwargs: object) -> object:
        time.sleep(5.0)
        return real_fetch_metrics(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(collecting, "fetch_metrics", slow_metrics)
    with World(load(BUNDLED_DIR / "s1-alb-idle-timeout-short.yaml")) as world:
        assert world.connection is not None
        hurried = dataclasses.replace(world.connection, deadline_s=3.0)
        started = time.monotonic()
        snapshot = collect("shop", "reports", hurried)
        took = time.monotonic() - started
    assert took < 5.0
    late = [g for g in snapshot.gaps if "deadline" in g.reason]
    assert [g.area for g in late] == ["metrics"]
    assert late[0].reason == "did not finish within the report's deadline of 3 s"
    report = build_report(snapshot)
    reached = next(f for f in report.findings if f.code == "IDLE_TIMEOUT_REACHED")
    assert reached.status is Status.UNKNOWN
    assert "deadline" in " ".join(reached.evidence)


def test_work_still_running_at_the_deadline_ends_quietly_and_leaves_the_report_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import checks.collect.snapshot as collecting

    real_run_exec = KubeApiServer._run_exec
    real_read_all = collecting.read_all
    # Late work is counted in and out: the threads that run it may be pool threads that
    # live on, so what must end is the work, not the threads.
    running = threading.Semaphore(0)
    started = []
    metrics_released = threading.Event()

    def slow_node_exec(self: KubeApiServer, pod: dict[str, Any], command: list[str]) -> object:
        if pod["spec"].get("hostNetwork"):  # the short-lived pods that read a node
            time.sleep(1.2)
        return real_run_exec(self, pod, command)

    def watched_read_all(*args: Any, **kwargs: Any) -> Any:
        started.append(True)
        try:
            return real_read_all(*args, **kwargs)
        finally:
            running.release()

    def metrics_failing_late(call: object, lb: LoadBalancer, window_s: int, gaps: list[Gap]) -> Any:
        started.append(True)
        try:
            metrics_released.wait(timeout=10)
            gaps.append(Gap("metrics", lb.name, "failed after the report was written"))
            return {}
        finally:
            running.release()

    monkeypatch.setattr(KubeApiServer, "_run_exec", slow_node_exec)
    monkeypatch.setattr(collecting, "read_all", watched_read_all)
    monkeypatch.setattr(collecting, "fetch_metrics", metrics_failing_late)
    caplog.set_level(logging.WARNING)
    with World(load(BUNDLED_DIR / "s2-clb-nginx-keepalive-30s.yaml")) as world:
        assert world.connection is not None
        hurried = dataclasses.replace(world.connection, deadline_s=1.0)
        snapshot = collect("web", "frontend", hurried)
        caplog.clear()  # what the collector says about the deadline comes before the report
    reported = list(snapshot.gaps)
    # The sandbox is gone, as after a report: what still runs must end without a word.
    metrics_released.set()
    ended = [running.acquire(timeout=30) for _ in started]

    assert {g.area for g in reported if "deadline" in g.reason} >= {"metrics", "sysctls"}
    assert started and all(ended)
    assert [f"{r.name}: {r.getMessage()}" for r in caplog.records] == []
    assert snapshot.gaps == reported


def test_parts_no_check_needs_are_named_in_plain_words() -> None:
    snapshot = Snapshot("web", "frontend")
    snapshot.gaps = [
        Gap("kubernetes:configmaps", "configmaps in web", "refused configmaps", "RBAC"),
        Gap("lb-tags", "a3f9c1", "refused tags"),
        Gap("vpc", "vpc-1", "refused vpcs"),
    ]

    summaries = [f.summary for f in unread_parts(snapshot, [])]

    assert summaries == [
        "Could not read configmaps in web.",
        "Could not read the tags of load balancer a3f9c1.",
        "Could not read the CIDR of vpc-1.",
    ]
