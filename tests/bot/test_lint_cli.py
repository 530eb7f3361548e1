"""`eks504 lint`: inputs, formats and exit codes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from bot import cli, lint_cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
SCENARIOS = ROOT / "sandbox" / "scenarios"
IDLE_KEY = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"


def run(paths: list[str], fmt: str = "text", stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = lint_cli.run(paths, fmt, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_clean_manifest_exits_0() -> None:
    code, out = run([str(FIXTURES / "alb-game-ingress.yaml")])
    assert code == 0
    assert out == "0 finding(s): 0 failing, 0 warning\n"


def test_findings_exit_1_with_file_and_line() -> None:
    path = SCENARIOS / "c12-alb-backend-service-family-annotation.yaml"
    code, out = run([str(path)])
    assert code == 1
    assert out.splitlines()[0] == f"{path}:23: fail ANNOTATION_WRONG_TARGET service/store/api"
    assert "alb.ingress.kubernetes.io/healthcheck-path=/healthz" in out


def test_malformed_yaml_exits_2_naming_file_and_line() -> None:
    path = FIXTURES / "invalid" / "unclosed-quote.yaml"
    code, out = run([str(path)])
    assert code == 2
    assert f"error: {path}:" in out
    line = int(out.split(f"error: {path}:")[1].split(":")[0])
    assert line >= 6


def test_missing_file_exits_2() -> None:
    code, out = run([str(FIXTURES / "no-such-file.yaml")])
    assert code == 2
    assert "cannot read" in out


def test_folder_is_read_recursively(tmp_path: Path) -> None:
    nested = tmp_path / "apps" / "store"
    nested.mkdir(parents=True)
    shutil.copy(SCENARIOS / "c05-alb-unknown-annotation.yaml", nested / "ingress.yml")
    (tmp_path / "README.md").write_text("not read")
    code, out = run([str(tmp_path)], "json")
    assert code == 1
    data = json.loads(out)
    assert {f["code"] for f in data["findings"]} == {
        "ANNOTATION_UNKNOWN",
        "IDLE_TIMEOUT_NOT_APPLIED",
    }
    assert {f["file"] for f in data["findings"]} == {str(nested / "ingress.yml")}


def test_stdin_multi_document() -> None:
    text = (FIXTURES / "helm-rendered-placeholders.yaml").read_text()
    code, out = run(["-"], "json", stdin=text)
    assert code == 1
    data = json.loads(out)
    assert [(f["file"], f["line"], f["code"]) for f in data["findings"]] == [
        ("<stdin>", 17, "ANNOTATION_MALFORMED"),
        ("<stdin>", 17, "ANNOTATION_MALFORMED"),
    ]
    assert data["errors"] == []


def test_json_list_input(tmp_path: Path) -> None:
    docs = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "api",
                    "namespace": "shop",
                    "annotations": {IDLE_KEY: "5000"},
                },
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            }
        ],
    }
    out = io.StringIO()
    path = tmp_path / "services.json"
    path.write_text(json.dumps(docs))
    code = lint_cli.run([str(path)], "json", stdout=out)
    assert code == 1
    codes = sorted(f["code"] for f in json.loads(out.getvalue())["findings"])
    assert codes == ["ANNOTATION_OUT_OF_RANGE", "IDLE_TIMEOUT_NOT_APPLIED"]


def test_github_format_writes_workflow_commands() -> None:
    path = SCENARIOS / "c09-clb-idle-timeout-out-of-range.yaml"
    code, out = run([str(path)], "github")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        f"::error file={path},line=6,title=ANNOTATION_OUT_OF_RANGE::service.beta.kubernetes.io"
    )
    assert all(line.startswith("::error ") for line in lines)
    assert all("\n" not in line for line in lines)


def test_github_format_escapes_properties_and_newlines() -> None:
    assert lint_cli._github_escape("a,b:c", property_value=True) == "a%2Cb%3Ac"
    assert lint_cli._github_escape("50%\nnext") == "50%25%0Anext"


def test_notes_do_not_change_the_exit_code() -> None:
    code, out = run([str(FIXTURES / "not-kubernetes.yaml")], "github")
    assert code == 0
    assert out.startswith("::notice file=")


def test_every_scenario_file_lints_without_crashing() -> None:
    code, out = run([str(SCENARIOS)], "json")
    data = json.loads(out)
    assert code == 1
    assert data["errors"] == []
    assert {Path(f["file"]).stem.split("-")[0] for f in data["findings"]} == {
        "c05",
        "c06",
        "c07",
        "c09",
        "c10",
        "c11",
        "c12",
    }


def test_fixture_folder_with_a_broken_file_exits_2_but_reports_the_rest() -> None:
    code, out = run([str(FIXTURES)], "json")
    data = json.loads(out)
    assert code == 2
    assert len(data["errors"]) == 1 and "unclosed-quote.yaml" in data["errors"][0]
    assert any(f["code"] == "PROXY_PROTOCOL_MISMATCH" for f in data["findings"])


def test_cli_entry_point_dispatches_to_lint(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["lint", str(FIXTURES / "eks-workshop-ui-nlb.yaml"), "--format", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
