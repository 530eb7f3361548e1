"""Offline judging of manifests: scenario files and realistic public-style manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.lint import LINT_CHECKS, lint, lint_documents

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "sandbox" / "scenarios").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
LINT_CODES = {code for check in LINT_CHECKS for code in check.codes}


def scenario_docs(path: Path) -> list[tuple[str, int, dict[str, Any]]]:
    return [(str(path), 1, yaml.safe_load(path.read_text(encoding="utf-8")))]


def fixture_docs(name: str) -> list[tuple[str, int, dict[str, Any]]]:
    path = FIXTURES / name
    return [(name, 1, d) for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def problem_codes(docs: list[tuple[str, int, dict[str, Any]]]) -> set[str]:
    return {f.finding.code for f in lint_documents(docs)}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_lint_shows_what_manifests_can(path: Path) -> None:
    expect = yaml.safe_load(path.read_text(encoding="utf-8"))["expect"]
    codes = problem_codes(scenario_docs(path))
    assert set(expect["findings"]) & LINT_CODES <= codes
    assert not set(expect["absent"]) & codes


def test_scenario_lint_codes_exactly() -> None:
    found = {p.stem.split("-")[0]: problem_codes(scenario_docs(p)) for p in SCENARIOS}
    assert found["c05"] == {"ANNOTATION_UNKNOWN", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c06"] == {"ANNOTATION_MALFORMED", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c07"] == {"INGRESS_GROUP_CONFLICT", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c09"] == {"ANNOTATION_OUT_OF_RANGE", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c10"] == {"ANNOTATION_WRONG_TARGET", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c11"] == {"IDLE_TIMEOUT_NOT_APPLIED"}
    assert found["c12"] == {"ANNOTATION_WRONG_TARGET"}
    for clean in (
        "h0",
        "s1",
        "s2",
        "s3",
        "s5",
        "c01",
        "c14",
        "c16",
        "c17",
        "c19",
        "c21",
        "c23",
        "c25",
    ):
        assert found[clean] == set(), clean


def test_old_controller_release_explains_listener_attributes_offline() -> None:
    (path,) = [p for p in SCENARIOS if p.stem.startswith("c11")]
    (finding,) = lint_documents(scenario_docs(path))
    assert finding.finding.evidence == (
        "reason: the installed AWS Load Balancer Controller is v2.7.2; "
        "aws-load-balancer-listener-attributes.TCP-9094 needs v2.9.0 or later",
    )
    assert "TcpEstablishedTimeout=4000" in finding.finding.fixes[1].text


def test_scenarios_are_judged_apart() -> None:
    docs = [d for p in SCENARIOS for d in scenario_docs(p)]
    by_source = {}
    for item in lint_documents(docs):
        by_source.setdefault(Path(item.source).stem.split("-")[0], set()).add(item.finding.code)
    assert by_source["c05"] == {"ANNOTATION_UNKNOWN", "IDLE_TIMEOUT_NOT_APPLIED"}
    assert "c09" in by_source and "PROXY_PROTOCOL_MISMATCH" not in by_source["c09"]


@pytest.mark.parametrize(
    "name", ["alb-game-ingress.yaml", "ingress-nginx-aws-nlb.yaml", "eks-workshop-ui-nlb.yaml"]
)
def test_well_formed_public_style_manifests_are_clean(name: str) -> None:
    assert lint_documents(fixture_docs(name)) == []


def test_old_ingress_api_is_noted_and_still_judged() -> None:
    result = lint(fixture_docs("legacy-extensions-ingress.yaml"))
    assert [f.finding.code for f in result.findings] == ["ANNOTATION_UNKNOWN"]
    assert "healthcheck-paht" in result.findings[0].finding.summary
    assert any("extensions/v1beta1" in n.message for n in result.notes)


def test_unrendered_template_variables_are_malformed() -> None:
    findings = lint_documents(fixture_docs("helm-rendered-placeholders.yaml"))
    assert sorted(f.finding.summary.split(" holds ")[1].split(":")[0] for f in findings) == [
        "the unrendered template variable $INBOUND_CIDRS",
        "the unrendered template variable ${APP_NAME}",
    ]


def test_classic_proxy_protocol_against_nginx_default() -> None:
    docs = fixture_docs("kubectl-list-clb-proxy.yaml")
    assert docs[0][2]["kind"] == "List"
    findings = lint_documents(docs)
    assert [f.finding.code for f in findings] == ["PROXY_PROTOCOL_MISMATCH"]


def test_value_mistakes_on_an_lbc_nlb() -> None:
    findings = lint_documents(fixture_docs("nlb-value-mistakes.yaml"))
    assert sorted(f.finding.code for f in findings) == [
        "ANNOTATION_MALFORMED",
        "ANNOTATION_OUT_OF_RANGE",
        "ANNOTATION_OUT_OF_RANGE",
        "IDLE_TIMEOUT_NOT_APPLIED",
    ]
    idle = next(f for f in findings if f.finding.code == "IDLE_TIMEOUT_NOT_APPLIED")
    assert idle.finding.fixes == ()


def test_non_kubernetes_document_is_a_note_not_a_crash() -> None:
    result = lint(fixture_docs("not-kubernetes.yaml"))
    assert result.findings == []
    assert [n.message for n in result.notes] == [
        "not a Kubernetes object (no apiVersion/kind): skipped"
    ]


def test_listener_attributes_with_unknown_controller_release_are_noted() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "feed",
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-80": (
                    "tcp.idle_timeout.seconds=900"
                ),
            },
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }
    result = lint([("svc.yaml", 3, service)])
    assert result.findings == []
    (note,) = result.notes
    assert (note.source, note.line) == ("svc.yaml", 3)
    assert "needs AWS Load Balancer Controller v2.9.0 or later" in note.message


def test_ingress_and_service_in_different_documents_are_judged_together() -> None:
    docs = fixture_docs("alb-game-ingress.yaml")
    service = next(d for d in docs if d[2]["kind"] == "Service")
    service[2]["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/ready"
    }
    findings = lint_documents(docs)
    assert [(f.finding.code, f.finding.status.value) for f in findings] == [
        ("ANNOTATION_WRONG_TARGET", "fail")
    ]
