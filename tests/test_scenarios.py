"""Every bundled scenario, diagnosed through `eks504 check ASK --scenario FILE --format json`
against the sandbox (local AWS endpoint and local Kubernetes API over HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from sandbox.scenario import BUNDLED_DIR, load

SCENARIOS = sorted(BUNDLED_DIR.glob("*.yaml"))


def _check_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    scenario = load(path)
    code = main(["check", scenario.ask, "--scenario", str(path), "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_is_diagnosed_as_expected(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load(path)
    code, report = _check_json(path, capsys)
    reported = {f["code"] for f in report["findings"] if f["status"] in ("fail", "warn")}
    missing = set(scenario.expect_findings) - reported
    wrong = set(scenario.expect_absent) & reported
    assert not missing, f"expected codes not reported: {sorted(missing)}"
    assert not wrong, f"codes reported that must be absent: {sorted(wrong)}"
    failing = any(f["status"] == "fail" for f in report["findings"])
    assert code == (1 if failing else 0)


def test_json_report_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check_json(BUNDLED_DIR / "s1-alb-idle-timeout-short.yaml", capsys)
    assert code == 1
    assert report["target"] == {"cluster": "demo", "namespace": "shop", "service": "reports"}
    assert report["cache"] == {"hit": False, "age_s": 0.0}
    (lb,) = report["load_balancers"]
    assert lb["type"] == "application"
    assert lb["name"] == "k8s-shop-reports-4f1e2d3c4b"
    assert lb["idle_timeout_s"] == 30
    assert lb["dns_name"].startswith("k8s-shop-reports-4f1e2d3c4b")
    finding = next(f for f in report["findings"] if f["code"] == "IDLE_TIMEOUT_REACHED")
    assert set(finding) >= {"code", "status", "severity", "summary", "evidence", "fixes"}
    assert finding["status"] == "fail"
    assert "in 4 of the last 60 minutes" in finding["summary"]
    assert any("30 s" in e for e in finding["evidence"])
    fix_text = "\n".join(f["text"] for f in finding["fixes"])
    assert "kubectl annotate ingress --namespace shop reports" in fix_text
    assert "idle_timeout.timeout_seconds=70" in fix_text
    for fix in finding["fixes"]:
        assert {"title", "language", "text"} <= set(fix) <= {"title", "language", "text", "apply"}
    assert {f["status"] for f in report["findings"]} <= {"fail", "warn", "pass", "unknown"}


def test_console_entry_point_reports_and_exits_with_findings() -> None:
    path = BUNDLED_DIR / "c01-clb-default-idle-timeout.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", "mesh/gateway", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "IDLE_TIMEOUT_REACHED" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        ("mesh/gatewy", "Service `mesh/gatewy` does not exist. Did you mean `mesh/gateway`?"),
        ("mseh/gateway", "Namespace `mseh` does not exist"),
        ("Mesh/Gateway!", "is not a valid namespace name"),
    ],
)
def test_bad_target_gets_a_plain_message_and_exit_2(
    ask: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = BUNDLED_DIR / "c01-clb-default-idle-timeout.yaml"
    code = main(["check", ask, "--scenario", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
